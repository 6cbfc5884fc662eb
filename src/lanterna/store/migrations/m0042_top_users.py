"""Top users by their own hours: an index of the hourly user rollup by user."""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """``rollup_user_hours_user`` reads one user's hours of a range (the rollup's key
    leads with the hour: a user's rows are spread over the whole range), so that the
    top users of a range are summed user by user in the order of their all-time
    totals (``analytics.query.top_users``) instead of grouping every user-hour of the
    range. An entry is written once per new (user, hour, environment), not on the
    updates of its sums."""
    ddl(
        conn, "CREATE INDEX rollup_user_hours_user ON rollup_user_hours (project_id, user_id, hour)"
    )
