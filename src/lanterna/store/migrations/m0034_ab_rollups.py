"""Rollups of A/B tests (``store/ab_rollups.py``), so that a readout reads a few
thousand rows instead of every trace of the test; built from the stored traces."""

from __future__ import annotations

from ..ab_rollups import backfill
from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """``ab_members`` (one row per trace whose metadata names an experiment and a
    variant: what it added), ``ab_rollup_hours`` (per experiment, variant and UTC hour
    of the trace: traces, traces without a user or session, cost, latency and error
    counts, sums and sums of squares), ``ab_rollup_units`` (traces per user and per
    session), ``ab_rollup_scores`` and ``ab_rollup_labels`` (scores per name, hour and
    numeric value or string value); then the backfill."""
    ddl(
        conn,
        """
        CREATE TABLE ab_members (
            project_id TEXT NOT NULL,
            trace_id TEXT NOT NULL,
            experiment TEXT NOT NULL,
            variant TEXT NOT NULL,
            hour TEXT NOT NULL,
            user_id TEXT,
            session_id TEXT,
            cost {FLOAT},
            latency {FLOAT},
            error INTEGER,
            PRIMARY KEY (project_id, trace_id)
        );
        CREATE TABLE ab_rollup_hours (
            project_id TEXT NOT NULL,
            experiment TEXT NOT NULL,
            variant TEXT NOT NULL,
            hour TEXT NOT NULL,
            traces BIGINT NOT NULL,
            no_user BIGINT NOT NULL,
            no_session BIGINT NOT NULL,
            costed BIGINT NOT NULL,
            cost_sum {FLOAT} NOT NULL,
            cost_squares {FLOAT} NOT NULL,
            timed BIGINT NOT NULL,
            latency_sum {FLOAT} NOT NULL,
            latency_squares {FLOAT} NOT NULL,
            flagged BIGINT NOT NULL,
            errors BIGINT NOT NULL,
            PRIMARY KEY (project_id, experiment, variant, hour)
        ) {CLUSTERED};
        CREATE TABLE ab_rollup_units (
            project_id TEXT NOT NULL,
            experiment TEXT NOT NULL,
            kind TEXT NOT NULL,
            variant TEXT NOT NULL,
            unit TEXT NOT NULL,
            traces BIGINT NOT NULL,
            PRIMARY KEY (project_id, experiment, kind, variant, unit)
        ) {CLUSTERED};
        CREATE TABLE ab_rollup_scores (
            project_id TEXT NOT NULL,
            experiment TEXT NOT NULL,
            name TEXT NOT NULL,
            variant TEXT NOT NULL,
            hour TEXT NOT NULL,
            value {FLOAT} NOT NULL,
            scores BIGINT NOT NULL,
            PRIMARY KEY (project_id, experiment, name, variant, hour, value)
        ) {CLUSTERED};
        CREATE TABLE ab_rollup_labels (
            project_id TEXT NOT NULL,
            experiment TEXT NOT NULL,
            name TEXT NOT NULL,
            variant TEXT NOT NULL,
            hour TEXT NOT NULL,
            label TEXT NOT NULL,
            scores BIGINT NOT NULL,
            PRIMARY KEY (project_id, experiment, name, variant, hour, label)
        ) {CLUSTERED}
        """,
    )
    backfill(conn)
