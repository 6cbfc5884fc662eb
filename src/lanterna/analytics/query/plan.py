"""The query planner: a checked :class:`~.model.Query` answered from the hourly rollups
(:mod:`lanterna.store.rollup_read`) when they hold the answer exactly, from raw rows
(:func:`~.run.run_raw`) otherwise. The metrics API, the dashboards and the alert engine
call :func:`run_query`; :func:`explain` says which path a query takes and why.

A query goes to the rollups when all of these hold (else raw rows):

- its view is ``traces`` (v1): the rollups are keyed by the *trace's* UTC hour, the
  traces view's time column. The observations view is timed by an observation's
  start, which can lie in another hour than its trace (score views: below);
- its granularity is none, ``hour``, ``day``, ``week`` or ``month`` (not ``minute``);
- it groups by and filters on ``name`` and ``environment`` only, or on ``userId``
  and ``environment`` (the user rollup, without latency; grouped by user, the group
  without one is all traces less the users'); filters are ``=`` (string) or
  ``any of`` (stringOptions) with non-empty string values, or ``none of`` on
  ``environment`` (how budgets, alerts and dashboards leave out the evaluation
  environment);
- each metric is one the rollups sum exactly (:data:`EXACT`), or a percentile of
  ``latency`` when the caller accepts approximate percentiles (``approximate=True``:
  the bucket's middle, within :data:`~lanterna.store.rollups.PERCENTILE_ERROR`).

A ``scores-numeric`` or ``scores-boolean`` query goes to the score rollup (keyed by
the score's own hour, the views' time column) when it groups by and filters on
``name``, ``environment`` and ``dataType`` only and its metrics are ``count`` or
``value`` with ``sum``, ``count`` or ``avg``.

The range is split into whole UTC hours (rollups) and the partial hours at either end,
which the traces' ``trace_totals`` rows (what the rollups are summed from) or else the
raw-row query answer as partial sums (and, for percentiles, the values); the two are
added per group, then ordered and limited as the raw query would be.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from ...store import rollup_read
from ...store.db import Conn
from ...store.filters import Condition
from ...store.rollups import NO_LATENCY, bucket
from ...timeutil import format_ts
from . import plan_observations, top_users
from .model import TIME_DIMENSION, Metric, Query
from .run import run_raw
from .views import PERCENTILES, TRACES

RAW, ROLLUP = "raw", "rollup"
#: (measure, aggregation) pairs of the traces view the rollups answer exactly.
EXACT = frozenset(
    {
        *(
            (m, a)
            for m in ("count", "errorCount", "errorRate", "observationsCount")
            for a in ("sum", "count", "avg")
        ),
        ("totalCost", "sum"),
        ("totalTokens", "sum"),
        ("latency", "sum"),
        ("latency", "count"),
        ("latency", "avg"),
    }
)
#: API dimension -> rollup dimension
_DIMENSIONS = {"name": "trace_name", "environment": "environment", "userId": "user_id"}
#: what the partial hours' raw query asks for, and the partial sum each feeds
_PARTS = (
    ("count", "count", "rows"),
    ("errorCount", "sum", "errors"),
    ("observationsCount", "sum", "observations"),
    ("totalCost", "sum", "cost"),
    ("totalTokens", "sum", "tokens"),
    ("latency", "sum", "latency_ms"),
    ("latency", "count", "observed"),
)
#: measure -> the partial sums its metrics need besides ``rows``
_NEEDS = {
    "errorCount": {"errors"},
    "errorRate": {"errors"},
    "observationsCount": {"observations"},
    "totalCost": {"cost", "observed"},
    "totalTokens": {"tokens", "observed"},
    "latency": {"latency_ms", "observed"},
}
#: The score views the score rollup answers (it holds numeric and boolean scores, all
#: with a value), their dimensions and (measure, aggregation) pairs.
_SCORE_VIEWS = ("scores-numeric", "scores-boolean")
_SCORE_DIMENSIONS = {"name": "name", "environment": "environment", "dataType": "data_type"}
_SCORE_EXACT = frozenset((m, a) for m in ("count", "value") for a in ("sum", "count", "avg"))
_SQL_LIMIT = 1_000_000_000  # the partial hours' raw query is not cut by row_limit
#: With ``approximate=None`` (the metrics API), a query whose range holds at least this
#: many rows of its view takes its latency percentiles from the histograms (within
#: :data:`~lanterna.store.rollups.PERCENTILE_ERROR`); a smaller one stays exact.
APPROXIMATE_FROM = 100_000


@dataclass(frozen=True, slots=True)
class Plan:
    """How a query is answered: ``path`` ``"rollup"`` or ``"raw"``, the rollup tables
    read, and why raw rows when they are."""

    path: str
    tables: tuple[str, ...] = ()
    reason: str = ""


def explain(query: Query, *, approximate: bool = False) -> Plan:
    """The plan :func:`run_query` follows for ``query`` (``approximate``: percentiles
    from rollup histograms are acceptable)."""
    if query.granularity == "minute":
        return Plan(RAW, reason="the rollups are hourly; granularity minute needs raw rows")
    if query.view.name in _SCORE_VIEWS:
        return _explain_scores(query)
    if query.view.name == "observations":
        found = plan_observations.route(query, approximate=approximate)
        return Plan(ROLLUP, found.tables) if found.tables else Plan(RAW, reason=found.reason)
    if query.view is not TRACES:
        return Plan(RAW, reason=f"view {query.view.name!r} is not timed by the trace's hour")
    filtered: set[str] = set()
    for cond in query.filters:
        if _filter_values(cond) is None:
            return Plan(RAW, reason=f"filter on {cond.column!r} ({cond.operator}) is not covered")
        filtered.add(cond.column)
    names = set(query.dimensions) | set(filtered)
    if not names <= set(_DIMENSIONS):
        extra = sorted(names - set(_DIMENSIONS))
        return Plan(RAW, reason=f"the rollups have no dimension {', '.join(extra)}")
    for metric in query.metrics:
        pair = (metric.measure, metric.aggregation)
        if pair in EXACT:
            continue
        if approximate and metric.measure == "latency" and metric.aggregation in PERCENTILES:
            continue
        return Plan(RAW, reason=f"{metric.column} is not summed in the rollups")
    measures = {m.measure for m in query.metrics}
    if "userId" in names:
        if "name" in names:
            return Plan(RAW, reason="no rollup holds both trace name and user")
        if "latency" in measures:
            return Plan(RAW, reason="the user rollup has no latency")
        if "userId" in filtered:
            return Plan(ROLLUP, ("rollup_user_hours",))
        # The traces without a user: all traces less those of the user rollup.
        return Plan(ROLLUP, ("rollup_user_hours", "rollup_trace_hours", "rollup_observation_hours"))
    tables = ["rollup_trace_hours"]
    if measures & {"observationsCount", "totalCost", "totalTokens"}:
        tables.append("rollup_observation_hours")
    return Plan(ROLLUP, _levels(query, tables, [_DIMENSIONS[n] for n in names]))


def _levels(query: Query, tables: list[str], dims: list[str]) -> tuple[str, ...]:
    """``tables`` with the coarse (daily) level of each that :func:`rollup_read.read`
    reads for the whole days of the range, when the query allows it (no name, not
    by hour), before it."""
    whole, _ = rollup_read.split_hours(query.start, query.end)
    days = whole is not None and rollup_read.split_days(*whole)[0] is not None
    by = [*dims, "hour"] if query.granularity == "hour" else dims
    out: list[str] = []
    for table in tables:
        coarse = rollup_read.coarsest(table, (), by)
        if days and coarse != table:
            out.append(coarse)
        out.append(table)
    return tuple(out)


def _explain_scores(query: Query) -> Plan:
    for cond in query.filters:
        if _filter_values(cond, _SCORE_DIMENSIONS) is None:
            return Plan(RAW, reason=f"filter on {cond.column!r} ({cond.operator}) is not covered")
    extra = sorted(set(query.dimensions) - set(_SCORE_DIMENSIONS))
    if extra:
        return Plan(RAW, reason=f"the score rollup has no dimension {', '.join(extra)}")
    for metric in query.metrics:
        if (metric.measure, metric.aggregation) not in _SCORE_EXACT:
            return Plan(RAW, reason=f"{metric.column} is not summed in the score rollup")
    return Plan(ROLLUP, ("rollup_score_hours",))


def _dimensions(query: Query) -> dict[str, str]:
    """API dimension -> rollup dimension, for the query's view."""
    return _SCORE_DIMENSIONS if query.view.name in _SCORE_VIEWS else _DIMENSIONS


def _filter_values(
    cond: Condition, dimensions: dict[str, str] = _DIMENSIONS
) -> Sequence[str] | None:
    """The values a filter allows when the rollups can apply it, else None (``''`` is
    "none" in the rollups, so a filter naming it reads raw rows)."""
    if cond.column not in dimensions:
        return None
    return plan_observations.filter_values(cond)


def run_query(
    conn: Conn,
    project_id: str,
    query: Query,
    *,
    timeout: float | None = None,
    approximate: bool | None = False,
    approximate_from: int = APPROXIMATE_FROM,
) -> list[dict[str, Any]]:
    """The answer's rows (dicts named as :attr:`Query.columns`): from the rollups when
    :func:`explain` says so, from raw rows otherwise; read within ``timeout`` seconds
    (over it: ``StatementTimeout``, a 422). ``approximate``: latency percentiles may
    come from the rollups' histograms (within 2.53 %); otherwise they are exact. None:
    from the histograms when the range holds ``approximate_from`` rows or more of the
    view (reading them exactly would read that many raw rows), else exact."""
    if not rollup_read.kept(conn):
        return run_raw(conn, project_id, query, timeout=timeout)
    if approximate is None:
        approximate = _large(conn, project_id, query, timeout, approximate_from)
    plan = explain(query, approximate=approximate)
    if plan.path == RAW:
        return run_raw(conn, project_id, query, timeout=timeout)
    if query.view.name == "observations":
        found = plan_observations.route(query, approximate=approximate)
        rows = plan_observations.answer(conn, project_id, query, found, timeout, _bucket)
        return _ordered(query, rows)[: query.row_limit]
    if plan.tables[0] == "rollup_user_hours" and len(plan.tables) > 1:
        top = _top_users(conn, project_id, query, timeout)
        if top is not None:
            return top
    groups: dict[tuple[Any, ...], Sums] = defaultdict(Sums)
    whole, partial = rollup_read.split_hours(query.start, query.end)
    with conn.time_limit(timeout):
        if whole is not None:
            _from_rollups(conn, project_id, query, plan, whole, groups)
    for start, end in partial:
        _edge(conn, project_id, query, start, end, timeout, groups)
    rows = [_row(query, key, sums) for key, sums in groups.items() if sums.rows > 0]
    if not rows and not query.dimensions and not query.granularity:
        rows = [_row(query, (), Sums())]  # as SQL: one row of an empty aggregate
    return _ordered(query, rows)[: query.row_limit]


def _top_users(
    conn: Conn, project_id: str, query: Query, timeout: float | None
) -> list[dict[str, Any]] | None:
    """A query by user ordered by a metric, with a ``row_limit``: the top users by
    :mod:`.top_users` (their own hours of the user rollup, walked in the order of their
    all-time totals) instead of every user of the range; None when it cannot."""
    groups = top_user_sums(conn, project_id, query, timeout=timeout)
    if groups is None:
        return None
    rows = [_row(query, key, s) for key, s in groups.items() if s.rows > 0]
    return _ordered(query, rows)[: query.row_limit]


def top_user_sums(
    conn: Conn, project_id: str, query: Query, *, timeout: float | None = None
) -> dict[tuple[Any, ...], Sums] | None:
    """The sums (by ``(userId,)``) of the groups that hold ``query``'s top
    ``row_limit`` users, and of the group without a user, as :func:`_top_users` reads
    them; None when :mod:`.top_users` cannot answer ``query``."""
    if (
        top_users.ordered_metric(query) is None  # (user_totals is kept on every backend)
        or explain(query).tables[:1] != ("rollup_user_hours",)
    ):
        return None
    whole, partial = rollup_read.split_hours(query.start, query.end)
    # The partial hours at either end, for every user at once (a few minutes of rows).
    edge: dict[tuple[Any, ...], Sums] = defaultdict(Sums)
    for start, end in partial:
        _edge(conn, project_id, query, start, end, timeout, edge)
    users_only = Plan(ROLLUP, ("rollup_user_hours",))

    def sums(users: list[str]) -> dict[tuple[Any, ...], Sums]:
        groups: dict[tuple[Any, ...], Sums] = defaultdict(Sums)
        if whole is not None:
            some = top_users.only_users(query, users)
            _from_rollups(conn, project_id, some, users_only, whole, groups)
        for user in users:
            if (user,) in edge:
                _add(groups[(user,)], edge[(user,)])
        return groups

    with conn.time_limit(timeout):
        groups = top_users.top_users(conn, project_id, query, sums=sums, value=_value)
        if groups is None:
            return None
        rest = _without_user(conn, project_id, query)
        if rest is None:
            # Many traces without a user: all traces less the users' traces.
            rest = Sums()
            if whole is not None:
                total = replace(query, dimensions=())
                everyone: dict[tuple[Any, ...], Sums] = defaultdict(Sums)
                _from_rollups(conn, project_id, total, explain(total), whole, everyone)
                _add(rest, everyone[()])
                users: dict[tuple[Any, ...], Sums] = defaultdict(Sums)
                _from_rollups(conn, project_id, total, users_only, whole, users)
                _add(rest, users[()], -1)
            _add(rest, edge.get((None,), Sums()))
    if rest.rows > 0:
        groups[(None,)] = rest
    return groups


#: The traces without a user a top-users query reads one by one (more: it subtracts the
#: users' sums from all traces', which reads every user-hour of the range).
WITHOUT_USER_READ = 20_000


def _without_user(conn: Conn, project_id: str, query: Query) -> Sums | None:
    """The sums of the query's traces without a user, from their ``trace_totals`` rows
    (through ``traces_user``), when there are at most :data:`WITHOUT_USER_READ`; None
    where ``trace_totals`` is not kept (ClickHouse: the caller subtracts the users'
    sums from everyone's, both from the rollups)."""
    if not rollup_read.totals_kept(conn):
        return None
    d = conn.dialect
    source = d.by_index("traces t", "traces_user")
    where = "t.project_id = ? AND t.user_id IS NULL AND t.timestamp >= ? AND t.timestamp < ?"
    params: list[Any] = [project_id, d.ts(query.start), d.ts(query.end)]
    n = conn.scalar(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM {source} WHERE {where} LIMIT ?) AS x",
        [*params, WITHOUT_USER_READ + 1],
    )
    if int(n or 0) > WITHOUT_USER_READ:
        return None
    for cond in query.filters:  # environment only (top_users.ordered_metric)
        values = _filter_values(cond)
        if not values:  # not a rollup filter, or no environment at all
            return None
        negate = "NOT " if isinstance(values, rollup_read.Excluding) else ""
        where += f" AND tt.environment {negate}IN ({', '.join('?' * len(values))})"
        params.extend(values)
    row = conn.one(
        "SELECT COUNT(*) AS n, SUM(CASE WHEN tt.observations > 0 THEN 1 ELSE 0 END) AS seen,"
        " SUM(tt.error) AS errors, SUM(tt.observations) AS observations,"
        f" SUM(tt.cost) AS cost, SUM(tt.tokens) AS tokens FROM {source}"
        " JOIN trace_totals tt ON tt.project_id = t.project_id AND tt.trace_id = t.id"
        f" WHERE {where}",
        params,
    )
    out = Sums()
    if row is not None and row["n"]:
        out.rows, out.observed = int(row["n"]), int(row["seen"] or 0)
        out.errors, out.observations = int(row["errors"] or 0), int(row["observations"] or 0)
        out.cost, out.tokens = float(row["cost"] or 0), int(row["tokens"] or 0)
    return out


def _add(into: Sums, more: Sums, sign: int = 1) -> None:
    """Add ``more``'s sums (not its histogram) to ``into`` (``sign`` -1: subtract)."""
    for name in ("rows", "errors", "observations", "cost", "tokens", "latency_ms", "observed"):
        setattr(into, name, getattr(into, name) + sign * getattr(more, name))


def _large(
    conn: Conn, project_id: str, query: Query, timeout: float | None, threshold: int
) -> bool:
    """Whether the histograms answer ``query``'s percentiles, and only they keep it from
    the rollups, and its range holds ``threshold`` rows or more (counted
    from the rollups: a query the histograms answer has a count they answer too)."""
    if explain(query).path == ROLLUP or explain(query, approximate=True).path == RAW:
        return False
    count = replace(
        query,
        dimensions=(),
        metrics=(Metric("count", "count"),),
        granularity=None,
        order_by=(),
        row_limit=1,
    )

    def counted(q: Query) -> int:
        rows = run_query(conn, project_id, q, timeout=timeout)
        return int(rows[0][q.metrics[0].column] or 0) if rows else 0

    whole, partial = rollup_read.split_hours(query.start, query.end)
    if whole is None or not partial:
        return counted(count) >= threshold
    # The whole hours alone (rollup rows only) often settle it; the partial hours at
    # either end are raw rows, counted only when the whole ones fall short.
    n = counted(replace(count, start=whole[0], end=whole[1]))
    for a, b in partial:
        if n >= threshold:
            break
        n += counted(replace(count, start=a, end=b))
    return n >= threshold


@dataclass(slots=True)
class Sums:
    """What a group adds up to: the partial sums every metric is made from."""

    rows: int = 0  # of the view: traces or scores
    errors: int = 0
    observations: int = 0
    cost: float = 0.0
    tokens: int = 0
    latency_ms: float = 0.0
    observed: int = 0
    latency: Counter[int] = field(default_factory=Counter)
    value_sum: float = 0.0


def _from_rollups(
    conn: Conn,
    project_id: str,
    query: Query,
    plan: Plan,
    whole: tuple[datetime, datetime],
    groups: dict[tuple[Any, ...], Sums],
) -> None:
    first, last = whole
    mapping = _dimensions(query)
    dims = [mapping[d] for d in query.dimensions]
    # Read per day when the buckets are days or longer: 24 times fewer rows.
    time = "hour" if query.granularity == "hour" else "day"
    by = [*dims, time] if query.granularity else dims
    filters: dict[str, Sequence[str]] = {}
    for cond in query.filters:
        values = _filter_values(cond, mapping)
        column = mapping[cond.column]
        # Two filters on one column: a value must pass both.
        filters[column] = rollup_read.narrow(filters.get(column), [] if values is None else values)
    if query.view.name == "scores-boolean":  # the view's segment
        filters["data_type"] = rollup_read.narrow(filters.get("data_type"), ["BOOLEAN"])

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        values = tuple(r.get(d) for d in dims)
        return (*values, _bucket(r[time], query.granularity)) if query.granularity else values

    def read(table: str, measures: list[str], group_by: list[str], **more: Any) -> list[Any]:
        return rollup_read.read(
            conn, table, project_id, first, last, measures=measures, group_by=group_by,
            filters={**filters, **more},
        )  # fmt: skip

    if plan.tables == ("rollup_score_hours",):
        for r in read("rollup_score_hours", ["scores", "value_sum"], by):
            s = groups[key(r)]
            s.rows += int(r["scores"])
            s.value_sum += float(r["value_sum"])
        return
    if plan.tables[0] != "rollup_user_hours":
        _trace_sums(read, query, plan, by, key, groups)
        return
    measures = ["traces", "observed_traces", "errors", "observations", "cost", "total_tokens"]
    for r in read("rollup_user_hours", measures, by):
        s = groups[key(r)]
        s.rows += int(r["traces"])
        s.observed += int(r["observed_traces"])
        s.errors += int(r["errors"])
        s.observations += int(r["observations"])
        s.cost += float(r["cost"])
        s.tokens += int(r["total_tokens"])
    if len(plan.tables) == 1:
        return
    # Grouped by user: the group without one is every trace less the users' traces.
    at = dims.index("user_id")
    totals: dict[tuple[Any, ...], Sums] = defaultdict(Sums)
    _trace_sums(read, query, plan, [b for b in by if b != "user_id"], key, totals)
    for k, users in list(groups.items()):
        if k[at] is not None:
            rest = totals[(*k[:at], None, *k[at + 1 :])]
            for name in ("rows", "observed", "errors", "observations", "cost", "tokens"):
                setattr(rest, name, getattr(rest, name) - getattr(users, name))
    for k, rest in totals.items():
        if rest.rows > 0:
            groups[k] = rest


def _trace_sums(
    read: Any,
    query: Query,
    plan: Plan,
    by: list[str],
    key: Any,
    groups: dict[tuple[Any, ...], Sums],
) -> None:
    """Sums from the trace and observation rollups, grouped by ``by``."""
    needs = _needs(query)
    percentiles = any(m.aggregation in PERCENTILES for m in query.metrics)
    measures = ["traces", "errors", "latency_sum"]
    # By latency bucket only for a histogram; else the traces without observations
    # (bucket NO_LATENCY) are read apart when the metrics need the observed ones.
    for r in read("rollup_trace_hours", measures, [*by, "latency_bucket"] if percentiles else by):
        s = groups[key(r)]
        s.rows += int(r["traces"])
        s.errors += int(r["errors"])
        s.latency_ms += float(r["latency_sum"]) * 1000
        if not percentiles:
            s.observed += int(r["traces"])
        elif r["latency_bucket"] != NO_LATENCY:
            s.observed += int(r["traces"])
            s.latency[r["latency_bucket"]] += int(r["traces"])
    if not percentiles and "observed" in needs:
        for r in read("rollup_trace_hours", ["traces"], by, latency_bucket=[NO_LATENCY]):
            groups[key(r)].observed -= int(r["traces"])
    if {"rollup_observation_hours", "rollup_model_days"} & set(plan.tables):
        measures = ["observations", "cost", "total_tokens"]
        for r in read("rollup_observation_hours", measures, by):
            s = groups[key(r)]
            s.observations += int(r["observations"])
            s.cost += float(r["cost"])
            s.tokens += int(r["total_tokens"])


def _needs(query: Query) -> set[str]:
    """The partial sums (:class:`Sums` fields) the query's metrics are made from."""
    out = {"rows"}
    for metric in query.metrics:
        out |= _NEEDS.get(metric.measure, set())
    return out


#: rollup dimension -> the ``trace_totals`` column holding it
_TOTALS_COLUMNS = {
    "trace_name": "tt.name",
    "environment": "tt.environment",
    "user_id": "tt.user_id",
}


def _edge(
    conn: Conn,
    project_id: str,
    query: Query,
    start: datetime,
    end: datetime,
    timeout: float | None,
    groups: dict[tuple[Any, ...], Sums],
) -> None:
    """A partial hour at either end of a rollup answer: from the traces' own
    ``trace_totals`` rows (:func:`_from_trace_totals`) when they hold what the query
    needs, else from the raw rows."""
    if rollup_read.totals_kept(conn):
        with conn.time_limit(timeout):
            if _from_trace_totals(conn, project_id, query, start, end, groups):
                return
    _from_raw(conn, project_id, query, start, end, timeout, groups)


def _from_trace_totals(
    conn: Conn,
    project_id: str,
    query: Query,
    start: datetime,
    end: datetime,
    groups: dict[tuple[Any, ...], Sums],
) -> bool:
    """Add the sums of the traces view's traces in ``[start, end)`` from their
    ``trace_totals`` rows (kept in the write path, the rows the rollups are summed
    from: each trace's observations, cost, tokens, latency and error flag) through its
    time index, instead of every trace's observations; False (nothing added) when a
    dimension or filter is not one of its columns. A name or user that is none counts
    as ``''``, as in the rollups."""
    if query.view.name != "traces":
        return False
    mapping = _dimensions(query)
    dims = [_TOTALS_COLUMNS.get(mapping.get(d, "")) for d in query.dimensions]
    d = conn.dialect
    where = ["tt.project_id = ?", "tt.timestamp >= ?", "tt.timestamp < ?"]
    params: list[Any] = [project_id, d.ts(start), d.ts(end)]
    for cond in query.filters:
        values = _filter_values(cond, mapping)
        column = _TOTALS_COLUMNS.get(mapping.get(cond.column, ""))
        if values is None or column is None:
            return False
        negate = "NOT " if isinstance(values, rollup_read.Excluding) else ""
        if not values:
            where.append("1 = 1" if negate else "1 = 0")
            continue
        marks = ", ".join("?" * len(values))
        where.append(f"COALESCE({column}, '') {negate}IN ({marks})")
        params.extend(values)
    if any(c is None for c in dims):
        return False
    cols = "".join(f"COALESCE({c}, '') AS d{i}, " for i, c in enumerate(dims))
    source = d.by_index("trace_totals tt", "trace_totals_time")
    rows = conn.all(
        f"SELECT {cols}tt.timestamp AS ts, tt.observations AS n, tt.cost AS cost,"
        f" tt.tokens AS tokens, tt.latency AS latency, tt.error AS error FROM {source}"
        f" WHERE {' AND '.join(where)}",
        params,
    )
    for r in rows:
        key = tuple(r[f"d{i}"] or None for i in range(len(dims)))
        if query.granularity:
            at = r["ts"]
            label = at[:13] if isinstance(at, str) else format_ts(at)[:13]
            key = (*key, _bucket(label, query.granularity))
        s = groups[key]
        s.rows += 1
        if r["n"]:
            latency = float(r["latency"] or 0.0)
            s.observed += 1
            s.errors += int(r["error"])
            s.observations += int(r["n"])
            s.cost += float(r["cost"])
            s.tokens += int(r["tokens"])
            s.latency_ms += latency * 1000
            s.latency[bucket(latency)] += 1
    return True


def _from_raw(
    conn: Conn,
    project_id: str,
    query: Query,
    start: datetime,
    end: datetime,
    timeout: float | None,
    groups: dict[tuple[Any, ...], Sums],
) -> None:
    needs = _needs(query)
    if query.view.name in _SCORE_VIEWS:
        parts = [("count", "count", "rows"), ("value", "sum", "value_sum")]
    else:
        parts = [(m, a, name) for m, a, name in _PARTS if name in needs]
    metrics = [Metric(m, a) for m, a, _ in parts]
    if any(m.aggregation in PERCENTILES for m in query.metrics):
        metrics.append(Metric("latency", "histogram"))
    part = replace(
        query, metrics=tuple(metrics), start=start, end=end, order_by=(), row_limit=_SQL_LIMIT
    )
    for r in run_raw(conn, project_id, part, timeout=timeout, collect=True):
        key = tuple(rollup_read.no_empty(r[d]) for d in query.dimensions)
        if query.granularity:
            key = (*key, r[TIME_DIMENSION])
        s = groups[key]
        for measure, aggregation, name in parts:
            value = r[f"{aggregation}_{measure}"]
            setattr(s, name, getattr(s, name) + (value or 0))
        for ms in r.get("histogram_latency") or ():
            s.latency[bucket(ms / 1000)] += 1


@lru_cache(maxsize=4096)
def _bucket(hour: str, granularity: str | None) -> str:
    """The time bucket (as the raw query labels it) holding a rollup hour label
    (``YYYY-MM-DDTHH``) or, for day, week and month, a day label (``YYYY-MM-DD``)."""
    if granularity == "hour":
        return f"{hour}:00:00.000Z"
    day = date.fromisoformat(hour[:10])
    if granularity == "week":
        day -= timedelta(days=day.weekday())
    elif granularity == "month":
        day = day.replace(day=1)
    return f"{day.isoformat()}T00:00:00.000Z"


def _row(query: Query, key: tuple[Any, ...], s: Sums) -> dict[str, Any]:
    return plan_observations.row_of(query, key, lambda metric: _value(metric, s))


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _value(metric: Metric, s: Sums) -> Any:
    measure, aggregation = metric.measure, metric.aggregation
    if measure == "value":  # a score's (every numeric and boolean score has one)
        if aggregation == "count":
            return s.rows
        if not s.rows:
            return None
        return s.value_sum if aggregation == "sum" else s.value_sum / s.rows
    if measure == "latency":
        if aggregation == "count":
            return s.observed
        if aggregation in PERCENTILES:
            value = rollup_read.percentile(s.latency, PERCENTILES[aggregation])
            return None if value is None else value * 1000
        if not s.observed:
            return None
        return s.latency_ms if aggregation == "sum" else s.latency_ms / s.observed
    if aggregation == "count":
        return s.rows
    if not s.rows:
        return None  # SQL's SUM and AVG of no rows
    if measure in ("totalCost", "totalTokens"):  # a trace without observations adds null
        if not s.observed:
            return None
        return float(s.cost) if measure == "totalCost" else int(s.tokens)
    total = {
        "count": s.rows,
        "errorCount": s.errors,
        "errorRate": s.errors,
        "observationsCount": s.observations,
    }[measure]
    if aggregation == "avg":
        return total / s.rows
    return float(total) if measure == "errorRate" else int(total)


def _sort_key(name: str) -> Any:
    def key(row: dict[str, Any]) -> tuple[bool, Any]:
        value = row[name]
        return (value is not None, 0 if value is None else value)

    return key


def _ordered(query: Query, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` in the raw query's order: ``orderBy``, the time bucket (oldest first)
    or else the first metric (largest first), then the dimensions; nulls last."""
    wanted = list(query.order_by)
    if query.granularity:
        wanted.append((TIME_DIMENSION, "asc"))
    elif query.metrics:
        wanted.append((query.metrics[0].column, "desc"))
    wanted.extend((name, "asc") for name in query.dimensions)
    seen: list[tuple[str, str]] = []
    for name, direction in wanted:
        if name not in (n for n, _ in seen):
            seen.append((name, direction))
    for name, direction in reversed(seen):
        rows.sort(key=_sort_key(name), reverse=direction == "desc")
        rows.sort(key=lambda r, n=name: r[n] is None)  # type: ignore[misc]  # nulls last
    return rows


__all__ = ["EXACT", "RAW", "ROLLUP", "Plan", "Sums", "explain", "run_query", "top_user_sums"]
