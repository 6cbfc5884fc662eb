"""The audit log: one appended row per change a person or key made to a project
(``audit_log``, migration 0031). Rows are never updated; retention leaves them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ..timeutil import now
from .db import Conn


def record(
    conn: Conn,
    project_id: str,
    actor: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> None:
    """Append one entry: ``actor`` (``user:EMAIL``, ``key:PUBLIC_KEY``, ``cli``) did
    ``action`` (``api_key.create``, ``trace.delete``, ...) to ``target``."""
    d = conn.dialect
    conn.run(
        "INSERT INTO audit_log (project_id, id, at, actor, action, target, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            project_id,
            str(uuid.uuid4()),
            d.ts(at or now()),
            actor,
            action,
            target,
            d.json(detail) if detail else None,
        ),
    )


def record_feedback(conn: Conn, project_id: str, actor: str, fields: dict[str, str | None]) -> str:
    """Store what ``POST /api/public/feedback`` received (``feedback``, migration 0036:
    ``targetType``, ``target``, ``feedback``, ``goal``, ``referenceUrl``); its id."""
    feedback_id = str(uuid.uuid4())
    conn.run(
        "INSERT INTO feedback (project_id, id, at, actor, target_type, target, feedback, goal,"
        " reference_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            project_id,
            feedback_id,
            conn.dialect.ts(now()),
            actor,
            fields["targetType"],
            fields["target"],
            fields["feedback"],
            fields.get("goal"),
            fields.get("referenceUrl"),
        ),
    )
    return feedback_id


def page_entries(
    conn: Conn, project_id: str, *, limit: int, offset: int, action: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    """The project's entries, newest first (``action``: only those whose action is it
    or starts with it followed by a dot), and how many match."""
    where = "project_id = ?"
    params: list[Any] = [project_id]
    if action:
        where += " AND (action = ? OR substr(action, 1, ?) = ?)"
        params += [action, len(action) + 1, action + "."]
    total = int(conn.scalar(f"SELECT COUNT(*) FROM audit_log WHERE {where}", params))
    rows = conn.all(
        f"SELECT id, at, actor, action, target, detail FROM audit_log WHERE {where}"
        " ORDER BY at DESC, id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    d = conn.dialect
    for r in rows:
        r["detail"] = d.json_out(r["detail"])
    return rows, total
