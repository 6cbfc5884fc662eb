"""Project metrics over a time range, each defined once here for the UI, the API and
alerts: totals, latency percentiles, time series, top users and sessions, score averages.

Definitions (a *request* is a trace; its observations count toward it):

- traces: traces whose ``timestamp`` is in ``[start, end)``.
- cost, tokens, observations: sums over those traces' observations (``total_cost``,
  ``usage_input``/``usage_output``/``usage_total``), as ``store.costs`` does.
- latency of a trace: from its first observation's start to its last observation's end
  (``store.traces.trace_metrics``); traces without observations have none.
- error rate: traces with at least one ``ERROR`` observation / traces with observations.
- requests per minute: traces / minutes in the range.
- p50/p95/p99 latency: from a histogram of log-spaced buckets (20 per factor e); each
  percentile reports its bucket's geometric middle, so it is within
  :data:`PERCENTILE_ERROR` (e^(1/40) - 1, 2.6 %) of the exact value, for latencies of
  1 ms and more (shorter ones share one bucket).
- score averages: numeric and boolean scores by ``timestamp`` in the range.

Buckets of the time series are UTC hours for ranges up to three days, else UTC days.

Traces, errors, latencies, cost and tokens of whole UTC hours come from the hourly
rollups (:mod:`lanterna.store.rollups`); only the partial hours at either end of a
range are read from raw rows, so the figures equal those of the raw rows.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ..store.db import Conn
from ..store.rollups import MIN_LATENCY, NO_LATENCY, K

HOURLY_UP_TO = timedelta(days=3)
#: Bound on a percentile's relative error: half a bucket's width on the log scale.
PERCENTILE_ERROR = math.exp(0.5 / K) - 1


@dataclass(frozen=True, slots=True)
class Scope:
    """The traces a metric covers: a project, a time range, optionally an environment."""

    project_id: str
    start: datetime
    end: datetime
    environment: str | None = None

    @property
    def hourly(self) -> bool:
        """True when the series use hour buckets (else days)."""
        return self.end - self.start <= HOURLY_UP_TO

    def where(
        self, conn: Conn, start: datetime | None = None, end: datetime | None = None
    ) -> tuple[str, list[Any]]:
        """SQL condition on ``traces t`` and its parameters (``start``/``end`` narrow
        the range)."""
        d = conn.dialect
        sql = "t.project_id = ? AND t.timestamp >= ? AND t.timestamp < ?"
        params: list[Any] = [
            self.project_id,
            d.ts(start or self.start),
            d.ts(end or self.end),
        ]
        if self.environment:
            sql += " AND t.environment = ?"
            params.append(self.environment)
        return sql, params

    def bucket_sql(self, conn: Conn, column: str) -> str:
        """SQL for the series bucket (hour or day text) of a timestamp column."""
        d = conn.dialect
        return d.utc_hour(column) if self.hourly else d.utc_day(column)

    def buckets(self) -> list[str]:
        """Every bucket label in the range, oldest first (so gaps show as zeros)."""
        step = timedelta(hours=1) if self.hourly else timedelta(days=1)
        fmt = "%Y-%m-%dT%H" if self.hourly else "%Y-%m-%d"
        at = self.start.replace(minute=0, second=0, microsecond=0)
        if not self.hourly:
            at = at.replace(hour=0)
        out = []
        while at < self.end:
            out.append(at.strftime(fmt))
            at += step
        return out


_JOIN = "JOIN observations o ON o.project_id = t.project_id AND o.trace_id = t.id"


@dataclass
class Histogram:
    """Trace latencies in log-spaced buckets (see the module docstring)."""

    counts: dict[int, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """How many latencies it holds."""
        return sum(self.counts.values())

    @staticmethod
    def middle(bucket: int) -> float:
        """The geometric middle of a bucket, in seconds."""
        return math.exp((bucket + 0.5) / K)

    def percentile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1), or None when empty."""
        total = self.total
        if total == 0:
            return None
        rank = max(1, math.ceil(q * total))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return self.middle(bucket)
        return self.middle(max(self.counts))


def _trace_rows(conn: Conn, scope: Scope, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Raw rows of ``[start, end)``: per (series bucket, latency bucket) the traces with
    observations, errors and summed latency. One pass."""
    d = conn.dialect
    where, params = scope.where(conn, start, end)
    latency = (
        f"{d.epoch_seconds('MAX(COALESCE(o.end_time, o.start_time))')}"
        f" - {d.epoch_seconds('MIN(o.start_time)')}"
    )
    # Grouped by timestamp first so that SQLite walks the time index, not every trace.
    per_trace = (
        f"SELECT {scope.bucket_sql(conn, 't.timestamp')} AS bucket, {latency} AS latency,"
        " MAX(CASE WHEN o.level = 'ERROR' THEN 1 ELSE 0 END) AS error"
        f" FROM traces t {_JOIN} WHERE {where} GROUP BY t.timestamp, t.id"
    )
    return conn.all(
        "SELECT bucket,"
        " CAST(FLOOR(ln(CASE WHEN latency < ? THEN ? ELSE latency END) * ?) AS INTEGER) AS lb,"
        " COUNT(*) AS n, SUM(error) AS errors, SUM(latency) AS latency_sum"
        f" FROM ({per_trace}) per_trace GROUP BY bucket, lb",
        [MIN_LATENCY, MIN_LATENCY, K, *params],
    )


def _model_rows(conn: Conn, scope: Scope, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Raw rows of ``[start, end)``: per (series bucket, model) observations, cost, tokens."""
    where, params = scope.where(conn, start, end)
    return conn.all(
        f"SELECT {scope.bucket_sql(conn, 't.timestamp')} AS bucket, o.model AS model,"
        " COUNT(*) AS n, COALESCE(SUM(o.total_cost), 0) AS cost,"
        " COALESCE(SUM(o.usage_input), 0) AS input, COALESCE(SUM(o.usage_output), 0) AS output,"
        " COALESCE(SUM(o.usage_total), 0) AS total"
        f" FROM traces t {_JOIN} WHERE {where} GROUP BY bucket, o.model",
        params,
    )


def _whole_hours(scope: Scope) -> tuple[datetime, datetime] | None:
    """``[first, last)``: the whole UTC hours inside the scope (the rollups' part)."""
    start = scope.start.astimezone(timezone.utc)
    first = start.replace(minute=0, second=0, microsecond=0)
    if first < start:
        first += timedelta(hours=1)
    last = scope.end.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return (first, last) if first < last else None


def _rollup_where(scope: Scope, first: datetime, last: datetime) -> tuple[str, list[Any]]:
    fmt = "%Y-%m-%dT%H"
    sql = "project_id = ? AND hour >= ? AND hour < ?"
    params: list[Any] = [scope.project_id, first.strftime(fmt), last.strftime(fmt)]
    if scope.environment:
        sql += " AND environment = ?"
        params.append(scope.environment)
    return sql, params


def _parts(conn: Conn, scope: Scope) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    """Traces in the scope, trace rows and model rows (shapes of :func:`_trace_rows` and
    :func:`_model_rows`): whole hours from the rollups, the partial hours at either end
    from raw rows, so the figures are those of the raw rows for any range."""
    hours = _whole_hours(scope)
    if hours is None:
        where, params = scope.where(conn)
        traces = int(conn.scalar(f"SELECT COUNT(*) FROM traces t WHERE {where}", params) or 0)
        return (
            traces,
            _trace_rows(conn, scope, scope.start, scope.end),
            _model_rows(conn, scope, scope.start, scope.end),
        )
    first, last = hours
    trace_rows: list[dict[str, Any]] = []
    model_rows: list[dict[str, Any]] = []
    traces = 0
    for start, end in ((scope.start, first), (last, scope.end)):
        if start < end:
            where, params = scope.where(conn, start, end)
            traces += int(conn.scalar(f"SELECT COUNT(*) FROM traces t WHERE {where}", params) or 0)
            trace_rows += _trace_rows(conn, scope, start, end)
            model_rows += _model_rows(conn, scope, start, end)
    label = "hour" if scope.hourly else "substr(hour, 1, 10)"
    where, params = _rollup_where(scope, first, last)
    for r in conn.all(
        f"SELECT {label} AS bucket, latency_bucket AS lb, SUM(traces) AS n,"
        " SUM(errors) AS errors, SUM(latency_sum) AS latency_sum"
        f" FROM rollup_traces WHERE {where} GROUP BY bucket, lb",
        params,
    ):
        n = int(r["n"] or 0)
        traces += n
        if n and int(r["lb"]) != NO_LATENCY:
            trace_rows.append(r)
    for r in conn.all(
        f"SELECT {label} AS bucket, model, SUM(observations) AS n, SUM(cost) AS cost,"
        " SUM(input_tokens) AS input, SUM(output_tokens) AS output, SUM(total_tokens) AS total"
        f" FROM rollup_models WHERE {where} GROUP BY bucket, model",
        params,
    ):
        if int(r["n"] or 0):
            model_rows.append({**r, "model": r["model"] or None})
    return traces, trace_rows, model_rows


def overview(conn: Conn, scope: Scope) -> dict[str, Any]:
    """Totals, latency percentiles and histogram, and the per-bucket series."""
    d = conn.dialect
    labels = scope.buckets()
    traces, trace_rows, model_rows = _parts(conn, scope)

    hist = Histogram()
    per_bucket: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    latency_sum = 0.0
    errors = 0
    for r in trace_rows:
        n = int(r["n"])
        hist.counts[int(r["lb"])] = hist.counts.get(int(r["lb"]), 0) + n
        b = per_bucket[r["bucket"]]
        b["traces"] += n
        b["errors"] += int(r["errors"] or 0)
        b["latency_sum"] += float(r["latency_sum"] or 0.0)
        latency_sum += float(r["latency_sum"] or 0.0)
        errors += int(r["errors"] or 0)
    with_observations = hist.total

    by_model: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    totals: dict[str, float] = defaultdict(float)
    for r in model_rows:
        model = r["model"] or "(no model)"
        b = per_bucket[r["bucket"]]
        for key in ("cost", "input", "output", "total"):
            value = float(r[key] or 0)
            b[key] += value
            totals[key] += value
        totals["observations"] += int(r["n"])
        if r["model"] is not None or r["cost"]:
            by_model[model][r["bucket"]] += float(r["cost"] or 0)

    minutes = max((scope.end - scope.start).total_seconds() / 60, 1e-9)
    return {
        "buckets": labels,
        "hourly": scope.hourly,
        "totals": {
            "traces": traces,
            "observations": int(totals["observations"]),
            "cost": totals["cost"],
            "inputTokens": int(totals["input"]),
            "outputTokens": int(totals["output"]),
            "totalTokens": int(totals["total"]),
            "tokensPerRequest": totals["total"] / traces if traces else None,
            "errorRate": errors / with_observations if with_observations else None,
            "avgLatency": latency_sum / with_observations if with_observations else None,
            "p50Latency": hist.percentile(0.50),
            "p95Latency": hist.percentile(0.95),
            "p99Latency": hist.percentile(0.99),
            "requestsPerMinute": traces / minutes,
        },
        "histogram": [
            {"seconds": Histogram.middle(b), "count": n} for b, n in sorted(hist.counts.items())
        ],
        "series": {
            "traces": [per_bucket[x]["traces"] for x in labels],
            "errorRate": [
                (per_bucket[x]["errors"] / per_bucket[x]["traces"])
                if per_bucket[x]["traces"]
                else None
                for x in labels
            ],
            "inputTokens": [per_bucket[x]["input"] for x in labels],
            "outputTokens": [per_bucket[x]["output"] for x in labels],
            "costByModel": {
                model: [values.get(x, 0.0) for x in labels]
                for model, values in sorted(by_model.items(), key=lambda kv: -sum(kv[1].values()))
            },
        },
        "dialect": d.name,
    }


def top_by_cost(conn: Conn, scope: Scope, column: str, limit: int = 10) -> list[dict[str, Any]]:
    """The ``limit`` users (``column="user_id"``) or sessions (``"session_id"``) that cost most."""
    if column not in ("user_id", "session_id"):
        raise ValueError(column)
    d = conn.dialect
    # trace_totals: one narrow row per trace (see store.rollups); its time index
    # covers the query, so a range reads its slice of that index and groups it.
    index = "trace_totals_time"
    where = "project_id = ? AND timestamp >= ? AND timestamp < ?"
    params: list[Any] = [scope.project_id, d.ts(scope.start), d.ts(scope.end)]
    if scope.environment:
        where += " AND environment = ?"
        params.append(scope.environment)
    rows = conn.all(
        f"SELECT {column} AS key, COUNT(*) AS traces, SUM(cost) AS cost,"
        f" SUM(tokens) AS tokens FROM trace_totals{d.indexed_by(index)}"
        f" WHERE {where} AND {column} IS NOT NULL"
        f" AND observations > 0 GROUP BY {column} ORDER BY cost DESC, key LIMIT ?",
        [*params, limit],
    )
    return [
        {
            "id": r["key"],
            "traces": int(r["traces"]),
            "cost": float(r["cost"] or 0),
            "tokens": int(r["tokens"] or 0),
        }
        for r in rows
    ]


def score_series(conn: Conn, scope: Scope) -> dict[str, list[float | None]]:
    """Average of each numeric/boolean score name per bucket (None where none)."""
    d = conn.dialect
    params: list[Any] = [scope.project_id, d.ts(scope.start), d.ts(scope.end)]
    env = ""
    if scope.environment:
        env = " AND s.environment = ?"
        params.append(scope.environment)
    labels = scope.buckets()
    values: dict[str, dict[str, float]] = defaultdict(dict)
    for r in conn.all(
        f"SELECT {scope.bucket_sql(conn, 's.timestamp')} AS bucket, s.name AS name,"
        " AVG(s.value) AS avg FROM scores s WHERE s.project_id = ? AND s.timestamp >= ?"
        f" AND s.timestamp < ? AND s.data_type IN ('NUMERIC', 'BOOLEAN'){env}"
        " GROUP BY bucket, s.name",
        params,
    ):
        values[r["name"]][r["bucket"]] = float(r["avg"])
    return {name: [by.get(x) for x in labels] for name, by in sorted(values.items())}


def user_score_averages(
    conn: Conn, project_id: str, user_ids: list[str]
) -> dict[str, dict[str, float]]:
    """``user id -> {score name: average}`` over the numeric/boolean scores of their traces."""
    if not user_ids:
        return {}
    marks = ", ".join("?" * len(user_ids))
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for r in conn.all(
        "SELECT t.user_id AS user_id, s.name AS name, AVG(s.value) AS avg FROM scores s"
        " JOIN traces t ON t.project_id = s.project_id AND t.id = s.trace_id"
        f" WHERE s.project_id = ? AND t.user_id IN ({marks})"
        " AND s.data_type IN ('NUMERIC', 'BOOLEAN') GROUP BY t.user_id, s.name",
        [project_id, *user_ids],
    ):
        out[r["user_id"]][r["name"]] = float(r["avg"])
    return dict(out)


def user_features(
    conn: Conn, project_id: str, user_ids: list[str], limit: int = 3
) -> dict[str, list[str]]:
    """``user id -> their most used trace names`` (the "main features used")."""
    if not user_ids:
        return {}
    marks = ", ".join("?" * len(user_ids))
    counts: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in conn.all(
        "SELECT user_id, name, COUNT(*) AS n FROM traces"
        f" WHERE project_id = ? AND user_id IN ({marks}) AND name IS NOT NULL"
        " GROUP BY user_id, name",
        [project_id, *user_ids],
    ):
        counts[r["user_id"]].append((int(r["n"]), r["name"]))
    return {
        user: [name for _, name in sorted(items, key=lambda x: (-x[0], x[1]))[:limit]]
        for user, items in counts.items()
    }
