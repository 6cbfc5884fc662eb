"""Session queries: a page of sessions, one session with its traces."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .db import Conn


def list_sessions(
    conn: Conn,
    project_id: str,
    *,
    from_timestamp: datetime | None = None,
    to_timestamp: datetime | None = None,
    environments: Sequence[str] = (),
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the project's sessions (newest first) and the total count.

    ``from_timestamp`` is inclusive, ``to_timestamp`` exclusive, both on ``created_at``.
    """
    d = conn.dialect
    where = ["project_id = ?"]
    params: list[Any] = [project_id]
    if from_timestamp is not None:
        where.append("created_at >= ?")
        params.append(d.ts(from_timestamp))
    if to_timestamp is not None:
        where.append("created_at < ?")
        params.append(d.ts(to_timestamp))
    if environments:
        where.append(f"environment IN ({', '.join('?' * len(environments))})")
        params.extend(environments)
    clause = " AND ".join(where)
    total = int(conn.scalar(f"SELECT COUNT(*) FROM sessions WHERE {clause}", params))
    if total <= offset:
        return [], total
    rows = conn.all(
        f"SELECT * FROM sessions WHERE {clause} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return rows, total


def get_session(conn: Conn, project_id: str, session_id: str) -> dict[str, Any] | None:
    """One session row, or None."""
    return conn.one(
        "SELECT * FROM sessions WHERE project_id = ? AND id = ?", (project_id, session_id)
    )


def traces_of_session(conn: Conn, project_id: str, session_id: str) -> list[dict[str, Any]]:
    """Every trace of a session, oldest first (served by the traces_session index)."""
    return conn.all(
        "SELECT * FROM traces WHERE project_id = ? AND session_id = ? ORDER BY timestamp, id",
        (project_id, session_id),
    )
