"""0021: on SQLite, ``traces_time`` holds the traces' tags, so a tag filter over a time
range reads no row that fails it (PostgreSQL answers tag filters from its GIN index)."""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """``traces_time`` becomes (project, timestamp, tags) on SQLite: the same number of
    indexes to keep on writes, the same order for the planner (the tags after the
    timestamp change no plan's ordering), and the JSON text of the tags in the index.
    A database with planner statistics gets the new index's (dropping an index drops
    them, and SQLite then plans as if it knew nothing about it)."""
    if conn.dialect.name != "sqlite":
        return
    ddl(
        conn,
        """
        DROP INDEX traces_time;
        CREATE INDEX traces_time ON traces (project_id, timestamp, tags)
        """,
    )
    if conn.scalar("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"):
        conn.raw.execute("ANALYZE traces_time")
