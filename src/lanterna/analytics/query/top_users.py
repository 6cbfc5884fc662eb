"""Top users without grouping every user of the range: "the 20 users who cost most in
the last 30 days" (the default dashboard's widget, the metrics page, a v1 query by
``userId`` ordered by cost with a ``row_limit``).

Grouping the hourly user rollup by user reads one row per (user, hour, environment)
of the range: 260,000 rows for 30 days at 10 M observations, whatever the limit. This
reads the users in the order of an *upper bound* of the ordered metric instead, their
all-time totals in ``user_totals`` (one narrow row per user, kept exact in the write
path), and sums the range's rows of a user only while that user might still rank: a
user's total over a range is at most their all-time total, because every trace adds
zero or more to it (no cost is stored negative: ingestion drops negative
``costDetails`` and usage, and prices are non-negative). The walk stops at the first
user whose bound falls below the ``limit``-th exact value found (the threshold
algorithm); a user's exact sums are read through ``rollup_user_hours_user`` (the
user's hours in the range) and, for the partial hours at either end, from the raw
rows as the planner reads them.

It answers only what it answers exactly, else ``None`` (the caller groups as before):
a query by ``userId`` alone, without a time dimension, filtered on ``environment``
only, ordered (descending) by its first metric, the trace count, the observation
count or the cost, with a ``row_limit`` of at most :data:`MAX_LIMIT`; and only when it
settles within :data:`MAX_EXACT` users. The row of traces without a user (``userId``
null) is computed by the caller (:func:`.plan.top_user_sums`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ...store.db import Conn
from ...store.filters import Condition
from .model import Metric, Query

#: (measure, aggregation) -> the ``user_totals`` column bounding it from above.
BOUNDS = {
    ("totalCost", "sum"): "cost",
    ("count", "count"): "traces",
    ("count", "sum"): "traces",
    ("observationsCount", "sum"): "observations",
}
#: Users whose exact sums are read before giving up (the caller then groups them all).
MAX_EXACT = 2_000
#: The largest ``row_limit`` walked: past it, reading each user's own hours costs
#: about what grouping all of them does.
MAX_LIMIT = 100


def ordered_metric(query: Query) -> tuple[str, Metric] | None:
    """The ``user_totals`` column bounding the metric ``query`` is ordered by, and that
    metric, when this module can answer ``query``; else None."""
    if query.dimensions != ("userId",) or query.granularity or query.view.name != "traces":
        return None
    if any(c.column != "environment" for c in query.filters) or not query.metrics:
        return None
    if query.row_limit > MAX_LIMIT:
        return None
    metric = query.metrics[0]
    # Ordered by the first metric, descending (the default order too), so that ties
    # fall to the user id as the planner orders them.
    if query.order_by not in ((), ((metric.column, "desc"),)):
        return None
    bound = BOUNDS.get((metric.measure, metric.aggregation))
    return None if bound is None else (bound, metric)


def top_users(
    conn: Conn,
    project_id: str,
    query: Query,
    *,
    sums: Callable[[list[str]], dict[tuple[Any, ...], Any]],
    value: Callable[[Metric, Any], Any],
) -> dict[tuple[Any, ...], Any] | None:
    """The groups (key ``(user,)`` -> sums) holding ``query``'s first ``row_limit``
    users in its order (and perhaps a few more), or None when :func:`ordered_metric`
    refuses the query or the walk does not settle within
    :data:`MAX_EXACT` users. ``sums(users)`` gives the exact groups of those users
    over the query's range; ``value(metric, sums)`` a metric's value of a group."""
    found = ordered_metric(query)
    if found is None:
        return None
    bound_column, metric = found
    limit = query.row_limit
    chosen: dict[tuple[Any, ...], Any] = {}

    def rank(item: tuple[tuple[Any, ...], Any]) -> tuple[float, str]:
        v = value(metric, item[1])
        return (-v if v is not None else math.inf, item[0][0])

    exact = 0
    offset = 0
    # The first `limit` users; the next ones usually stop at their first user's bound.
    size = max(limit, 1)
    d = conn.dialect
    ordered: list[dict[str, Any]] = []  # the users in bound order, read ahead
    read_all = False

    def users(offset: int, size: int) -> list[dict[str, Any]]:
        # Each read sorts every user of the range: read four times the limit at once,
        # which is as far as most walks go.
        nonlocal read_all
        while len(ordered) < offset + size and not read_all:
            want = max(offset + size - len(ordered), 4 * max(limit, 1))
            got = conn.all(
                f"SELECT user_id, {bound_column} AS bound FROM user_totals"
                " WHERE project_id = ? AND last_seen >= ? AND first_seen < ?"
                f" ORDER BY {bound_column} DESC, user_id LIMIT ? OFFSET ?",
                [project_id, d.ts(query.start), d.ts(query.end), want, len(ordered)],
            )
            ordered.extend(got)
            read_all = len(got) < want
        return ordered[offset : offset + size]

    while True:
        rows = users(offset, size)
        offset += len(rows)
        best = sorted(chosen.items(), key=rank)[:limit]
        kth = value(metric, best[-1][1]) if len(best) >= limit else None
        kth_user = best[-1][0][0] if best else None
        wanted: list[str] = []
        done = len(rows) < size
        for r in rows:
            bound = float(r["bound"])
            if kth is not None:
                slack = 1e-9 * max(1.0, abs(kth))
                if bound < kth - slack:
                    done = True
                    break
                if bound <= kth + slack and r["user_id"] > kth_user:
                    continue  # at best a tie, which the user ranked before it wins
            wanted.append(r["user_id"])
        if wanted:
            exact += len(wanted)
            if exact > MAX_EXACT:
                return None
            for key, s in sums(wanted).items():
                if s.rows > 0:
                    chosen[key] = s
        if done:
            return chosen
        size = min(size * 2, 1000)


def only_users(query: Query, users: list[str]) -> Query:
    """``query`` restricted to ``users`` (a ``userId`` "any of" filter)."""
    cond = Condition("stringOptions", "userId", "any of", users)
    return replace(query, filters=(*query.filters, cond))
