"""Reading the rollups (:mod:`lanterna.store.rollups`): sums and histograms over whole
UTC hours, grouped by and filtered on the tables' dimensions, each read from the
coarsest level that holds the answer (whole days from a daily table, the hours at
either end from the hourly one, or a partial day as the day less its hours outside
the range when those are fewer: :func:`coarsest`, :func:`split_days`, :func:`_parts`).

For the dashboard's metrics (:mod:`lanterna.analytics.metrics`) and for the metrics
query planner. A planner answers a query from the rollups when

1. its time range is on the time a table is keyed by (the *trace's* timestamp for the
   trace-timed tables, the observation's start for ``rollup_observation_facets`` and
   ``rollup_observation_latency``, the score's timestamp for ``rollup_score_hours``),
2. every dimension it groups by and every filter it applies is an equality (or
   "one of") on dimensions of one table (:data:`DIMENSIONS`, :func:`covers`), and
3. its measures are sums of that table's values (:data:`MEASURES`), or percentiles
   and histograms of a bucketed measure (trace latency: ``rollup_trace_hours`` by
   ``latency_bucket``; observation latency and time to first token:
   ``rollup_observation_latency`` by ``measure`` and ``bucket``); a percentile read
   from buckets is within :data:`~lanterna.store.rollups.PERCENTILE_ERROR` of the
   exact value (:func:`percentile`).

It splits the range with :func:`split_hours`, calls :func:`read` for the whole hours and
reads the partial hours at either end from raw rows, then adds the two. Averages are
sums over counts (``latency_sum / traces`` of traces with observations, ``seconds /
observations`` of a bucketed measure); rates are sums over sums.

Text dimensions store ``''`` for "none" (a trace without a name, an observation without
a model); :func:`read` returns ``None`` for them and a filter value ``None`` matches
them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from .db import Conn
from .rollups import NO_LATENCY, TABLES, middle

#: table -> the dimensions it can group by and filter on (besides ``hour``/``day``)
DIMENSIONS: dict[str, tuple[str, ...]] = {
    table: tuple(k for k in keys if k not in ("hour", "day"))
    for table, (_, keys, _) in TABLES.items()
}
#: table -> the values it sums
MEASURES: dict[str, tuple[str, ...]] = {table: values for table, (_, _, values) in TABLES.items()}
#: the time dimensions :func:`read` can group by: hour (``YYYY-MM-DDTHH``) and day
#: (``YYYY-MM-DD``), both UTC
TIME = {"hour": "hour", "day": "substr(hour, 1, 10)"}
_TEXT = {"environment", "trace_name", "name", "model", "user_id", "measure", "value"}
#: the tables keyed by UTC day (``day``, ``YYYY-MM-DD``) instead of hour
DAILY = {
    "rollup_days",
    "rollup_model_days",
    "rollup_observation_facet_days",
    "rollup_observation_latency_days",
}
#: the time dimensions of a daily table
DAY_TIME = {"day": "day"}
#: fine table -> the coarse (daily) one that answers the same sums when a query names
#: none of the dimensions the coarse one leaves out (trace and observation names) and
#: groups by day or not by time: whole days from it, the hours at either end from the
#: fine one
COARSER = {
    "rollup_trace_hours": "rollup_days",
    "rollup_observation_hours": "rollup_model_days",
    "rollup_model_traces": "rollup_model_days",
    "rollup_observation_facets": "rollup_observation_facet_days",
    "rollup_observation_latency": "rollup_observation_latency_days",
}

#: each fine table of :data:`COARSER` -> its value every row holds more than zero of (a
#: group whose sum of it is zero has no row)
COUNT = {
    "rollup_trace_hours": "traces",
    "rollup_observation_hours": "observations",
    "rollup_model_traces": "traces",
    "rollup_observation_facets": "observations",
    "rollup_observation_latency": "observations",
}


def coarsest(
    table: str, measures: Sequence[str], dimensions: Sequence[str], filters: Sequence[str] = ()
) -> str:
    """The coarsest level of ``table`` that groups by ``dimensions``, filters on
    ``filters`` and sums ``measures``: ``table`` itself or its :data:`COARSER` one
    (about a hundredth of the rows when names vary, as they do)."""
    coarse = COARSER.get(table)
    if (
        coarse is not None
        and covers(coarse, dimensions, filters)
        and set(measures) <= set(MEASURES[coarse])
    ):
        return coarse
    return table


class Excluding(tuple[Any, ...]):
    """Filter values meaning "any value but these" (``NOT IN``), where a plain sequence
    means "one of these" (``IN``)."""

    __slots__ = ()


def narrow(have: Sequence[Any] | None, values: Sequence[Any]) -> Sequence[Any]:
    """The values two filters on one dimension both allow (``have`` None: no filter
    yet); either may be :class:`Excluding`."""
    if have is None:
        return values
    if isinstance(have, Excluding) and isinstance(values, Excluding):
        return Excluding(dict.fromkeys([*have, *values]))
    if isinstance(values, Excluding):
        return [v for v in have if v not in values]
    if isinstance(have, Excluding):
        return [v for v in values if v not in have]
    return [v for v in have if v in values]


def covers(table: str, dimensions: Sequence[str], filters: Sequence[str] = ()) -> bool:
    """True when ``table`` can group by ``dimensions`` and filter on ``filters``
    (names of dimensions: its own, ``hour`` and ``day``; a daily table: not ``hour``)."""
    have = set(DIMENSIONS[table]) | set(DAY_TIME if table in DAILY else TIME)
    return set(dimensions) <= have and set(filters) <= have


def split_hours(
    start: datetime, end: datetime
) -> tuple[tuple[datetime, datetime] | None, list[tuple[datetime, datetime]]]:
    """``[start, end)`` split into the whole UTC hours inside it (``(first, last)``,
    None when there are none) and the partial ranges at either end (empty ones left
    out): the rollups answer the first, raw rows the others."""
    start = start.astimezone(timezone.utc)
    end = end.astimezone(timezone.utc)
    first = start.replace(minute=0, second=0, microsecond=0)
    if first < start:
        first += timedelta(hours=1)
    last = end.replace(minute=0, second=0, microsecond=0)
    if first >= last:
        return None, [(start, end)] if start < end else []
    parts = [(a, b) for a, b in ((start, first), (last, end)) if a < b]
    return (first, last), parts


def kept(conn: Conn) -> bool:
    """Whether ``conn``'s database keeps the hourly and daily rollups of
    :data:`~lanterna.store.rollups.TABLES`: every backend does (on the ClickHouse
    event store, ``Store.events_conn``, as views of ``store/clickhouse/rollups.py``)."""
    return conn.dialect.name in ("sqlite", "postgresql", "clickhouse")


def totals_kept(conn: Conn) -> bool:
    """Whether ``conn``'s database keeps the per-trace, per-user and per-session
    totals (``trace_totals``, ``user_totals``, ``session_totals``) and the A/B rollups
    the write path keeps on SQL. The ClickHouse event store keeps none: what reads
    them reads its raw rows there, which it is built to sum."""
    return conn.dialect.name != "clickhouse"


def read(
    conn: Conn,
    table: str,
    project_id: str,
    first: datetime,
    last: datetime,
    *,
    measures: Sequence[str],
    group_by: Sequence[str] = (),
    filters: Mapping[str, Sequence[Any]] | None = None,
) -> list[dict[str, Any]]:
    """``SUM`` of each of ``measures`` of ``table``, grouped by ``group_by``, over the
    whole UTC hours ``[first, last)`` of one project, where each dimension named in
    ``filters`` is one of the values given (none of them, for :class:`Excluding`); read
    from the :func:`coarsest` level that holds them.

    Each row holds the ``group_by`` columns (``hour``/``day`` labels, dimension values
    with ``None`` for ``''``) and the sums under the measures' names. Group by
    ``latency_bucket`` (``rollup_trace_hours``) or ``measure`` and ``bucket``
    (``rollup_observation_latency``) for histograms (:func:`percentile`). Raises
    ValueError for a name the table does not have.
    """
    filters = filters or {}
    if not covers(table, group_by, list(filters)):
        raise ValueError(f"{table} cannot group by {list(group_by)} or filter on {list(filters)}")
    unknown = set(measures) - set(MEASURES[table])
    if unknown:
        raise ValueError(f"{table} has no measure {sorted(unknown)}")
    coarse = coarsest(table, measures, group_by, list(filters))
    parts = _parts(table, coarse, first, last)
    asked = list(measures)
    subtracts = any(sign < 0 for *_, sign in parts)
    count = COUNT[table] if subtracts else ""
    if subtracts and count not in asked:
        asked.append(count)  # to drop the groups a day's sums less its other hours empty
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    single = len(group_by) == 1 and group_by[0]
    for name, low, high, sign in parts:
        for r in _select(conn, name, project_id, low, high, asked, group_by, filters):
            key = (r[single],) if single else tuple(r[g] for g in group_by)
            have = out.get(key)
            if have is None:  # the group's first row
                if sign < 0:
                    for m in asked:
                        r[m] = -r[m]
                out[key] = r
                continue
            # a group in whole days and in the hours at either end
            for m in asked:
                have[m] += sign * r[m]
    if subtracts:
        out = {k: r for k, r in out.items() if r[count] > 0}
        if count not in measures:
            for r in out.values():
                del r[count]
    rows = list(out.values())
    for g in group_by:
        if g in _TEXT:
            for r in rows:
                if r[g] == "":
                    r[g] = None
    return rows


def _parts(
    table: str, coarse: str, first: datetime, last: datetime
) -> list[tuple[str, str, str, int]]:
    """What to sum for the whole hours ``[first, last)``: ``(table, low, high, sign)``
    per read. With a coarse (daily) level: the whole days from it, and each partial
    day at either end either as its hours in the range (fine table) or, when fewer of
    its hours fall outside the range than inside, as the whole day (coarse) less its
    hours outside (fine, subtracted). A range ending now thus reads today's row of the
    daily table and the hours still to come (none) instead of today's past hours."""
    if coarse == table:
        return [(table, _label(first), _label(last), 1)]
    days, edges = split_days(first, last)
    if days is None:
        return [(table, _label(first), _label(last), 1)]
    d0, d1 = days
    parts: list[tuple[str, str, str, int]] = []
    for a, b in edges:
        day = a.replace(hour=0)
        inside = (b - a) // timedelta(hours=1)
        if 24 - inside >= inside:
            parts.append((table, _label(a), _label(b), 1))
            continue
        d0, d1 = min(d0, day), max(d1, day + timedelta(days=1))
        parts.extend(
            (table, _label(x), _label(y), -1)
            for x, y in ((day, a), (b, day + timedelta(days=1)))
            if x < y
        )
    parts.append((coarse, d0.date().isoformat(), d1.date().isoformat(), 1))
    return parts


def _select(
    conn: Conn,
    table: str,
    project_id: str,
    low: str,
    high: str,
    measures: Sequence[str],
    group_by: Sequence[str],
    filters: Mapping[str, Sequence[Any]],
) -> list[dict[str, Any]]:
    """One table's sums over ``[low, high)`` (hour labels, or day labels for a table
    keyed by day)."""
    time = DAY_TIME if table in DAILY else TIME
    column = "day" if table in DAILY else "hour"
    where = ["project_id = ?", f"{column} >= ?", f"{column} < ?"]
    params: list[Any] = [project_id, low, high]
    for dim, given in filters.items():
        values = ["" if v is None and dim in _TEXT else v for v in given]
        negate = "NOT " if isinstance(given, Excluding) else ""
        if not values:
            if not negate:
                where.append("1 = 0")
            continue
        where.append(f"{time.get(dim, dim)} {negate}IN ({', '.join('?' * len(values))})")
        params.extend(values)
    cols = [f"{time.get(g, g)} AS {g}" for g in group_by]
    sums = [f"SUM({m}) AS {m}" for m in measures]
    source = table
    if table == "rollup_user_hours":
        if filters.get("user_id") and not isinstance(filters["user_id"], Excluding):
            # Some users' hours: their own rows (the key leads with the hour).
            source += conn.dialect.indexed_by("rollup_user_hours_user")
        else:
            # The range's rows by the key: without planner statistics SQLite took the
            # user index (it holds every column, 0047) to group by user without a
            # sort, a walk of every user-hour of the project whatever the range.
            source = conn.dialect.by_index(table, "sqlite_autoindex_rollup_user_hours_1")
    sql = f"SELECT {', '.join([*cols, *sums])} FROM {source} WHERE {' AND '.join(where)}"
    if group_by:
        sql += f" GROUP BY {', '.join(time.get(g, g) for g in group_by)}"
    rows = conn.all(sql, params)
    for r in rows:
        for m in measures:
            r[m] = r[m] or 0
    return rows


def split_days(
    first: datetime, last: datetime
) -> tuple[tuple[datetime, datetime] | None, list[tuple[datetime, datetime]]]:
    """Whole UTC hours ``[first, last)`` split into the whole UTC days inside them
    (None when there are none) and the hours at either end (empty ones left out)."""
    first = first.astimezone(timezone.utc)
    last = last.astimezone(timezone.utc)
    d0 = first.replace(hour=0)
    if d0 < first:
        d0 += timedelta(days=1)
    d1 = last.replace(hour=0)
    if d0 >= d1:
        return None, [(first, last)]
    return (d0, d1), [(a, b) for a, b in ((first, d0), (d1, last)) if a < b]


def _label(at: datetime) -> str:
    """The ``hour`` label of a time (``YYYY-MM-DDTHH``, UTC; years zero-padded)."""
    return at.astimezone(timezone.utc).isoformat()[:13]


def percentile(counts: Mapping[int, int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a histogram ``{bucket: count}`` (the nearest-rank
    value's bucket middle, within ``PERCENTILE_ERROR`` of it), or None when empty.
    :data:`~lanterna.store.rollups.NO_LATENCY` (traces without observations) is
    left out."""
    # (A count below zero: an hour's histogram less raw rows whose latency fell in the
    # next bucket when computed apart; within the bound either way.)
    items = sorted((b, n) for b, n in counts.items() if b != NO_LATENCY and n > 0)
    total = sum(n for _, n in items)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for b, n in items:
        seen += n
        if seen >= rank:
            return middle(b)
    return middle(items[-1][0])


def no_empty(value: Any) -> Any:
    """A dimension's value from raw rows as the rollups key it: they keep "no value" as
    ``""`` and answer it as None, so an empty string and a missing value are one group
    there; raw rows added to (or taken from) rollup sums must land in that group."""
    return None if value == "" else value
