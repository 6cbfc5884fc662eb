"""Comments on traces, observations, sessions and prompts (contract 4.7)."""

from __future__ import annotations

import uuid
from typing import Any

from ..timeutil import now
from .db import Conn

_COLUMNS = "project_id, id, object_type, object_id, content, author_user_id, created_at, updated_at"


def create(
    conn: Conn,
    project_id: str,
    object_type: str,
    object_id: str,
    content: str,
    author_user_id: str | None,
) -> dict[str, Any]:
    """Store a comment (fields already checked); return its row."""
    comment_id = str(uuid.uuid4())
    stamp = conn.dialect.ts(now())
    conn.run(
        f"INSERT INTO comments ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (project_id, comment_id, object_type, object_id, content, author_user_id, stamp, stamp),
    )
    row = get(conn, project_id, comment_id)
    assert row is not None
    return row


def get(conn: Conn, project_id: str, comment_id: str) -> dict[str, Any] | None:
    """One comment of the project, or None."""
    return conn.one(
        f"SELECT {_COLUMNS} FROM comments WHERE project_id = ? AND id = ?",
        (project_id, comment_id),
    )


def page(
    conn: Conn,
    project_id: str,
    *,
    object_type: str | None,
    object_id: str | None,
    author_user_id: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """A page of the project's comments (newest first), narrowed by object and author,
    and how many match."""
    where = ["project_id = ?"]
    params: list[Any] = [project_id]
    for column, value in (
        ("object_type", object_type),
        ("object_id", object_id),
        ("author_user_id", author_user_id),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    clause = " AND ".join(where)
    rows = conn.all(
        f"SELECT {_COLUMNS} FROM comments WHERE {clause}"
        " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    total = conn.scalar(f"SELECT COUNT(*) FROM comments WHERE {clause}", params)
    return rows, int(total or 0)


def of_object(
    conn: Conn, project_id: str, object_type: str, object_id: str
) -> list[dict[str, Any]]:
    """Every comment on one object, oldest first (what a page shows under it)."""
    return conn.all(
        f"SELECT {_COLUMNS} FROM comments WHERE project_id = ? AND object_type = ?"
        " AND object_id = ? ORDER BY created_at, id",
        (project_id, object_type, object_id),
    )
