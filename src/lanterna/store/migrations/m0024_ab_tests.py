"""A/B tests (``ab-tests``): one row per test, its variants and weights as JSON."""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """The ``ab_tests`` table: definition, state, winner; names unique per project."""
    ddl(
        conn,
        """
        CREATE TABLE ab_tests (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            description TEXT,
            unit TEXT NOT NULL,
            variants {JSON} NOT NULL,
            control TEXT NOT NULL,
            prompt TEXT,
            primary_metric TEXT NOT NULL,
            guardrails {JSON} NOT NULL,
            mde {FLOAT},
            alpha {FLOAT} NOT NULL,
            salt TEXT NOT NULL,
            state TEXT NOT NULL,
            winner TEXT,
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            started_at {TS},
            stopped_at {TS},
            concluded_at {TS},
            PRIMARY KEY (project_id, id)
        );
        CREATE UNIQUE INDEX ab_tests_name ON ab_tests (project_id, name)
        """,
    )
