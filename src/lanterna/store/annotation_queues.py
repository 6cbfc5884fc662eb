"""Annotation queues (contract 4.7): queues with their score configs, the items to
review (PENDING until COMPLETED) and the dashboard users assigned to each queue."""

from __future__ import annotations

import uuid
from typing import Any

from ..timeutil import now
from .db import Conn

_QUEUE = "project_id, id, name, description, score_config_ids, created_at, updated_at"
_ITEM = (
    "project_id, id, queue_id, object_id, object_type, status, completed_at, created_at, updated_at"
)


def _queue(conn: Conn, row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {**row, "score_config_ids": conn.dialect.json_out(row["score_config_ids"]) or []}


def create_queue(
    conn: Conn, project_id: str, name: str, description: str | None, score_config_ids: list[str]
) -> dict[str, Any]:
    """Store a queue (fields already checked); return its row."""
    queue_id = str(uuid.uuid4())
    stamp = conn.dialect.ts(now())
    conn.run(
        f"INSERT INTO annotation_queues ({_QUEUE}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (project_id, queue_id, name, description, conn.dialect.json(score_config_ids), stamp,
         stamp),
    )  # fmt: skip
    row = get_queue(conn, project_id, queue_id)
    assert row is not None
    return row


def get_queue(conn: Conn, project_id: str, queue_id: str) -> dict[str, Any] | None:
    """One queue of the project, or None."""
    row = conn.one(
        f"SELECT {_QUEUE} FROM annotation_queues WHERE project_id = ? AND id = ?",
        (project_id, queue_id),
    )
    return _queue(conn, row)


def page_queues(
    conn: Conn, project_id: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the project's queues (newest first) and how many there are."""
    rows = conn.all(
        f"SELECT {_QUEUE} FROM annotation_queues WHERE project_id = ?"
        " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        (project_id, limit, offset),
    )
    total = conn.scalar(
        "SELECT COUNT(*) FROM annotation_queues WHERE project_id = ?", (project_id,)
    )
    return [q for r in rows if (q := _queue(conn, r)) is not None], int(total or 0)


def queue_counts(conn: Conn, project_id: str) -> dict[str, dict[str, int]]:
    """Per queue id: how many items are PENDING and COMPLETED."""
    out: dict[str, dict[str, int]] = {}
    rows = conn.all(
        "SELECT queue_id, status, COUNT(*) AS n FROM annotation_queue_items"
        " WHERE project_id = ? GROUP BY queue_id, status",
        (project_id,),
    )
    for r in rows:
        out.setdefault(r["queue_id"], {"PENDING": 0, "COMPLETED": 0})[r["status"]] = int(r["n"])
    return out


def create_item(
    conn: Conn, project_id: str, queue_id: str, object_id: str, object_type: str, status: str
) -> dict[str, Any]:
    """Add an item to a queue (fields already checked); return its row."""
    item_id = str(uuid.uuid4())
    at = now()
    stamp = conn.dialect.ts(at)
    done = stamp if status == "COMPLETED" else None
    conn.run(
        f"INSERT INTO annotation_queue_items ({_ITEM}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (project_id, item_id, queue_id, object_id, object_type, status, done, stamp, stamp),
    )
    row = get_item(conn, project_id, queue_id, item_id)
    assert row is not None
    return row


def get_item(conn: Conn, project_id: str, queue_id: str, item_id: str) -> dict[str, Any] | None:
    """One item of a queue, or None."""
    return conn.one(
        f"SELECT {_ITEM} FROM annotation_queue_items WHERE project_id = ? AND queue_id = ?"
        " AND id = ?",
        (project_id, queue_id, item_id),
    )


def page_items(
    conn: Conn, project_id: str, queue_id: str, status: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of a queue's items in the order they were added (optionally of one
    status) and how many match."""
    where = "project_id = ? AND queue_id = ?"
    params: list[Any] = [project_id, queue_id]
    if status is not None:
        where += " AND status = ?"
        params.append(status)
    rows = conn.all(
        f"SELECT {_ITEM} FROM annotation_queue_items WHERE {where}"
        " ORDER BY created_at, id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    total = conn.scalar(f"SELECT COUNT(*) FROM annotation_queue_items WHERE {where}", params)
    return rows, int(total or 0)


def set_item_status(
    conn: Conn, project_id: str, queue_id: str, item_id: str, status: str
) -> dict[str, Any] | None:
    """Set an item's status (COMPLETED stamps ``completed_at``, PENDING clears it);
    the row, or None when there is no such item."""
    stamp = conn.dialect.ts(now())
    done = stamp if status == "COMPLETED" else None
    changed = conn.run(
        "UPDATE annotation_queue_items SET status = ?, completed_at = ?, updated_at = ?"
        " WHERE project_id = ? AND queue_id = ? AND id = ?",
        (status, done, stamp, project_id, queue_id, item_id),
    )
    return get_item(conn, project_id, queue_id, item_id) if changed else None


def delete_item(conn: Conn, project_id: str, queue_id: str, item_id: str) -> bool:
    """Remove an item from its queue; False when there was none."""
    removed = conn.run(
        "DELETE FROM annotation_queue_items WHERE project_id = ? AND queue_id = ? AND id = ?",
        (project_id, queue_id, item_id),
    )
    return removed > 0


def assign(conn: Conn, project_id: str, queue_id: str, user_id: str) -> None:
    """Assign a user to a queue (again: no change)."""
    conn.run(
        "INSERT INTO annotation_queue_assignments (project_id, queue_id, user_id, created_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (project_id, queue_id, user_id) DO NOTHING",
        (project_id, queue_id, user_id, conn.dialect.ts(now())),
    )


def unassign(conn: Conn, project_id: str, queue_id: str, user_id: str) -> bool:
    """Remove a user from a queue; False when they were not assigned."""
    removed = conn.run(
        "DELETE FROM annotation_queue_assignments WHERE project_id = ? AND queue_id = ?"
        " AND user_id = ?",
        (project_id, queue_id, user_id),
    )
    return removed > 0


def assignees(conn: Conn, project_id: str, queue_id: str) -> list[str]:
    """The user ids assigned to a queue, in the order they were assigned."""
    rows = conn.all(
        "SELECT user_id FROM annotation_queue_assignments WHERE project_id = ? AND queue_id = ?"
        " ORDER BY created_at, user_id",
        (project_id, queue_id),
    )
    return [r["user_id"] for r in rows]
