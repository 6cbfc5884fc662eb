"""A project's cost budgets and the record of their crossings (checked by
:mod:`lanterna.alerts.budgets`; stored here as given).

A budget row: ``name``, ``scope`` (``project``, ``user``, ``session`` or ``tag``),
``scope_value`` (the user id, session id or tag; None for ``project``), ``period``
(``day``, ``week``, ``month`` or ``total``), ``limit_usd``, ``soft_percent`` and
``channel_ids`` (the alert channels its crossings notify, a list of ids).
Timestamps come back as aware datetimes.

``budget_events`` holds one row per budget, period and level (``soft`` or
``exceeded``): its primary key makes :func:`record_crossing` true exactly once, also
when several processes evaluate the same budget at the same time.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ..timeutil import now
from .db import Conn

#: The stored fields of a budget (besides project, id and timestamps), in column order.
FIELDS = ("name", "scope", "scope_value", "period", "limit_usd", "soft_percent", "channel_ids")
#: The fields whose change starts a budget's record of crossings afresh.
_MEASURE = ("scope", "scope_value", "period", "limit_usd", "soft_percent")
_COLUMNS = "project_id, id, " + ", ".join(FIELDS) + ", created_at, updated_at"


def _row(conn: Conn, row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for column in ("created_at", "updated_at"):
        out[column] = conn.dialect.ts_parse(out[column])
    out["limit_usd"] = float(out["limit_usd"])
    if out["soft_percent"] is not None:
        out["soft_percent"] = float(out["soft_percent"])
    out["channel_ids"] = list(conn.dialect.json_out(out["channel_ids"]) or [])
    return out


def _values(conn: Conn, fields: dict[str, Any]) -> list[Any]:
    return [conn.dialect.json(fields[f]) if f == "channel_ids" else fields[f] for f in FIELDS]


def create(
    conn: Conn, project_id: str, fields: dict[str, Any], budget_id: str | None = None
) -> dict[str, Any]:
    """Store a budget (every name of :data:`FIELDS` in ``fields``); return its row."""
    budget_id = budget_id or str(uuid.uuid4())
    stamp = conn.dialect.ts(now())
    values = [project_id, budget_id, *_values(conn, fields), stamp, stamp]
    conn.run(f"INSERT INTO budgets ({_COLUMNS}) VALUES ({', '.join('?' * len(values))})", values)
    found = get(conn, project_id, budget_id)
    assert found is not None  # just written in this transaction
    return found


def get(conn: Conn, project_id: str, budget_id: str) -> dict[str, Any] | None:
    """One budget of the project, or None."""
    row = conn.one(
        f"SELECT {_COLUMNS} FROM budgets WHERE project_id = ? AND id = ?",
        (project_id, budget_id),
    )
    return None if row is None else _row(conn, row)


def list_all(conn: Conn, project_id: str) -> list[dict[str, Any]]:
    """Every budget of the project, by name then id."""
    rows = conn.all(
        f"SELECT {_COLUMNS} FROM budgets WHERE project_id = ? ORDER BY name, id", (project_id,)
    )
    return [_row(conn, r) for r in rows]


def update(
    conn: Conn, project_id: str, budget_id: str, fields: dict[str, Any]
) -> dict[str, Any] | None:
    """Replace the budget's fields (every name of :data:`FIELDS`); None when missing.

    A changed limit, threshold, scope or period starts the crossing record afresh (a
    changed name or channel list does not)."""
    before = get(conn, project_id, budget_id)
    if before is None:
        return None
    sets = ", ".join(f"{f} = ?" for f in FIELDS)
    conn.run(
        f"UPDATE budgets SET {sets}, updated_at = ? WHERE project_id = ? AND id = ?",
        (*_values(conn, fields), conn.dialect.ts(now()), project_id, budget_id),
    )
    if any(before[f] != fields[f] for f in _MEASURE):
        conn.run(
            "DELETE FROM budget_events WHERE project_id = ? AND budget_id = ?",
            (project_id, budget_id),
        )
    return get(conn, project_id, budget_id)


def delete(conn: Conn, project_id: str, budget_id: str) -> bool:
    """Delete the budget, its crossings and its alert history; False when it did not
    exist."""
    conn.run(
        "DELETE FROM budget_events WHERE project_id = ? AND budget_id = ?",
        (project_id, budget_id),
    )
    conn.run(
        "DELETE FROM alert_events WHERE project_id = ? AND rule_id = ? AND source = ?",
        (project_id, budget_id, "budget"),
    )
    return (
        conn.run("DELETE FROM budgets WHERE project_id = ? AND id = ?", (project_id, budget_id)) > 0
    )


def projects_with_budgets(conn: Conn) -> list[str]:
    """The ids of the projects that have at least one budget (what the evaluator checks
    each tick)."""
    rows = conn.all("SELECT DISTINCT project_id FROM budgets ORDER BY project_id")
    return [r["project_id"] for r in rows]


def record_crossing(
    conn: Conn,
    project_id: str,
    budget_id: str,
    period_start: str,
    level: str,
    spent_usd: float,
    limit_usd: float,
    at: datetime,
) -> bool:
    """Record that the budget reached ``level`` in the period starting ``period_start``;
    True only for the first record of that budget, period and level."""
    return (
        conn.run(
            "INSERT INTO budget_events"
            " (project_id, budget_id, period_start, level, spent_usd, limit_usd, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (project_id, budget_id, period_start, level) DO NOTHING",
            (project_id, budget_id, period_start, level, spent_usd, limit_usd, conn.dialect.ts(at)),
        )
        > 0
    )


def crossings(
    conn: Conn, project_id: str, budget_id: str, *, limit: int = 50
) -> list[dict[str, Any]]:
    """The budget's recorded crossings, newest first."""
    rows = conn.all(
        "SELECT period_start, level, spent_usd, limit_usd, at FROM budget_events"
        " WHERE project_id = ? AND budget_id = ? ORDER BY at DESC, level LIMIT ?",
        (project_id, budget_id, limit),
    )
    return [
        {**r, "at": conn.dialect.ts_parse(r["at"]), "spent_usd": float(r["spent_usd"])}
        for r in rows
    ]
