"""0022: API keys get a role (``owner``, ``admin``, ``member``, ``viewer``, as project
members have), which the alerting, channel and budget routes check before a change.
Keys that exist keep the access they had: they become ``admin`` keys."""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """Add ``api_keys.role`` (``admin`` for every existing key)."""
    ddl(conn, "ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'")
