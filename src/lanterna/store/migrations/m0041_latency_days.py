"""The latency histograms by UTC day too: ``rollup_observation_latency_days``."""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """``rollup_observation_latency_days``: ``rollup_observation_latency`` (latency and
    time-to-first-token histograms per observation hour, environment, model, measure
    and bucket) summed by the observation's UTC day. A percentile over 30 days read
    about 1.2 M hourly rows at 3 M observations (some 4-5 s on SQLite); whole days now
    come from this table and only the hours at either end from the hourly one, as for
    the other daily levels (``rollup_read.COARSER``). Kept by the write path like them;
    built here from the hourly table."""
    ddl(
        conn,
        """
        CREATE TABLE rollup_observation_latency_days (
            project_id TEXT NOT NULL,
            day TEXT NOT NULL,
            environment TEXT NOT NULL,
            model TEXT NOT NULL,
            measure TEXT NOT NULL,
            bucket INTEGER NOT NULL,
            observations BIGINT NOT NULL,
            seconds {FLOAT} NOT NULL,
            PRIMARY KEY (project_id, measure, day, environment, model, bucket)
        ) {CLUSTERED}
        """,
    )
    build(conn)


def build(conn: Conn) -> None:
    """Fill the (empty) daily table from ``rollup_observation_latency``."""
    conn.run(
        "INSERT INTO rollup_observation_latency_days (project_id, day, environment, model,"
        " measure, bucket, observations, seconds) SELECT project_id, substr(hour, 1, 10),"
        " environment, model, measure, bucket, SUM(observations), SUM(seconds)"
        " FROM rollup_observation_latency"
        " GROUP BY project_id, substr(hour, 1, 10), environment, model, measure, bucket"
    )
