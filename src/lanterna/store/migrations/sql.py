"""Helpers the migrations share: run a DDL script with the dialect's column types filled in."""

from __future__ import annotations

from ..db import Conn


def ddl(conn: Conn, script: str) -> None:
    """Run each statement of ``script`` with ``{TS}``-style slots filled by the dialect."""
    for statement in script.format(**conn.dialect.column_types).split(";"):
        if statement.strip():
            conn.raw.execute(statement)


def pg_trgm(conn: Conn) -> bool:
    """Whether PostgreSQL has the ``pg_trgm`` extension (created here when the server
    ships it and the role may: it is a trusted extension since PostgreSQL 13)."""
    if not conn.scalar("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"):
        return False
    conn.raw.execute("SAVEPOINT pg_trgm")
    try:
        conn.raw.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception:  # no privilege: the search scans, as without the extension
        conn.raw.execute("ROLLBACK TO SAVEPOINT pg_trgm")
        return False
    conn.raw.execute("RELEASE SAVEPOINT pg_trgm")
    return True
