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
observation's metadata, or the score's for ``score_avg``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..store.db import Conn
from ..timeutil import format_ts
from .query import parse_query, run_query


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

#: Filter names a rule may use -> the column per view (observations, scores-numeric).
FILTERS: dict[str, tuple[str, str]] = {
    "traceName": ("traceName", "traceName"),
    "observationName": ("name", "observationName"),
    "model": ("providedModelName", "observationModelName"),
    "userId": ("userId", "userId"),
    "sessionId": ("sessionId", "sessionId"),
    "tag": ("tags", "tags"),
    "environment": ("environment", "environment"),
    "release": ("release", "traceRelease"),
    "metadata": ("metadata", "metadata"),
}


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
        if name == "metadata":
            for key, wanted in sorted(value.items()):
                out.append(
                    {"type": "stringObject", "column": column, "key": key, "operator": "=",
                     "value": str(wanted)}
                )  # fmt: skip
        elif name == "tag":
            out.append({"type": "arrayOptions", "column": column, "operator": "any of",
                        "value": [value]})  # fmt: skip
        else:
            out.append({"type": "string", "column": column, "operator": "=", "value": value})
    if spec.metric == "score_avg":
        out.append({"type": "string", "column": "name", "operator": "=", "value": spec.score_name})
    return out


def query_of(spec: MetricSpec, start: datetime, end: datetime) -> dict[str, Any]:
    """The metrics query (v2 JSON) that answers ``spec`` over ``[start, end)``."""
    m = METRICS[spec.metric]
    # Samples: rows with a value of the measure (for latency: with an end time).
    metrics = [{"measure": m.measure, "aggregation": "count"}]
    if m.measure != "count":
        metrics.append({"measure": m.measure, "aggregation": m.aggregation})
    conditions = _conditions(spec, 0 if m.view == "observations" else 1)
    return {
        "view": m.view,
        "dimensions": [{"field": "level"}] if spec.metric == "error_rate" else [],
        "metrics": metrics,
        "filters": conditions,
        "fromTimestamp": format_ts(start),
        "toTimestamp": format_ts(end),
    }


def measure(
    conn: Conn, project_id: str, spec: MetricSpec, start: datetime, end: datetime
) -> Reading:
    """``spec``'s value over ``[start, end)`` of the project, and its sample count."""
    query = parse_query(query_of(spec, start, end), version=2)
    rows = run_query(conn, project_id, query)
    m = METRICS[spec.metric]
    counted = f"count_{m.measure}"
    samples = sum(int(r.get(counted) or 0) for r in rows)
    if spec.metric == "error_rate":
        if not samples:
            return Reading(None, 0)
        errors = sum(int(r[counted] or 0) for r in rows if r.get("level") == "ERROR")
        return Reading(100.0 * errors / samples, samples)
    if spec.metric == "count":
        return Reading(float(samples), samples)
    value = rows[0].get(f"{m.aggregation}_{m.measure}") if rows else None
    if value is None and spec.metric in SUMS and samples:
        value = 0.0
    return Reading(None if value is None else float(value), samples)
