"""A project's score configs (validated by :mod:`lanterna.ingest.score_configs`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from ..timeutil import now
from .db import Conn

_COLUMNS = (
    "project_id, id, name, data_type, is_archived, min_value, max_value, categories,"
    " description, created_at, updated_at"
)


def _decode(conn: Conn, row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["is_archived"] = bool(row["is_archived"])
    row["categories"] = conn.dialect.json_out(row["categories"])
    return row


def create(
    conn: Conn, project_id: str, fields: dict[str, Any], config_id: str | None = None
) -> dict[str, Any]:
    """Store a validated config (a fresh id unless one is given); return the row."""
    d = conn.dialect
    config_id = config_id or str(uuid.uuid4())
    stamp = d.ts(now())
    conn.run(
        f"INSERT INTO score_configs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            project_id,
            config_id,
            fields["name"],
            fields["data_type"],
            fields["is_archived"],
            fields["min_value"],
            fields["max_value"],
            d.json(fields["categories"]),
            fields["description"],
            stamp,
            stamp,
        ),
    )
    row = get(conn, project_id, config_id)
    assert row is not None
    return row


def update(conn: Conn, project_id: str, config_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Overwrite a config's validated fields (``data_type`` stays); return the row."""
    conn.run(
        "UPDATE score_configs SET name = ?, is_archived = ?, min_value = ?, max_value = ?,"
        " categories = ?, description = ?, updated_at = ? WHERE project_id = ? AND id = ?",
        (
            fields["name"],
            fields["is_archived"],
            fields["min_value"],
            fields["max_value"],
            conn.dialect.json(fields["categories"]),
            fields["description"],
            conn.dialect.ts(now()),
            project_id,
            config_id,
        ),
    )
    row = get(conn, project_id, config_id)
    assert row is not None
    return row


def get(conn: Conn, project_id: str, config_id: str) -> dict[str, Any] | None:
    """One config of the project, or None."""
    row = conn.one(
        f"SELECT {_COLUMNS} FROM score_configs WHERE project_id = ? AND id = ?",
        (project_id, config_id),
    )
    return None if row is None else _decode(conn, row)


def get_many(conn: Conn, project_id: str, config_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The project's configs with these ids, by id (missing ids are absent)."""
    wanted = sorted(set(config_ids))
    if not wanted:
        return {}
    marks = ", ".join("?" for _ in wanted)
    rows = conn.all(
        f"SELECT {_COLUMNS} FROM score_configs WHERE project_id = ? AND id IN ({marks})",
        (project_id, *wanted),
    )
    return {r["id"]: _decode(conn, r) for r in rows}


def page(conn: Conn, project_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """A page of the project's configs, newest first, and how many there are."""
    rows = conn.all(
        f"SELECT {_COLUMNS} FROM score_configs WHERE project_id = ?"
        " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        (project_id, limit, offset),
    )
    total = conn.scalar("SELECT COUNT(*) FROM score_configs WHERE project_id = ?", (project_id,))
    return [_decode(conn, r) for r in rows], int(total or 0)
