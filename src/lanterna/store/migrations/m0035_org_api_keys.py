"""0035: organisation API keys, a key pair scoped to an organisation (created by its
owners in the dashboard or with ``lanterna keys create --org``), accepted only by the
organisation-level API (projects, their keys and members, SCIM). The secret is stored
as a salted hash, as a project key's is."""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """Create ``org_api_keys``."""
    ddl(
        conn,
        """
        CREATE TABLE org_api_keys (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL REFERENCES organizations(id),
            public_key TEXT NOT NULL UNIQUE,
            secret_salt TEXT NOT NULL,
            secret_hash TEXT NOT NULL,
            display_secret TEXT NOT NULL,
            note TEXT,
            created_at {TS} NOT NULL,
            last_used_at {TS},
            revoked_at {TS}
        );
        CREATE INDEX org_api_keys_org ON org_api_keys (org_id)
        """,
    )
