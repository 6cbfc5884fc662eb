"""Blob-storage integrations (``blob_storage_integrations``, migration 0038): scheduled
exports of a project's traces, observations and scores to an S3-compatible bucket.

Bodies are checked and the secret key sealed above the store (``server``); this module
stores rows, hands the due ones to one exporter at a time (a lease per integration,
taken with one conditional update) and records each run's outcome.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from .db import Conn

_FIELDS = (
    "type", "bucket_name", "endpoint", "region", "access_key_id", "secret_access_key_sealed",
    "prefix", "export_frequency", "enabled", "force_path_style", "file_type", "export_mode",
    "export_start_date", "compressed", "export_source", "export_field_groups",
)  # fmt: skip
_TIMES = (
    "export_start_date", "next_sync_at", "last_sync_at", "last_error_at", "lease_until",
    "created_at", "updated_at",
)  # fmt: skip


def _row(conn: Conn, row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    d = conn.dialect
    for name in _TIMES:
        row[name] = d.ts_parse(row[name])
    for name in ("enabled", "force_path_style", "compressed"):
        row[name] = bool(row[name])
    row["export_field_groups"] = d.json_out(row["export_field_groups"])
    return row


def _value(conn: Conn, name: str, value: Any) -> Any:
    d = conn.dialect
    if name == "export_field_groups":
        return None if value is None else d.json(value)
    if name == "export_start_date":
        return None if value is None else d.ts(value)
    return value


def get(conn: Conn, integration_id: str) -> dict[str, Any] | None:
    """An integration by id (its sealed secret included), or None."""
    return _row(
        conn, conn.one("SELECT * FROM blob_storage_integrations WHERE id = ?", (integration_id,))
    )


def of_project(conn: Conn, project_id: str) -> dict[str, Any] | None:
    """The project's integration, or None."""
    return _row(
        conn,
        conn.one("SELECT * FROM blob_storage_integrations WHERE project_id = ?", (project_id,)),
    )


def of_projects(conn: Conn, project_ids: list[str]) -> list[dict[str, Any]]:
    """The integrations of these projects, oldest first."""
    if not project_ids:
        return []
    marks = ", ".join("?" for _ in project_ids)
    rows = conn.all(
        f"SELECT * FROM blob_storage_integrations WHERE project_id IN ({marks})"
        " ORDER BY created_at, id",
        project_ids,
    )
    return [r for r in (_row(conn, row) for row in rows) if r is not None]


def upsert(conn: Conn, project_id: str, fields: dict[str, Any], at: datetime) -> dict[str, Any]:
    """Create the project's integration or replace its settings (its sync state stays;
    a changed schedule is due at once); the stored row."""
    d = conn.dialect
    existing = of_project(conn, project_id)
    values = [_value(conn, n, fields[n]) for n in _FIELDS]
    if existing is None:
        conn.run(
            f"INSERT INTO blob_storage_integrations (id, project_id, {', '.join(_FIELDS)},"
            f" created_at, updated_at) VALUES (?, ?, {', '.join('?' for _ in _FIELDS)}, ?, ?)",
            [str(uuid.uuid4()), project_id, *values, d.ts(at), d.ts(at)],
        )
    else:
        sets = ", ".join(f"{n} = ?" for n in _FIELDS)
        conn.run(
            f"UPDATE blob_storage_integrations SET {sets}, next_sync_at = NULL, updated_at = ?"
            " WHERE id = ?",
            [*values, d.ts(at), existing["id"]],
        )
    row = of_project(conn, project_id)
    assert row is not None
    return row


def delete(conn: Conn, integration_id: str) -> bool:
    """Delete an integration; True when it existed."""
    return conn.run("DELETE FROM blob_storage_integrations WHERE id = ?", (integration_id,)) > 0


def due_ids(conn: Conn, at: datetime) -> list[str]:
    """Enabled integrations due at ``at`` that no exporter holds."""
    stamp = conn.dialect.ts(at)
    rows = conn.all(
        "SELECT id FROM blob_storage_integrations WHERE enabled = ?"
        " AND (next_sync_at IS NULL OR next_sync_at <= ?)"
        " AND (lease_until IS NULL OR lease_until <= ?) ORDER BY id",
        (True, stamp, stamp),
    )
    return [r["id"] for r in rows]


def claim(conn: Conn, integration_id: str, owner: str, at: datetime, until: datetime) -> bool:
    """Take the integration's lease for ``owner`` until ``until`` if it is due and free
    at ``at``; True when taken (one conditional update: one winner)."""
    d = conn.dialect
    stamp = d.ts(at)
    return bool(
        conn.run(
            "UPDATE blob_storage_integrations SET lease_owner = ?, lease_until = ?"
            " WHERE id = ? AND enabled = ? AND (next_sync_at IS NULL OR next_sync_at <= ?)"
            " AND (lease_until IS NULL OR lease_until <= ?)",
            (owner, d.ts(until), integration_id, True, stamp, stamp),
        )
    )


def finish(
    conn: Conn,
    integration_id: str,
    owner: str,
    *,
    next_sync_at: datetime,
    synced_to: datetime | None,
    error: str | None,
    at: datetime,
) -> bool:
    """Release ``owner``'s lease and record the run: ``synced_to`` (the end of the
    exported window, clearing the error) or ``error``; False when the lease was lost."""
    d = conn.dialect
    if error is None:
        changes = "last_sync_at = ?, last_error = NULL, last_error_at = NULL"
        params: list[Any] = [d.ts(synced_to) if synced_to else None]
    else:
        changes = "last_error = ?, last_error_at = ?"
        params = [error, d.ts(at)]
    return bool(
        conn.run(
            f"UPDATE blob_storage_integrations SET {changes}, next_sync_at = ?,"
            " lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
            [*params, d.ts(next_sync_at), integration_id, owner],
        )
    )
