"""SQLite: the trace search index's vocabulary, for searches of two characters."""

from __future__ import annotations

from ..db import Conn


def up(conn: Conn) -> None:
    """``traces_search_vocab``: an ``fts5vocab`` table over ``traces_search`` (migration
    0014), one row per trigram in the index. It stores nothing and costs no write: it
    reads the index. A search for two characters, shorter than a trigram, reads the
    traces with a trigram that starts with them (``dialect._pair_hits``) instead of
    every trace's input and output. PostgreSQL: nothing to do (``pg_trgm``)."""
    if conn.dialect.name != "sqlite":
        return
    conn.raw.execute(
        "CREATE VIRTUAL TABLE traces_search_vocab USING fts5vocab(traces_search, 'row')"
    )
