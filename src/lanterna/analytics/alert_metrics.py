"""The metrics an alert rule can watch, answered through the metrics query layer
(:mod:`.query`): each is one query over one view of the last ``window``, so a rule
sees the same figures as the metrics API and the custom dashboards.

Metrics (over the observations view unless noted; a *sample* is a row of the view):

- ``error_rate``: observations at level ``ERROR`` / observations, in percent.
- ``count``: observations.
- ``total_cost``: their summed cost (USD); ``tokens``: their summed total tokens.
- ``latency_p50``, ``latency_p95``, ``latency_p99``: percentiles of observation
  latency (end - start, milliseconds; exact, not from the rollup histogram).
- ``ttft_p50``, ``ttft_p95``: percentiles of time to first token (completion start -
  start, milliseconds; observations with a completion start time).

Samples are the rows with a value of the measure (for latency: observations that
ended; for cost: observations with a cost).
- ``score_avg``: average of the numeric and boolean scores named ``score_name``
  (scores-numeric view).

Filters name a trace or observation field: ``traceName``, ``observationName``,
``model``, ``userId``, ``sessionId``, ``tag``, ``environment``, ``release`` (equality;
a tag: the trace has it) and ``metadata`` (``{key: value}``: every pair matches; the
observation's metadata, or the score's for ``score_avg``). A rule without an
``environment`` filter leaves out the evaluation judge's own environment
(``lanterna-evaluation``, :mod:`.app_traffic`): its cost, tokens and calls are not the
app's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..schema import OBSERVATION, SCORE, TRACE, Entity
from ..schema.field import FILTER_KIND
from ..store.db import Conn
from ..store.dialect import SQLITE
from ..timeutil import format_ts
from .app_traffic import app_filters
from .query import VIEWS, parse_query, run_query
from .query.model import ROW_LIMIT_MAX


@dataclass(frozen=True, slots=True)
class MetricDef:
    """One alertable metric: its view, measure and aggregation, unit and words."""

    view: str
    measure: str
    aggregation: str
    unit: str
    label: str


METRICS: dict[str, MetricDef] = {
    "error_rate": MetricDef("observations", "count", "count", "%", "error rate"),
    "count": MetricDef("observations", "count", "count", "", "observations"),
    "total_cost": MetricDef("observations", "totalCost", "sum", "USD", "total cost"),
    "tokens": MetricDef("observations", "totalTokens", "sum", "tokens", "tokens"),
    "latency_p50": MetricDef("observations", "latency", "p50", "ms", "p50 latency"),
    "latency_p95": MetricDef("observations", "latency", "p95", "ms", "p95 latency"),
    "latency_p99": MetricDef("observations", "latency", "p99", "ms", "p99 latency"),
    "ttft_p50": MetricDef(
        "observations", "timeToFirstToken", "p50", "ms", "p50 time to first token"
    ),
    "ttft_p95": MetricDef(
        "observations", "timeToFirstToken", "p95", "ms", "p95 time to first token"
    ),
    "score_avg": MetricDef("scores-numeric", "value", "avg", "", "average score"),
}

#: Metrics that add up over time (a longer window holds proportionally more).
SUMS = frozenset({"count", "total_cost", "tokens"})

#: The filters a rule may name, one line each: the field (``schema/`` field tables) it
#: tests, as ``(entity, column)``; ``None`` for the entity is the view's own (an
#: observation's environment for the observation metrics, a score's for
#: ``score_avg``). The filter column per view and the condition's kind derive from it
#: (:data:`FILTERS`), so a new filterable field is one line here.
FILTER_FIELDS: dict[str, tuple[Entity | None, str]] = {
    "traceName": (TRACE, "name"),
    "observationName": (OBSERVATION, "name"),
    "model": (OBSERVATION, "model"),
    "userId": (TRACE, "user_id"),
    "sessionId": (TRACE, "session_id"),
    "tag": (TRACE, "tags"),
    "environment": (None, "environment"),
    "release": (TRACE, "release"),
    "metadata": (None, "metadata"),
}
#: The entity each view's rows are.
_OWN = {"observations": OBSERVATION, "scores-numeric": SCORE}


def _view_column(view: str, entity: Entity | None, column: str) -> str:
    """The view's filter column on ``entity.column`` (found by its SQL)."""
    of = entity or _OWN[view]
    field_ = of[column]  # KeyError: not in the field table
    if not field_.filter:
        raise ValueError(f"{of.name}.{column} is not filterable")
    wanted = f"{of.alias}.{column}"
    v = VIEWS[view]
    for name, dim in v.dimensions.items():
        if dim.sql(SQLITE) == wanted:
            return name
    for name, (sql, _kind, _join) in v.extra_filters.items():
        if sql == wanted:
            return name
    raise ValueError(f"view {view!r} has no filter column on {wanted}")


#: Filter names a rule may use -> the column per view (observations, scores-numeric)
#: and the filter kind of the field (string, array, object).
FILTERS: dict[str, tuple[str, str, str]] = {
    name: (
        _view_column("observations", entity, column),
        _view_column("scores-numeric", entity, column),
        FILTER_KIND[(entity or OBSERVATION)[column].kind],
    )
    for name, (entity, column) in FILTER_FIELDS.items()
}
#: Filters whose values a grouped query may take apart (equality on a string that is a
#: dimension of both views): rules differing only in one of these share one query
#: grouped by it. Low-cardinality ones first (the one a rule is grouped by is the first
#: it names); ids (user, session) last, grouped through the v1 query, which allows them
#: as a dimension (the ``any of`` filter bounds the groups).
_HIGH_CARDINALITY = frozenset(
    name
    for name, (obs, _scores, _kind) in FILTERS.items()
    if obs in VIEWS["observations"].dimensions
    and VIEWS["observations"].dimensions[obs].high_cardinality
)
_GROUPABLE = tuple(
    sorted(
        (
            name
            for name, (obs, scores, kind) in FILTERS.items()
            if kind == "string"
            and obs in VIEWS["observations"].dimensions
            and scores in VIEWS["scores-numeric"].dimensions
        ),
        key=lambda name: name in _HIGH_CARDINALITY,
    )
)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """What a rule measures: the metric, its filters and (``score_avg``) a score name."""

    metric: str
    filters: dict[str, Any] = field(default_factory=dict)
    score_name: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """A metric's value over a window (None without samples) and its sample count."""

    value: float | None
    samples: int


def _conditions(spec: MetricSpec, view_index: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, value in sorted(spec.filters.items()):
        column = FILTERS[name][view_index]
        kind = FILTERS[name][2]
        if kind == "object":
            for key, wanted in sorted(value.items()):
                out.append(
                    {"type": "stringObject", "column": column, "key": key, "operator": "=",
                     "value": str(wanted)}
                )  # fmt: skip
        elif kind == "array":
            out.append({"type": "arrayOptions", "column": column, "operator": "any of",
                        "value": [value]})  # fmt: skip
        else:
            out.append({"type": "string", "column": column, "operator": "=", "value": value})
    if spec.metric == "score_avg":
        out.append({"type": "string", "column": "name", "operator": "=", "value": spec.score_name})
    if "environment" not in spec.filters:  # the judge's own traffic is not the app's
        environment = FILTERS["environment"][view_index]
        out += [{**c, "column": environment} for c in app_filters([])]
    return out


def _metrics_of(metrics: Iterable[str]) -> list[dict[str, Any]]:
    """The query's metrics that answer every one of ``metrics`` (with their samples:
    the rows with a value of the measure, for latency those that ended)."""
    out: dict[tuple[str, str], None] = {}
    for metric in metrics:
        m = METRICS[metric]
        out[(m.measure, "count")] = None
        if metric == "error_rate":
            out[("errorCount", "sum")] = None
        elif m.measure != "count":
            out[(m.measure, m.aggregation)] = None
    return [{"measure": me, "aggregation": agg} for me, agg in out]


def query_of(spec: MetricSpec, start: datetime, end: datetime) -> dict[str, Any]:
    """The metrics query (v2 JSON) that answers ``spec`` over ``[start, end)``."""
    m = METRICS[spec.metric]
    return {
        "view": m.view,
        "dimensions": [],
        "metrics": _metrics_of([spec.metric]),
        "filters": _conditions(spec, 0 if m.view == "observations" else 1),
        "fromTimestamp": format_ts(start),
        "toTimestamp": format_ts(end),
    }


def _reading(metric: str, row: dict[str, Any] | None) -> Reading:
    """``metric``'s reading from a row of its query (None: no rows, as an empty
    group reads: no samples, a count of 0)."""
    m = METRICS[metric]
    row = row or {}
    samples = int(row.get(f"count_{m.measure}") or 0)
    if metric == "error_rate":
        errors = int(row.get("sum_errorCount") or 0)
        return Reading(100.0 * errors / samples if samples else None, samples)
    if metric == "count":
        return Reading(float(samples), samples)
    value = row.get(f"{m.aggregation}_{m.measure}")
    if value is None and metric in SUMS and samples:
        value = 0.0
    return Reading(None if value is None else float(value), samples)


def measure(
    conn: Conn, project_id: str, spec: MetricSpec, start: datetime, end: datetime
) -> Reading:
    """``spec``'s value over ``[start, end)`` of the project, and its sample count."""
    result = measure_many(conn, [Ask(project_id, spec, start, end)])[0]
    if isinstance(result, Exception):
        raise result
    return result


@dataclass(frozen=True, slots=True)
class Ask:
    """One reading wanted: ``spec`` over ``[start, end)`` of a project."""

    project_id: str
    spec: MetricSpec
    start: datetime
    end: datetime


def _group_key(ask: Ask) -> tuple[Any, ...]:
    """Asks with one key share one query: same project, view, range and score name,
    the same filters but for one groupable field (the query groups by it)."""
    spec = ask.spec
    by = next((f for f in _GROUPABLE if f in spec.filters), None)
    rest = tuple(
        sorted(
            (k, tuple(sorted(v.items())) if isinstance(v, dict) else v)
            for k, v in spec.filters.items()
            if k != by
        )
    )
    view = METRICS[spec.metric].view
    score = spec.score_name if spec.metric == "score_avg" else None
    return (ask.project_id, view, score, ask.start, ask.end, rest, by)


def measure_many(
    conn: Conn, asks: Sequence[Ask], *, timeout: float | None = None
) -> list[Reading | Exception]:
    """The readings of ``asks``, in their order, in as few queries as they allow:
    asks over the same range and filters share one query (every metric they watch in
    it), and asks differing only in the value of one low-cardinality filter (model,
    observation or trace name, environment, release) share one query grouped by it.
    An ask whose query failed gets the exception instead of a reading."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, ask in enumerate(asks):
        groups.setdefault(_group_key(ask), []).append(i)
    out: list[Reading | Exception] = [Reading(None, 0)] * len(asks)
    for (project_id, view, _score, start, end, _rest, by), members in groups.items():
        first = asks[members[0]].spec
        values = sorted({asks[i].spec.filters[by] for i in members}) if by else []
        for chunk in range(0, max(len(values), 1), ROW_LIMIT_MAX):
            part = values[chunk : chunk + ROW_LIMIT_MAX]
            wanted = [i for i in members if not by or asks[i].spec.filters[by] in part]
            body = query_of(first, start, end)
            body["metrics"] = _metrics_of({asks[i].spec.metric for i in wanted})
            if by:
                column = FILTERS[by][0 if view == "observations" else 1]
                body["dimensions"] = [{"field": column}]
                body["filters"] = [
                    c for c in body["filters"] if c["column"] != column
                ] + [{"type": "stringOptions", "column": column, "operator": "any of",
                      "value": part}]  # fmt: skip
                body["config"] = {"row_limit": ROW_LIMIT_MAX}
            try:
                version = 1 if by in _HIGH_CARDINALITY else 2
                query = parse_query(body, version=version)
                rows = run_query(conn, project_id, query, timeout=timeout)
            except Exception as exc:  # one failing query must not stop the others
                for i in wanted:
                    out[i] = exc
                continue
            if by:
                by_value = {r[column]: r for r in rows}
                for i in wanted:
                    row = by_value.get(asks[i].spec.filters[by])
                    out[i] = _reading(asks[i].spec.metric, row)
            else:
                for i in wanted:
                    out[i] = _reading(asks[i].spec.metric, rows[0] if rows else None)
    return out
