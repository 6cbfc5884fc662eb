"""Top users' hours read from their index alone (SQLite)."""

from __future__ import annotations

from ..db import Conn
from .sql import ddl

#: The rollup's sums, in the index after its key.
_SUMS = (
    "traces, observed_traces, errors, observations, cost, input_tokens, output_tokens, total_tokens"
)


def up(conn: Conn) -> None:
    """``rollup_user_hours_user`` (0042) holds the rollup's sums too on SQLite, so that
    a user's hours are read from the index in its order instead of one lookup of the
    table's key per hour (10 M observations: the 20 busiest users' 30 days, 42,000
    rows, 154 -> 8 ms). The index is then written on every update of a user-hour's
    sums, not only on a new one. PostgreSQL keeps the narrow index: there an index
    holding the sums would stop every update of them from being a heap-only one.

    Reads of a range's user-hours name the table's key (``rollup_read``): SQLite
    would otherwise take this index to group by user without sorting, a walk of
    every user-hour of the project. A database with planner statistics gets the
    new index's (dropping an index drops them)."""
    if conn.dialect.name != "sqlite":
        return
    ddl(
        conn,
        "DROP INDEX rollup_user_hours_user;"
        " CREATE INDEX rollup_user_hours_user ON rollup_user_hours"
        f" (project_id, user_id, hour, environment, {_SUMS})",
    )
    if conn.scalar("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"):
        conn.raw.execute("ANALYZE rollup_user_hours_user")
