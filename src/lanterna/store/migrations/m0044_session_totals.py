"""Per-session totals, kept in the write path: the top sessions by cost of a range."""

from __future__ import annotations

from .. import session_totals
from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """``session_totals`` (``store/session_totals.py``): one row per session id of
    traces (their environments, first and last trace time, traces,
    traces with observations, cost, total tokens, cost magnitude), and an index by
    magnitude, built here from ``trace_totals`` in one grouped pass. The metrics
    page's top sessions over 30 days had grouped every trace of the range
    (``trace_totals``' time index: 1.4 M rows at 10 M observations)."""
    ddl(
        conn,
        """
        CREATE TABLE session_totals (
            project_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            environments TEXT,
            first_seen {TS},
            last_seen {TS},
            traces BIGINT NOT NULL,
            observed_traces BIGINT NOT NULL,
            cost {FLOAT} NOT NULL,
            tokens BIGINT NOT NULL,
            magnitude INTEGER NOT NULL,
            PRIMARY KEY (project_id, session_id)
        ) {CLUSTERED};
        CREATE INDEX session_totals_magnitude ON session_totals (project_id, magnitude)
        """,
    )
    session_totals.backfill(conn)
