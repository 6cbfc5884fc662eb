"""0021: the time indexes of traces and observations end with the id, the tiebreak of
the lists' order, so a page's boundary is found in the index alone."""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """``traces_time`` becomes (project, timestamp, id) and ``observations_time``
    (project, start time, id): the same number of indexes to keep on writes, and a
    list's ``ORDER BY time DESC, id DESC`` with an offset walks index entries only
    (the rows of the page itself are read by key afterwards)."""
    ddl(
        conn,
        """
        DROP INDEX traces_time;
        CREATE INDEX traces_time ON traces (project_id, timestamp, id);
        DROP INDEX observations_time;
        CREATE INDEX observations_time ON observations (project_id, start_time, id)
        """,
    )
