"""0021: the time indexes of traces and observations end with the id, the tiebreak of
the lists' order, so a page's boundary is found in the index alone; on SQLite the
traces' one holds their tags too, so a tag filter reads no row that fails it."""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """``traces_time`` becomes (project, timestamp, id) and ``observations_time``
    (project, start time, id): the same number of indexes to keep on writes, and a
    list's ``ORDER BY time DESC, id DESC`` with an offset walks index entries only
    (the rows of the page itself are read by key afterwards). SQLite adds the tags to
    ``traces_time`` (its JSON text; PostgreSQL answers tag filters from its GIN index)."""
    tags = ", tags" if conn.dialect.name == "sqlite" else ""
    ddl(
        conn,
        f"""
        DROP INDEX traces_time;
        CREATE INDEX traces_time ON traces (project_id, timestamp, id{tags});
        DROP INDEX observations_time;
        CREATE INDEX observations_time ON observations (project_id, start_time, id)
        """,
    )
