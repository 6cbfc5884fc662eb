"""A project's alert channels (webhook, Slack, email), stored as given: the server
checks them (``alerts/channels.py``) and encrypts their secrets before they get here;
``secrets`` is an opaque sealed string, never decrypted by the store."""

from __future__ import annotations

from typing import Any

from ..timeutil import now
from .db import Conn

Row = dict[str, Any]

_COLUMNS = "project_id, id, name, kind, config, secrets, secret_names, created_at, updated_at"


def _decode(conn: Conn, row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["config"] = conn.dialect.json_out(row["config"])
    row["secret_names"] = conn.dialect.json_out(row["secret_names"])
    return row


def create_channel(conn: Conn, project_id: str, channel_id: str, fields: dict[str, Any]) -> Row:
    """Insert a channel (``name``, ``kind``, ``config``, ``secrets``, ``secret_names``);
    the stored row."""
    stamp = conn.dialect.ts(now())
    conn.run(
        f"INSERT INTO alert_channels ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            project_id,
            channel_id,
            fields["name"],
            fields["kind"],
            conn.dialect.json(fields["config"]),
            fields["secrets"],
            conn.dialect.json(fields["secret_names"]),
            stamp,
            stamp,
        ),
    )
    row = get_channel(conn, project_id, channel_id)
    assert row is not None
    return row


def get_channel(conn: Conn, project_id: str, channel_id: str) -> Row | None:
    """One channel of the project, or None."""
    row = conn.one(
        f"SELECT {_COLUMNS} FROM alert_channels WHERE project_id = ? AND id = ?",
        (project_id, channel_id),
    )
    return None if row is None else _decode(conn, row)


def list_channels(conn: Conn, project_id: str) -> list[Row]:
    """Every channel of the project, by name."""
    rows = conn.all(
        f"SELECT {_COLUMNS} FROM alert_channels WHERE project_id = ? ORDER BY name, id",
        (project_id,),
    )
    return [_decode(conn, r) for r in rows]


def update_channel(
    conn: Conn, project_id: str, channel_id: str, fields: dict[str, Any]
) -> Row | None:
    """Replace a channel's name, config and secrets; the stored row, None when missing."""
    if get_channel(conn, project_id, channel_id) is None:
        return None
    conn.run(
        "UPDATE alert_channels SET name = ?, config = ?, secrets = ?, secret_names = ?,"
        " updated_at = ? WHERE project_id = ? AND id = ?",
        (
            fields["name"],
            conn.dialect.json(fields["config"]),
            fields["secrets"],
            conn.dialect.json(fields["secret_names"]),
            conn.dialect.ts(now()),
            project_id,
            channel_id,
        ),
    )
    return get_channel(conn, project_id, channel_id)


def delete_channel(conn: Conn, project_id: str, channel_id: str) -> bool:
    """Delete a channel; False when it did not exist."""
    found = get_channel(conn, project_id, channel_id) is not None
    conn.run("DELETE FROM alert_channels WHERE project_id = ? AND id = ?", (project_id, channel_id))
    return found
