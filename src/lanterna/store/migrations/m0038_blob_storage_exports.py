"""Scheduled exports to object storage: one blob-storage integration per project (the
bucket, its sealed secret key, format and schedule), its sync state and its lease."""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """Create ``blob_storage_integrations``."""
    ddl(
        conn,
        """
        CREATE TABLE blob_storage_integrations (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            bucket_name TEXT NOT NULL,
            endpoint TEXT,
            region TEXT NOT NULL,
            access_key_id TEXT,
            secret_access_key_sealed TEXT,
            prefix TEXT NOT NULL,
            export_frequency TEXT NOT NULL,
            enabled {BOOL} NOT NULL,
            force_path_style {BOOL} NOT NULL,
            file_type TEXT NOT NULL,
            export_mode TEXT NOT NULL,
            export_start_date {TS},
            compressed {BOOL} NOT NULL,
            export_source TEXT NOT NULL,
            export_field_groups {JSON},
            next_sync_at {TS},
            last_sync_at {TS},
            last_error TEXT,
            last_error_at {TS},
            lease_owner TEXT,
            lease_until {TS},
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL
        )
        """,
    )
