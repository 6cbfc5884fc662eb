"""Spend: the cost (USD) of the traces of a project, a user, a session or a tag in a
time range, as :mod:`lanterna.analytics.metrics` defines cost (the sum of ``total_cost``
over the traces' observations, traces selected by their ``timestamp``).

Budgets (:mod:`lanterna.alerts.budgets`) read it. A project's or a user's spend goes
through the metrics query layer (:mod:`.query`), which answers the whole hours of the
range from the hourly rollups (a period's bounds are whole hours, so a budget's spend
reads no raw row); a session's or a tag's (no rollup holds them) is summed from raw rows.
The evaluation judge's own traces (environment ``lanterna-evaluation``) are left out.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..store.db import Conn
from ..timeutil import format_ts
from .app_traffic import NOT_APP, app_filters
from .metrics import JOIN, USAGE, Scope, Usage
from .query import parse_query, run_query

#: The range of an open end: before any trace, after any trace (whole hours).
_EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
_LATEST = datetime(9000, 1, 1, tzinfo=timezone.utc)


def cost_between(
    conn: Conn,
    project_id: str,
    start: datetime | None,
    end: datetime | None,
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    tag: str | None = None,
) -> float:
    """The cost of the project's traces with ``timestamp`` in ``[start, end)`` (either
    end open when None), narrowed to a user, a session and/or a tag; the evaluation
    judge's own traces (:mod:`.app_traffic`) are not the project's spend."""
    if session_id is None and tag is None:
        filters: list[dict[str, Any]] = []
        if user_id is not None:
            filters.append(
                {"type": "string", "column": "userId", "operator": "=", "value": user_id}
            )
        body = {
            "view": "traces",
            "metrics": [{"measure": "totalCost", "aggregation": "sum"}],
            "filters": app_filters(filters),
            "fromTimestamp": format_ts(start or _EARLIEST),
            "toTimestamp": format_ts(end or _LATEST),
        }
        rows = run_query(conn, project_id, parse_query(body, version=1))
        return float(rows[0]["sum_totalCost"] or 0.0) if rows else 0.0
    tags = () if tag is None else (tag,)
    scope = Scope(project_id, start, end, user_id=user_id, tags=tags, exclude_environments=NOT_APP)
    where, params = scope.where(conn)
    if session_id is not None:
        where += " AND t.session_id = ?"
        params.append(session_id)
    row = conn.one(f"SELECT {USAGE} FROM traces t {JOIN} WHERE {where}", params)
    return Usage.of(row).cost
