"""Media records and their references (``media``, ``media_refs``, ``media_freed``).

A record is one project's view of one blob: its id is derived from the content's SHA-256
(as the Langfuse SDK derives it), the blob's key is that hash in hex, so equal bytes are
stored once however many projects and traces use them. A trace (or dataset item) that
refers to a record is a row of ``media_refs``; deleting the last trace that refers to a
record deletes the record, and a blob no record holds any more is listed in
``media_freed`` until the blob store deleted it (:func:`take_freed`). The bytes never
pass through here: the blob store (``store/blobs.py``) holds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..timeutil import now
from .db import Conn

Row = dict[str, Any]

_COLUMNS = (
    "project_id, id, sha256, content_type, content_length, created_at, uploaded_at,"
    " upload_http_status, upload_http_error, upload_time_ms"
)
_CHUNK = 500


def get_media(conn: Conn, project_id: str, media_id: str) -> Row | None:
    """One media record of the project, or None."""
    return conn.one(
        f"SELECT {_COLUMNS} FROM media WHERE project_id = ? AND id = ?", (project_id, media_id)
    )


def get_many(conn: Conn, project_id: str, media_ids: Sequence[str]) -> dict[str, Row]:
    """The project's records among ``media_ids``, by id."""
    found: dict[str, Row] = {}
    ids = list(dict.fromkeys(media_ids))
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        for row in conn.all(
            f"SELECT {_COLUMNS} FROM media WHERE project_id = ? AND id IN ({marks})",
            [project_id, *chunk],
        ):
            found[row["id"]] = row
    return found


def register(
    conn: Conn,
    project_id: str,
    media_id: str,
    sha256: str,
    content_type: str,
    content_length: int,
) -> Row:
    """The record of ``media_id``, made now when the project has none; a record made by
    another upload of the same bytes is returned as it is."""
    conn.run(
        "INSERT INTO media (project_id, id, sha256, content_type, content_length, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (project_id, id) DO NOTHING",
        (project_id, media_id, sha256, content_type, content_length, conn.dialect.ts(now())),
    )
    # The bytes are wanted again: a pending deletion of their blob is called off.
    conn.run("DELETE FROM media_freed WHERE sha256 = ?", (sha256,))
    row = get_media(conn, project_id, media_id)
    assert row is not None
    return row


def mark_uploaded(
    conn: Conn,
    project_id: str,
    media_id: str,
    at: datetime,
    status: int | None,
    error: str | None = None,
    time_ms: int | None = None,
) -> bool:
    """Record an upload's outcome; ``uploaded_at`` only for a 2xx status. False when the
    project has no such record."""
    ok = status is not None and 200 <= status < 300
    return (
        conn.run(
            "UPDATE media SET upload_http_status = ?, upload_http_error = ?,"
            " upload_time_ms = ?,"
            " uploaded_at = CASE WHEN ? THEN COALESCE(uploaded_at, ?) ELSE uploaded_at END"
            " WHERE project_id = ? AND id = ?",
            (status, error, time_ms, ok, conn.dialect.ts(at), project_id, media_id),
        )
        > 0
    )


def add_reference(
    conn: Conn,
    project_id: str,
    media_id: str,
    object_kind: str,
    object_id: str,
    observation_id: str | None = None,
    field: str | None = None,
) -> None:
    """Record that a trace (``object_kind`` ``trace``) or dataset item refers to a record."""
    conn.run(
        "INSERT INTO media_refs (project_id, media_id, object_kind, object_id, observation_id,"
        " field) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (project_id, media_id, object_kind, object_id, observation_id or "", field or ""),
    )


def media_of_trace(conn: Conn, project_id: str, trace_id: str) -> list[Row]:
    """The records a trace refers to (for export), by id."""
    return conn.all(
        f"SELECT DISTINCT {', '.join('m.' + c.strip() for c in _COLUMNS.split(','))}"
        " FROM media m JOIN media_refs r ON r.project_id = m.project_id AND r.media_id = m.id"
        " WHERE r.project_id = ? AND r.object_kind = 'trace' AND r.object_id = ? ORDER BY m.id",
        (project_id, trace_id),
    )


def _free_unheld(conn: Conn, hashes: set[str]) -> None:
    stamp = conn.dialect.ts(now())
    for sha in sorted(hashes):
        if not conn.scalar("SELECT 1 FROM media WHERE sha256 = ? LIMIT 1", (sha,)):
            conn.run(
                "INSERT INTO media_freed (sha256, freed_at) VALUES (?, ?)"
                " ON CONFLICT (sha256) DO NOTHING",
                (sha, stamp),
            )


def _delete_records(conn: Conn, project_id: str, media_ids: Sequence[str]) -> int:
    """Delete records that nothing refers to any more; their unheld blobs are freed."""
    hashes: set[str] = set()
    deleted = 0
    for media_id in media_ids:
        if conn.scalar(
            "SELECT 1 FROM media_refs WHERE project_id = ? AND media_id = ? LIMIT 1",
            (project_id, media_id),
        ):
            continue
        sha = conn.scalar(
            "SELECT sha256 FROM media WHERE project_id = ? AND id = ?", (project_id, media_id)
        )
        if sha is None:
            continue
        deleted += conn.run(
            "DELETE FROM media WHERE project_id = ? AND id = ?", (project_id, media_id)
        )
        hashes.add(sha)
    _free_unheld(conn, hashes)
    return deleted


def release_traces(conn: Conn, project_id: str, trace_ids: Sequence[str]) -> int:
    """Drop the references of deleted traces; a record whose last reference went is
    deleted (and its blob freed when no record holds it). Returns the records deleted.
    Runs in the transaction that deletes the traces."""
    touched: list[str] = []
    ids = list(dict.fromkeys(trace_ids))
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        params = [project_id, *chunk]
        touched += [
            r["media_id"]
            for r in conn.all(
                "SELECT DISTINCT media_id FROM media_refs WHERE project_id = ?"
                f" AND object_kind = 'trace' AND object_id IN ({marks})",
                params,
            )
        ]
        conn.run(
            "DELETE FROM media_refs WHERE project_id = ? AND object_kind = 'trace'"
            f" AND object_id IN ({marks})",
            params,
        )
    return _delete_records(conn, project_id, list(dict.fromkeys(touched)))


def delete_unreferenced(conn: Conn, created_before: datetime) -> int:
    """Delete every record made before ``created_before`` that nothing refers to (an
    upload whose trace never came, or whose references were dropped); their unheld
    blobs are freed. Returns the records deleted."""
    rows = conn.all(
        "SELECT project_id, id FROM media m WHERE created_at < ? AND NOT EXISTS"
        " (SELECT 1 FROM media_refs r WHERE r.project_id = m.project_id AND r.media_id = m.id)",
        (conn.dialect.ts(created_before),),
    )
    deleted = 0
    by_project: dict[str, list[str]] = {}
    for row in rows:
        by_project.setdefault(row["project_id"], []).append(row["id"])
    for project_id, media_ids in by_project.items():
        deleted += _delete_records(conn, project_id, media_ids)
    return deleted


def freed_blobs(conn: Conn, limit: int = 1000) -> list[str]:
    """Keys of blobs no record holds (to delete from the blob store), oldest first."""
    return [
        r["sha256"]
        for r in conn.all(
            "SELECT sha256 FROM media_freed ORDER BY freed_at, sha256 LIMIT ?", (limit,)
        )
    ]


def forget_freed(conn: Conn, keys: Sequence[str]) -> list[str]:
    """Take ``keys`` off the freed list once their blobs are deleted; returns the keys
    that were still free (a key some record holds again is kept: do not delete it)."""
    gone = []
    for key in keys:
        if conn.run("DELETE FROM media_freed WHERE sha256 = ?", (key,)):
            gone.append(key)
    return gone
