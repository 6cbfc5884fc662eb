"""A project's A/B tests (checked by :mod:`lanterna.abtests.rules`; stored here as given).

A row: ``name`` (unique per project), ``description``, ``unit``, ``variants`` (a list of
``{name, weight, promptVersion, promptLabel}``), ``control``, ``prompt``,
``primary_metric``, ``guardrails`` (metric names), ``mde``, ``alpha``, ``salt``,
``state``, ``winner`` and the timestamps (aware datetimes; ``started_at`` is the first
start, ``stopped_at`` the last stop).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ..timeutil import now
from .db import Conn

#: The fields a definition sets (besides project, id, state and timestamps).
FIELDS = (
    "name",
    "description",
    "unit",
    "variants",
    "control",
    "prompt",
    "primary_metric",
    "guardrails",
    "mde",
    "alpha",
    "salt",
)
_JSON = ("variants", "guardrails")
_TIMES = ("created_at", "updated_at", "started_at", "stopped_at", "concluded_at")
_COLUMNS = "project_id, id, " + ", ".join(FIELDS) + ", state, winner, " + ", ".join(_TIMES)


def _row(conn: Conn, row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for column in _TIMES:
        out[column] = conn.dialect.ts_parse(out[column])
    for column in _JSON:
        out[column] = conn.dialect.json_out(out[column])
    for column in ("mde", "alpha"):
        if out[column] is not None:
            out[column] = float(out[column])
    return out


def _values(conn: Conn, fields: dict[str, Any]) -> list[Any]:
    return [conn.dialect.json(fields[f]) if f in _JSON else fields[f] for f in FIELDS]


def create(conn: Conn, project_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Store a draft A/B test (every name of :data:`FIELDS` in ``fields``); its row."""
    stamp = conn.dialect.ts(now())
    values = [project_id, str(uuid.uuid4()), *_values(conn, fields), "draft", None, stamp, stamp]
    values += [None, None, None]
    conn.run(f"INSERT INTO ab_tests ({_COLUMNS}) VALUES ({', '.join('?' * len(values))})", values)
    found = get(conn, project_id, fields["name"])
    assert found is not None  # just written in this transaction
    return found


def get(conn: Conn, project_id: str, name: str) -> dict[str, Any] | None:
    """One A/B test of the project by name, or None."""
    row = conn.one(
        f"SELECT {_COLUMNS} FROM ab_tests WHERE project_id = ? AND name = ?", (project_id, name)
    )
    return None if row is None else _row(conn, row)


def list_all(conn: Conn, project_id: str, state: str | None = None) -> list[dict[str, Any]]:
    """The project's A/B tests (in ``state`` when given), newest first."""
    where, params = "project_id = ?", [project_id]
    if state is not None:
        where += " AND state = ?"
        params.append(state)
    rows = conn.all(
        f"SELECT {_COLUMNS} FROM ab_tests WHERE {where} ORDER BY created_at DESC, name", params
    )
    return [_row(conn, r) for r in rows]


def update(conn: Conn, project_id: str, name: str, fields: dict[str, Any]) -> dict[str, Any] | None:
    """Replace the definition (every name of :data:`FIELDS`); None when missing."""
    sets = ", ".join(f"{f} = ?" for f in FIELDS)
    changed = conn.run(
        f"UPDATE ab_tests SET {sets}, updated_at = ? WHERE project_id = ? AND name = ?",
        (*_values(conn, fields), conn.dialect.ts(now()), project_id, name),
    )
    return get(conn, project_id, name) if changed else None


def set_state(
    conn: Conn,
    project_id: str,
    name: str,
    state: str,
    at: datetime,
    winner: str | None = None,
) -> dict[str, Any] | None:
    """Move the test to ``state`` at ``at`` (``running`` sets ``started_at`` the first
    time, ``stopped`` sets ``stopped_at``, ``concluded`` sets ``concluded_at`` and the
    winner); None when missing."""
    stamp = conn.dialect.ts(at)
    extra = {
        "running": ", started_at = COALESCE(started_at, ?)",
        "stopped": ", stopped_at = ?",
        "concluded": ", concluded_at = ?, stopped_at = COALESCE(stopped_at, ?)",
    }[state]
    params: list[Any] = [state, winner, stamp, stamp]
    if state == "concluded":
        params.append(stamp)
    changed = conn.run(
        f"UPDATE ab_tests SET state = ?, winner = ?, updated_at = ?{extra}"
        " WHERE project_id = ? AND name = ?",
        (*params, project_id, name),
    )
    return get(conn, project_id, name) if changed else None


def delete(conn: Conn, project_id: str, name: str) -> bool:
    """Delete the A/B test; False when it did not exist (its traces stay)."""
    return (
        conn.run("DELETE FROM ab_tests WHERE project_id = ? AND name = ?", (project_id, name)) > 0
    )


def score_exists(conn: Conn, project_id: str, name: str, *, events: Conn | None = None) -> bool:
    """Whether the project has a score config or a score of that name (scores read on
    ``events``, the store's ``events_conn``; ``conn`` by default)."""
    if conn.one(
        "SELECT 1 FROM score_configs WHERE project_id = ? AND name = ? LIMIT 1",
        (project_id, name),
    ):
        return True
    return (events or conn).one(
        "SELECT 1 FROM scores WHERE project_id = ? AND name = ? LIMIT 1", (project_id, name)
    ) is not None
