"""The audit log: who changed what in a project (keys, members, prompts, settings,
retention, masking, alert rules, budgets, deletions), appended, never updated."""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """Create ``audit_log``, read newest first per project."""
    ddl(
        conn,
        """
        CREATE TABLE audit_log (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            at {TS} NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT,
            detail {JSON},
            PRIMARY KEY (project_id, id)
        );
        CREATE INDEX audit_log_time ON audit_log (project_id, at)
        """,
    )
