"""Alert rules (checked by :mod:`lanterna.alerts.rules`, stored here as given), each
rule's evaluation state and lease, and the alert history.

The lease: a rule's row holds when it is next due (``next_eval_at``; NULL: at the
next tick, as a new or changed rule is) and who is
evaluating it until when (``lease_owner``, ``lease_until``). :func:`claim` takes it in
one conditional ``UPDATE`` (due, and no unexpired lease), so of several evaluators
sharing the database exactly one wins a rule per tick; :func:`finish` records the
outcome and moves ``next_eval_at`` on only for the lease's holder. A crashed
evaluator's lease expires and the rule is evaluated again by whoever ticks next.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ..timeutil import now
from .db import Conn

#: The definition's columns, in the order the API body is checked into.
FIELDS = (
    "name",
    "description",
    "metric",
    "score_name",
    "filters",
    "comparator",
    "threshold",
    "mode",
    "baseline",
    "factor",
    "window_s",
    "interval_s",
    "min_samples",
    "cooldown_s",
    "renotify_s",
    "notify_resolved",
    "channel_ids",
    "enabled",
)
_JSON = ("filters", "channel_ids")
_STATE = (
    "status",
    "last_value",
    "last_threshold",
    "last_samples",
    "last_eval_at",
    "firing_since",
    "notified_at",
    "next_eval_at",
)
_TS = ("last_eval_at", "firing_since", "notified_at", "next_eval_at", "created_at", "updated_at")
_COLUMNS = ", ".join(("project_id", "id", *FIELDS, *_STATE, "created_at", "updated_at"))
_EVENT_COLUMNS = (
    "project_id, id, source, rule_id, at, seq, kind, value, threshold, channel_id, message"
)


def _decode(conn: Conn, row: dict[str, Any]) -> dict[str, Any]:
    d = conn.dialect
    row = dict(row)
    for column in _JSON:
        row[column] = d.json_out(row[column])
    for column in _TS:
        row[column] = d.ts_parse(row[column])
    row["notify_resolved"] = bool(row["notify_resolved"])
    row["enabled"] = bool(row["enabled"])
    return row


def _bind(conn: Conn, fields: dict[str, Any], names: tuple[str, ...]) -> list[Any]:
    return [conn.dialect.json(fields[n]) if n in _JSON else fields[n] for n in names]


def create_rule(
    conn: Conn, project_id: str, fields: dict[str, Any], rule_id: str | None = None
) -> dict[str, Any]:
    """Store a checked rule (every name in :data:`FIELDS`), due at the next tick
    (``next_eval_at`` NULL); return the row."""
    rule_id = rule_id or str(uuid.uuid4())
    stamp = conn.dialect.ts(now())
    values = [project_id, rule_id, *_bind(conn, fields, FIELDS)]
    state = ["ok", None, None, None, None, None, None, None]  # due at the next tick
    values += [*state, stamp, stamp]
    marks = ", ".join("?" for _ in values)
    conn.run(f"INSERT INTO alert_rules ({_COLUMNS}) VALUES ({marks})", tuple(values))
    row = get_rule(conn, project_id, rule_id)
    assert row is not None
    return row


def get_rule(conn: Conn, project_id: str, rule_id: str) -> dict[str, Any] | None:
    """One rule of the project with its state, or None."""
    row = conn.one(
        f"SELECT {_COLUMNS} FROM alert_rules WHERE project_id = ? AND id = ?",
        (project_id, rule_id),
    )
    return None if row is None else _decode(conn, row)


def page_rules(
    conn: Conn, project_id: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the project's rules (by name), and how many there are."""
    rows = conn.all(
        f"SELECT {_COLUMNS} FROM alert_rules WHERE project_id = ?"
        " ORDER BY name, id LIMIT ? OFFSET ?",
        (project_id, limit, offset),
    )
    total = conn.scalar("SELECT COUNT(*) FROM alert_rules WHERE project_id = ?", (project_id,))
    return [_decode(conn, r) for r in rows], int(total or 0)


def update_rule(
    conn: Conn, project_id: str, rule_id: str, fields: dict[str, Any]
) -> dict[str, Any] | None:
    """Overwrite a rule's definition (every name in :data:`FIELDS`); it is due at the
    next tick.
    The row, or None when missing."""
    sets = ", ".join(f"{n} = ?" for n in FIELDS)
    stamp = conn.dialect.ts(now())
    changed = conn.run(
        f"UPDATE alert_rules SET {sets}, next_eval_at = NULL, updated_at = ?"
        " WHERE project_id = ? AND id = ?",
        (*_bind(conn, fields, FIELDS), stamp, project_id, rule_id),
    )
    return get_rule(conn, project_id, rule_id) if changed else None


def delete_rule(conn: Conn, project_id: str, rule_id: str) -> bool:
    """Delete a rule and its history; False when the project has none by that id."""
    conn.run("DELETE FROM alert_events WHERE project_id = ? AND rule_id = ?", (project_id, rule_id))
    return bool(
        conn.run("DELETE FROM alert_rules WHERE project_id = ? AND id = ?", (project_id, rule_id))
    )


def due_rules(conn: Conn, at: datetime) -> list[dict[str, Any]]:
    """Every project's enabled rules due at ``at`` and not leased past it."""
    stamp = conn.dialect.ts(at)
    rows = conn.all(
        f"SELECT {_COLUMNS} FROM alert_rules WHERE enabled = ?"
        " AND (next_eval_at IS NULL OR next_eval_at <= ?)"
        " AND (lease_until IS NULL OR lease_until <= ?) ORDER BY next_eval_at, id",
        (True, stamp, stamp),
    )
    return [_decode(conn, r) for r in rows]


def claim(
    conn: Conn, project_id: str, rule_id: str, owner: str, at: datetime, until: datetime
) -> bool:
    """Take the rule's lease for ``owner`` until ``until`` if it is due at ``at`` and
    not leased; True when taken (one conditional update: one winner)."""
    d = conn.dialect
    stamp = d.ts(at)
    return bool(
        conn.run(
            "UPDATE alert_rules SET lease_owner = ?, lease_until = ?"
            " WHERE project_id = ? AND id = ? AND enabled = ?"
            " AND (next_eval_at IS NULL OR next_eval_at <= ?)"
            " AND (lease_until IS NULL OR lease_until <= ?)",
            (owner, d.ts(until), project_id, rule_id, True, stamp, stamp),
        )
    )


def finish(
    conn: Conn,
    project_id: str,
    rule_id: str,
    owner: str,
    state: dict[str, Any],
    events: list[dict[str, Any]],
) -> bool:
    """Record an evaluation by the lease's ``owner``: the new ``state`` (the names in
    the rule's state columns) and history ``events`` (``at``, ``kind``, ``value``,
    ``threshold``, ``channel_id``, ``message``); release the lease. False (nothing
    written) when ``owner`` no longer holds it."""
    d = conn.dialect
    names = tuple(state)
    sets = ", ".join(f"{n} = ?" for n in names)
    values = [d.ts(state[n]) if n in _TS else state[n] for n in names]
    if not conn.run(
        f"UPDATE alert_rules SET {sets}, lease_owner = NULL, lease_until = NULL"
        " WHERE project_id = ? AND id = ? AND lease_owner = ?",
        (*values, project_id, rule_id, owner),
    ):
        return False
    add_events(conn, project_id, rule_id, events)
    return True


def add_events(
    conn: Conn,
    project_id: str,
    rule_id: str,
    events: list[dict[str, Any]],
    *,
    source: str = "rule",
) -> None:
    """Append ``events`` (as :func:`finish` takes them) to the alert history of a rule,
    or of a budget (``source="budget"``, its id as ``rule_id``)."""
    d = conn.dialect
    for seq, e in enumerate(events):
        conn.run(
            f"INSERT INTO alert_events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                project_id,
                str(uuid.uuid4()),
                source,
                rule_id,
                d.ts(e["at"]),
                seq,
                e["kind"],
                e.get("value"),
                e.get("threshold"),
                e.get("channel_id"),
                e.get("message", ""),
            ),
        )


def page_events(
    conn: Conn, project_id: str, rule_id: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the project's alert history (of one rule or budget when ``rule_id``),
    newest first, and how many events there are (``source``: ``rule`` or ``budget``)."""
    where, params = "project_id = ?", [project_id]
    if rule_id is not None:
        where += " AND rule_id = ?"
        params.append(rule_id)
    rows = conn.all(
        f"SELECT {_EVENT_COLUMNS} FROM alert_events WHERE {where}"
        " ORDER BY at DESC, seq DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    total = conn.scalar(f"SELECT COUNT(*) FROM alert_events WHERE {where}", tuple(params))
    out = []
    for r in rows:
        r = dict(r)
        r["at"] = conn.dialect.ts_parse(r["at"])
        out.append(r)
    return out, int(total or 0)
