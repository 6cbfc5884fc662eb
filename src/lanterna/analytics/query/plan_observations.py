"""The query planner's path for the ``observations`` view: the rollups timed by the
*observation's* own UTC hour and environment (``rollup_observation_facets``,
``rollup_observation_latency``, see :mod:`lanterna.store.rollups`), the partial
hours at either end of the range from raw rows, as for the traces view
(:mod:`.plan`).

A query of the observations view goes to these rollups when all of these hold:

- its granularity is none, ``hour``, ``day``, ``week`` or ``month``;
- it groups by and filters on ``environment`` and at most one *facet*:
  ``providedModelName``, ``name`` or ``traceName`` (each observation is counted once
  per facet; two facets together are not kept), filters being ``=`` or ``any of``
  with non-empty string values, or ``is not null``; or it filters ``level = 'ERROR'`` and counts;
- each metric is ``count`` (count, sum), ``errorCount`` or ``errorRate`` (sum, count,
  avg), ``totalCost``, ``inputTokens``, ``outputTokens`` or ``totalTokens`` (sum);
  or, with no facet but the model, ``latency`` or ``timeToFirstToken`` (sum, count,
  avg; percentiles when the caller accepts approximate ones: the bucket's middle,
  within :data:`~lanterna.store.rollups.PERCENTILE_ERROR`).

A sum over observations that all lack the value is null, as in SQL (the facets keep
how many observations have a cost and a total token count).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ...store import rollup_read
from ...store.db import Conn
from ...store.filters import Condition
from ...store.rollups import LATENCY, TTFT, bucket
from .model import TIME_DIMENSION, Metric, Query
from .run import run_raw
from .views import PERCENTILES

RAW, ROLLUP = "raw", "rollup"
FACETS_TABLE, LATENCY_TABLE = "rollup_observation_facets", "rollup_observation_latency"
#: API dimension -> facet of ``rollup_observation_facets``
_FACETS = {"providedModelName": "model", "name": "name", "traceName": "trace_name"}
#: (measure, aggregation) pairs the facets answer exactly
_SUMS = frozenset(
    {
        ("count", "count"),
        ("count", "sum"),
        *((m, a) for m in ("errorCount", "errorRate") for a in ("sum", "count", "avg")),
        ("totalCost", "sum"),
        *((m, "sum") for m in ("inputTokens", "outputTokens", "totalTokens")),
    }
)
#: measures read from the latency histograms (by model), by their ``measure`` there
_DURATIONS = {"latency": LATENCY, "timeToFirstToken": TTFT}
_SQL_LIMIT = 1_000_000_000
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Route:
    """Whether the rollups answer: the tables, or why not (``reason``)."""

    tables: tuple[str, ...] = ()
    reason: str = ""
    facet: str = "model"
    errors_only: bool = False


def route(query: Query, *, approximate: bool = False) -> Route:
    """How the observation rollups answer ``query`` (no tables: they cannot)."""
    facets = {_FACETS[d] for d in query.dimensions if d in _FACETS}
    errors_only = False
    for cond in query.filters:
        if cond.column == "level":
            if (cond.type, cond.operator, cond.value) != ("string", "=", "ERROR"):
                return Route(reason=f"filter on 'level' ({cond.operator}) is not covered")
            errors_only = True
            continue
        if cond.column not in (*_FACETS, "environment") or filter_values(cond) is None:
            return Route(reason=f"filter on {cond.column!r} ({cond.operator}) is not covered")
        if cond.column in _FACETS:
            facets.add(_FACETS[cond.column])
    extra = sorted(set(query.dimensions) - {*_FACETS, "environment"})
    if extra:
        return Route(reason=f"the observation rollups have no dimension {', '.join(extra)}")
    if len(facets) > 1:
        return Route(reason="the observation rollups keep one of model, name and trace name")
    facet = next(iter(facets), "model")
    tables = {FACETS_TABLE}  # the groups and their counts, whatever the metrics
    for metric in query.metrics:
        pair = (metric.measure, metric.aggregation)
        if errors_only and pair not in (("count", "count"), ("count", "sum")):
            return Route(reason=f"{metric.column} of ERROR observations is not kept")
        if pair in _SUMS:
            continue
        summed = metric.aggregation in ("sum", "count", "avg") or (
            approximate and metric.aggregation in PERCENTILES
        )
        if metric.measure in _DURATIONS and facet == "model" and summed:
            tables.add(LATENCY_TABLE)
            continue
        return Route(reason=f"{metric.column} is not summed in the observation rollups")
    return Route(tuple(sorted(tables)), facet=facet, errors_only=errors_only)


def filter_values(cond: Condition) -> Sequence[str] | None:
    """The values an ``=`` or ``any of`` filter allows when they are non-empty
    strings (what a rollup can apply), else None; a ``none of`` filter on
    ``environment`` (non-empty), and ``is not null``, as
    :class:`~lanterna.store.rollup_read.Excluding`."""
    if cond.type == "null" and cond.operator == "is not null":
        return rollup_read.Excluding([""])  # "" stands for none in the rollups
    values: Any = None
    excluded = cond.column == "environment" and cond.operator == "none of" and cond.value
    if cond.type == "string" and cond.operator == "=":
        values = [cond.value]
    elif cond.type in ("stringOptions", "categoryOptions") and (
        cond.operator == "any of" or (excluded and cond.type == "stringOptions")
    ):
        values = cond.value
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        return None
    return rollup_read.Excluding(values) if cond.operator == "none of" else list(values)


@dataclass(slots=True)
class _Sums:
    """What a group adds up to."""

    rows: int = 0  # observations (with ``level = 'ERROR'``: ERROR observations)
    errors: int = 0
    cost: float = 0.0
    costed: int = 0
    tokens: int = 0
    input: int = 0
    output: int = 0
    counted: int = 0
    durations: dict[str, list[float]] = field(default_factory=dict)  # measure: [n, ms]
    histograms: dict[str, Counter[int]] = field(default_factory=dict)

    def duration(self, measure: str) -> list[float]:
        d = self.durations.get(measure)
        if d is None:
            d = self.durations[measure] = [0, 0.0]
        return d

    def histogram(self, measure: str) -> Counter[int]:
        h = self.histograms.get(measure)
        if h is None:  # not setdefault: a Counter built on every call costs more than the sum
            h = self.histograms[measure] = Counter()
        return h


def answer(
    conn: Conn,
    project_id: str,
    query: Query,
    plan: Route,
    timeout: float | None,
    bucket_of: Any,
) -> list[dict[str, Any]]:
    """The answer's rows, unordered (``bucket_of(label, granularity)``: the time
    bucket of a rollup hour or day label)."""
    groups: dict[tuple[Any, ...], _Sums] = defaultdict(_Sums)
    whole, partial = rollup_read.split_hours(query.start, query.end)
    with conn.time_limit(timeout):
        if whole is not None:
            _from_rollups(conn, project_id, query, plan, whole, groups, bucket_of)
    for start, end in partial:
        hour = start.replace(minute=0, second=0, microsecond=0)
        if not query.granularity and end <= hour + _HOUR and (end - start) * 2 > _HOUR:
            # More of the hour inside the range than outside: its rollups less the raw
            # rows outside, so at most half an hour of rows is read one by one. Every
            # figure here is a sum or a count, so the difference is exact.
            with conn.time_limit(timeout):
                _from_rollups(
                    conn, project_id, query, plan, (hour, hour + _HOUR), groups, bucket_of
                )
            for a, b in ((hour, start), (end, hour + _HOUR)):
                if a < b:
                    _from_raw(conn, project_id, query, a, b, timeout, groups, sign=-1)
            continue
        _from_raw(conn, project_id, query, start, end, timeout, groups)
    rows = [_row(query, key, s) for key, s in groups.items() if s.rows > 0]
    if not rows and not query.dimensions and not query.granularity:
        rows = [_row(query, (), _Sums())]  # as SQL: one row of an empty aggregate
    return rows


def _from_rollups(
    conn: Conn,
    project_id: str,
    query: Query,
    plan: Route,
    whole: tuple[datetime, datetime],
    groups: dict[tuple[Any, ...], _Sums],
    bucket_of: Any,
) -> None:
    time = "hour" if query.granularity == "hour" else "day"
    facet_values: Sequence[str] | None = None
    environments: Sequence[str] | None = None
    for cond in query.filters:
        values = filter_values(cond) if cond.column != "level" else None
        if values is None:
            continue
        if cond.column == "environment":
            environments = rollup_read.narrow(environments, values)
        else:
            facet_values = rollup_read.narrow(facet_values, values)

    def read(table: str, measures: list[str], by: list[str], **filters: Any) -> list[Any]:
        if environments is not None:
            filters["environment"] = environments
        return rollup_read.read(
            conn, table, project_id, *whole, measures=measures, group_by=by, filters=filters
        )

    def key(r: dict[str, Any], column: str) -> tuple[Any, ...]:
        values = tuple(
            r["environment"] if d == "environment" else r[column] for d in query.dimensions
        )
        return (*values, bucket_of(r[time], query.granularity)) if query.granularity else values

    dims = ["environment" if d == "environment" else "value" for d in query.dimensions]
    by = [*dims, time] if query.granularity else dims
    # Every plan reads the facets: the groups and their counts.
    filters: dict[str, Any] = {"facet": [plan.facet]}
    if facet_values is not None:
        filters["value"] = facet_values
    measures = ["observations", "errors", "cost", "costed", "counted"]
    measures += ["input_tokens", "output_tokens", "total_tokens"]
    for r in read(FACETS_TABLE, measures, by, **filters):
        s = groups[key(r, "value")]
        s.rows += int(r["errors"] if plan.errors_only else r["observations"])
        s.errors += int(r["errors"])
        s.cost += float(r["cost"])
        s.costed += int(r["costed"])
        s.tokens += int(r["total_tokens"])
        s.input += int(r["input_tokens"])
        s.output += int(r["output_tokens"])
        s.counted += int(r["counted"])
    if LATENCY_TABLE in plan.tables:
        wanted = {_DURATIONS[m.measure] for m in query.metrics if m.measure in _DURATIONS}
        percentiles = any(
            m.aggregation in PERCENTILES for m in query.metrics if m.measure in _DURATIONS
        )
        by = ["model" if b == "value" else b for b in by]
        more: dict[str, Any] = {"measure": sorted(wanted)}
        if facet_values is not None:
            more["model"] = facet_values
        # The seconds only for a sum or an average (not read for percentiles alone).
        summed = any(
            m.measure in _DURATIONS and m.aggregation in ("sum", "avg") for m in query.metrics
        )
        # One measure (the usual case) is not grouped by, and the bucket (an integer)
        # leads: SQLite sorts a 30-day read of ~100,000 daily rows, and each column
        # less to compare is time off that sort.
        one = next(iter(wanted)) if len(wanted) == 1 else None
        group = [*(["bucket"] if percentiles else []), *by, *([] if one else ["measure"])]
        for r in read(
            LATENCY_TABLE,
            ["observations", "seconds"] if summed else ["observations"],
            group,
            **more,
        ):
            s = groups[key(r, "model")]
            measure = one or r["measure"]
            d = s.duration(measure)
            n = int(r["observations"])
            d[0] += n
            if summed:
                d[1] += float(r["seconds"]) * 1000
            if percentiles:
                s.histogram(measure)[int(r["bucket"])] += n


def _from_raw(
    conn: Conn,
    project_id: str,
    query: Query,
    start: datetime,
    end: datetime,
    timeout: float | None,
    groups: dict[tuple[Any, ...], _Sums],
    sign: int = 1,
) -> None:
    """Add the raw rows of ``[start, end)`` to ``groups`` (``sign`` -1: take them away)."""
    metrics = [Metric("count", "count"), Metric("errorCount", "sum")]
    metrics += [Metric(m, a) for m in ("totalCost", "totalTokens") for a in ("sum", "count")]
    metrics += [Metric("inputTokens", "sum"), Metric("outputTokens", "sum")]
    durations = [m for m in _DURATIONS if any(x.measure == m for x in query.metrics)]
    for m in durations:
        metrics += [Metric(m, "sum"), Metric(m, "count")]
        if any(x.measure == m and x.aggregation in PERCENTILES for x in query.metrics):
            metrics.append(Metric(m, "histogram"))
    part = replace(
        query, metrics=tuple(metrics), start=start, end=end, order_by=(), row_limit=_SQL_LIMIT
    )
    for r in run_raw(conn, project_id, part, timeout=timeout, collect=True):
        key = tuple(rollup_read.no_empty(r[d]) for d in query.dimensions)
        if query.granularity:
            key = (*key, r[TIME_DIMENSION])
        s = groups[key]
        s.rows += sign * int(r["count_count"])
        s.errors += sign * int(r["sum_errorCount"] or 0)
        s.cost += sign * float(r["sum_totalCost"] or 0)
        s.costed += sign * int(r["count_totalCost"])
        s.tokens += sign * int(r["sum_totalTokens"] or 0)
        s.input += sign * int(r["sum_inputTokens"] or 0)
        s.output += sign * int(r["sum_outputTokens"] or 0)
        s.counted += sign * int(r["count_totalTokens"])
        for m in durations:
            d = s.duration(_DURATIONS[m])
            d[0] += sign * int(r[f"count_{m}"])
            d[1] += sign * float(r[f"sum_{m}"] or 0)
            values = r.get(f"histogram_{m}")
            if values:  # Counter.update counts in C: one call per group, not per value
                buckets = [bucket(ms / 1000) for ms in values]
                if sign > 0:
                    s.histogram(_DURATIONS[m]).update(buckets)
                else:
                    s.histogram(_DURATIONS[m]).subtract(buckets)


def row_of(query: Query, key: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """An answer row: the group ``key``'s dimensions and time bucket, and each metric's
    ``value(metric)``."""
    row: dict[str, Any] = dict(zip(query.dimensions, key, strict=False))
    if query.granularity:
        row[TIME_DIMENSION] = key[-1]
    for metric in query.metrics:
        row[metric.column] = value(metric)
    return row


def _row(query: Query, key: tuple[Any, ...], s: _Sums) -> dict[str, Any]:
    return row_of(query, key, lambda metric: _value(metric, s))


def _value(metric: Metric, s: _Sums) -> Any:
    measure, aggregation = metric.measure, metric.aggregation
    if measure in _DURATIONS:
        n, ms = s.durations.get(_DURATIONS[measure], [0, 0.0])
        if aggregation == "count":
            return int(n)
        if aggregation in PERCENTILES:
            hist = s.histograms.get(_DURATIONS[measure], Counter())
            value = rollup_read.percentile(hist, PERCENTILES[aggregation])
            return None if value is None else value * 1000
        if not n:
            return None
        return ms if aggregation == "sum" else ms / n
    if aggregation == "count":
        return s.rows
    if measure == "count":
        return s.rows or None  # the sum of no rows is null, as SQL's SUM
    if measure == "totalCost":
        return float(s.cost) if s.costed else None
    if measure in ("inputTokens", "outputTokens", "totalTokens"):
        # The three are stored together (cost.calculate.write): null together.
        tokens = {"inputTokens": s.input, "outputTokens": s.output, "totalTokens": s.tokens}
        return int(tokens[measure]) if s.counted else None
    if not s.rows:
        return None
    if aggregation == "avg":
        return s.errors / s.rows
    return float(s.errors) if measure == "errorRate" else int(s.errors)


__all__ = ["Route", "answer", "filter_values", "route", "row_of"]
