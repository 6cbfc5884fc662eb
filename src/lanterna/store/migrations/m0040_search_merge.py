"""SQLite: the trace search index merges its segments less often (ingestion cost)."""

from __future__ import annotations

from ..db import Conn

#: Segments of one level the FTS5 index lets accumulate before it merges them (SQLite's
#: default is 4). Each merge rewrites what it merges, so a higher value writes each
#: trigram fewer times over the index's life; a search reads at most this many
#: segments per level (a few more page reads per trigram).
AUTOMERGE = 16


def up(conn: Conn) -> None:
    """Set ``automerge`` of the ``traces_search`` FTS5 table (migration 0014) to
    :data:`AUTOMERGE`: measured in-process with ``bench/ingest.py``'s traces (about
    600 characters of input and output each, 16 traces per transaction), the write
    step went from about 59 to 57 us per observation. The setting is stored in the
    index itself. PostgreSQL's ``pg_trgm`` index has no such setting: nothing to do."""
    if conn.dialect.name != "sqlite":
        return
    found = conn.scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'traces_search'")
    if found:
        conn.run(
            "INSERT INTO traces_search (traces_search, rank) VALUES ('automerge', ?)",
            [AUTOMERGE],
        )
