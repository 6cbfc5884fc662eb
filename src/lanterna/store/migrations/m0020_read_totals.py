"""0020: ``user_totals`` (one row per project and user: ``lanterna.store.user_totals``)
and ``row_counts`` (traces and observations per project: ``lanterna.store.row_counts``)."""

from __future__ import annotations

from .. import row_counts, user_totals
from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """Per-user totals (first and last seen, traces, observations, cost, tokens) and
    per-project row counts, kept in the write path, built here from the stored rows."""
    ddl(
        conn,
        """
        CREATE TABLE user_totals (
            project_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            first_seen {TS},
            last_seen {TS},
            traces BIGINT NOT NULL,
            observations BIGINT NOT NULL,
            cost {FLOAT} NOT NULL,
            input_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            total_tokens BIGINT NOT NULL,
            PRIMARY KEY (project_id, user_id)
        ) {CLUSTERED};
        CREATE TABLE row_counts (
            project_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            n BIGINT NOT NULL,
            PRIMARY KEY (project_id, kind)
        ) {CLUSTERED}
        """,
    )
    user_totals.backfill(conn)
    row_counts.backfill(conn)
