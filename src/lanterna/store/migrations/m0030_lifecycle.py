"""Data lifecycle: per-project masking rules and the leases of background jobs.

``masking_rules`` holds one row per project with its redaction rules (a JSON list,
checked above the store: ``ingest/masking.py``). ``job_leases`` holds one row per
background job that only one process may run at a time (retention): when it is next
due and who holds it until when, taken with one conditional ``UPDATE`` as the alert
rules' leases are.
"""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """Create ``masking_rules`` and ``job_leases``."""
    ddl(
        conn,
        """
        CREATE TABLE masking_rules (
            project_id TEXT NOT NULL PRIMARY KEY,
            rules {JSON} NOT NULL,
            updated_at {TS} NOT NULL
        );
        CREATE TABLE job_leases (
            name TEXT NOT NULL PRIMARY KEY,
            next_run_at {TS},
            lease_owner TEXT,
            lease_until {TS}
        )
        """,
    )
