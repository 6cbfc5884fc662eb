"""Per-project request counters of the rate limits, shared by every server process."""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """``rate_counters``: how much of each project's limit (``kind``: ``ingest`` events,
    ``read`` requests) the processes together used in the minute starting at ``window_start``
    (seconds since the epoch)."""
    ddl(
        conn,
        """
        CREATE TABLE rate_counters (
            project_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            window_start BIGINT NOT NULL,
            used BIGINT NOT NULL,
            PRIMARY KEY (project_id, kind, window_start)
        )
        """,
    )
