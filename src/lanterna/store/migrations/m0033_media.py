"""Media (images, audio, files) uploaded through ``/api/public/media``: the records, what
refers to them, and the blobs whose last record went (to be deleted from blob storage)."""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """``media``: one record per project and media id (the id is derived from the
    content's SHA-256, ``sha256`` is its hex form and the blob's key); ``uploaded_at`` is
    set once the bytes are stored. ``media_refs``: the traces (and dataset items) whose
    inputs, outputs or metadata refer to a media record; a record goes with its last
    reference. ``media_freed``: blob keys no record holds any more, until the blob store
    deleted them."""
    ddl(
        conn,
        """
        CREATE TABLE media (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            content_type TEXT NOT NULL,
            content_length BIGINT NOT NULL,
            created_at {TS} NOT NULL,
            uploaded_at {TS},
            upload_http_status INTEGER,
            upload_http_error TEXT,
            upload_time_ms BIGINT,
            PRIMARY KEY (project_id, id)
        );
        CREATE INDEX media_sha256 ON media (sha256);
        CREATE TABLE media_refs (
            project_id TEXT NOT NULL,
            media_id TEXT NOT NULL,
            object_kind TEXT NOT NULL,
            object_id TEXT NOT NULL,
            observation_id TEXT NOT NULL DEFAULT '',
            field TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (project_id, media_id, object_kind, object_id, observation_id, field)
        );
        CREATE INDEX media_refs_object ON media_refs (project_id, object_kind, object_id);
        CREATE TABLE media_freed (
            sha256 TEXT PRIMARY KEY,
            freed_at {TS} NOT NULL
        )
        """,
    )
