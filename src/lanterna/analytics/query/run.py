"""A checked :class:`~.model.Query` compiled to SQL and answered from raw rows.

One statement in two levels: the inner SELECT has one row per row of the view (an
observation, a trace, a score) with its dimension values, time bucket and measure
values; the outer one groups those by the dimensions and the bucket and aggregates each
measure. Percentiles are exact on both backends (PostgreSQL's ``percentile_cont``, an
equivalent aggregate registered on SQLite connections); a histogram collects the
group's values and bins them here. The project id is always bound: a query sees only
its caller's project.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ...store.db import Conn
from ...store.dialect import Dialect
from ...store.filters import FilterError, compile_conditions
from .model import TIME_DIMENSION, Metric, Query, QueryError
from .views import PERCENTILES, RANGED_FIGURES, RANGED_TRACES

_RANGED = re.compile(f"({re.escape(RANGED_TRACES)}|{re.escape(RANGED_FIGURES)})")


@dataclass(frozen=True, slots=True)
class Compiled:
    """A query's SQL and parameters, and how to read each selected column back."""

    sql: str
    params: list[Any]
    #: ``(answer column, kind)`` in select order; kind: a dimension's filter kind,
    #: ``time``, or ``metric``.
    columns: tuple[tuple[str, str], ...]


def compile_query(query: Query, project_id: str, dialect: Dialect) -> Compiled:
    """The SQL answering ``query`` for ``project_id`` on ``dialect``."""
    d = dialect
    view = query.view
    dimensions = view.dimensions_for(query.version)
    inner: list[str] = []
    params: list[Any] = []
    joins: set[str] = set()
    outer: list[str] = []
    columns: list[tuple[str, str]] = []
    group: list[str] = []

    for i, name in enumerate(query.dimensions):
        dim = dimensions[name]
        inner.append(f"{dim.sql(d)} AS d{i}")
        if dim.join:
            joins.add(dim.join)
        outer.append(f"d{i}")
        group.append(f"d{i}")
        columns.append((name, dim.kind))
    if query.granularity:
        inner.append(f"{d.time_bucket(view.time_column, query.granularity)} AS tb")
        outer.append("tb")
        group.append("tb")
        columns.append((TIME_DIMENSION, "time"))

    measures = list(dict.fromkeys(m.measure for m in query.metrics))
    for j, name in enumerate(measures):
        measure = view.measures[name]
        sql, bound = measure.sql(d)
        inner.append(f"{sql} AS m{j}")
        params.extend(bound)
        if measure.join:
            joins.add(measure.join)
        if measure.ch_join and d.name == "clickhouse":
            joins.add(measure.ch_join)
    for k, metric in enumerate(query.metrics):
        value = f"m{measures.index(metric.measure)}"
        outer.append(f"{_aggregate(d, query, metric, value)} AS a{k}")
        columns.append((metric.column, "metric"))

    try:
        filters = compile_conditions(
            query.filters,
            view.filter_columns(d, query.version),
            d,
            resource=f"view {view.name!r}",
        )
    except FilterError as exc:
        raise QueryError(str(exc)) from None
    joins |= filters.joins
    join_sql = []
    for name in sorted(joins):
        sql = view.joins[name]
        join_sql.append(sql)
        # A "?" is the project, but in the range's traces and figures.
        for piece in _RANGED.split(sql):
            if piece == RANGED_TRACES:
                params.extend([project_id, d.ts(query.start), d.ts(query.end)])
            elif piece == RANGED_FIGURES:
                params.extend([d.ts(query.start), d.ts(query.end)])
            else:
                params.extend([project_id] * piece.count("?"))

    alias, time = view.alias, view.time_column
    where = [f"{alias}.project_id = ?", f"{time} >= ?", f"{time} < ?"]
    params.extend([project_id, d.ts(query.start), d.ts(query.end)])
    if view.segment:
        where.append(view.segment)
    where.extend(filters.clauses)
    params.extend(filters.params)

    sql = (
        f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)}"
        f" FROM {view.table} {alias} {' '.join(join_sql)} WHERE {' AND '.join(where)}"
        f"{d.subquery_fence}) q"
    )
    if group:
        sql += f" GROUP BY {', '.join(group)}"
    # Ordered outside the grouping: PostgreSQL takes output names in ORDER BY only bare.
    sql = f"SELECT * FROM ({sql}) r ORDER BY {', '.join(_order(query, columns))} LIMIT ?"
    params.append(query.row_limit)
    return Compiled(sql, params, tuple(columns))


def _aggregate(d: Dialect, query: Query, metric: Metric, value: str) -> str:
    aggregation = metric.aggregation
    if query.view.measures[metric.measure].distinct:
        return f"COUNT(DISTINCT {value})"
    if aggregation in PERCENTILES:
        return d.percentile(PERCENTILES[aggregation], value)
    if aggregation == "histogram":
        return d.collect(value)
    return f"{aggregation.upper()}({value})"


def _order(query: Query, columns: list[tuple[str, str]]) -> list[str]:
    """ORDER BY terms: the query's ``orderBy``, then the time bucket (oldest first), then
    the first metric (largest first) when there is no time bucket, then the dimensions;
    nulls last on both backends."""
    alias = {name: _internal(index, columns) for index, (name, _) in enumerate(columns)}
    kinds = dict(columns)
    wanted = list(query.order_by)
    if query.granularity:
        wanted.append((TIME_DIMENSION, "asc"))
    else:
        first = next((m.column for m in query.metrics if m.aggregation != "histogram"), None)
        if first is not None:
            wanted.append((first, "desc"))
    wanted.extend((name, "asc") for name in query.dimensions)
    terms: list[str] = []
    seen: set[str] = set()
    for name, direction in wanted:
        if name in seen or kinds.get(name) is None:
            continue
        seen.add(name)
        expr = alias[name]
        terms.append(f"CASE WHEN {expr} IS NULL THEN 1 ELSE 0 END, {expr} {direction.upper()}")
    return terms or ["1"]


def _internal(index: int, columns: list[tuple[str, str]]) -> str:
    """The selected column's name in the SQL (d0, tb, a0, ...)."""
    _, kind = columns[index]
    if kind == "time":
        return "tb"
    if kind == "metric":
        return f"a{sum(1 for _, k in columns[:index] if k == 'metric')}"
    return f"d{index}"


def run_raw(
    conn: Conn,
    project_id: str,
    query: Query,
    *,
    timeout: float | None = None,
    collect: bool = False,
) -> list[dict[str, Any]]:
    """The answer's rows from raw rows (dicts named as :attr:`Query.columns`), read
    within ``timeout`` seconds (None: no limit; over it: ``StatementTimeout``, a 422).
    ``collect``: a ``histogram`` metric holds the group's values, not bins (what the
    planner merges with rollup histograms). :func:`~.plan.run_query` is the entry
    point that picks rollups or raw rows."""
    compiled = compile_query(query, project_id, conn.dialect)
    with conn.time_limit(timeout):
        cur = conn.raw.execute(conn.dialect.sql(compiled.sql), compiled.params)
        raw_rows = cur.fetchall()
    metrics = {m.column: m for m in query.metrics}
    out = []
    for raw in raw_rows:
        row: dict[str, Any] = {}
        for (name, kind), value in zip(compiled.columns, raw, strict=True):
            if kind == "metric":
                row[name] = _metric_value(conn.dialect, query, metrics[name], value, collect)
            else:
                row[name] = _dimension_value(conn.dialect, kind, value)
        out.append(row)
    return out


def _dimension_value(d: Dialect, kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "array":
        return d.json_out(value)
    if kind == "boolean":
        return bool(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def _metric_value(d: Dialect, query: Query, metric: Metric, value: Any, collect: bool) -> Any:
    measure = query.view.measures[metric.measure]
    if metric.aggregation == "histogram":
        values = [float(v) for v in d.collected(value)]
        return values if collect else histogram(values, query.bins)
    if value is None:
        return None
    integer = (
        metric.aggregation == "count"
        or measure.distinct
        or (measure.integer and metric.aggregation in ("sum", "max", "min"))
    )
    return int(value) if integer else float(value)


def histogram(values: list[float], bins: int) -> list[list[float]]:
    """``values`` in ``bins`` equal-width bins from their minimum to their maximum, as
    ``[lower, upper, height]`` (height: how many values; a value on an inner edge
    counts in the upper bin, the maximum in the last). One bin when all are equal;
    none when there are no values."""
    if not values:
        return []
    low, high = min(values), max(values)
    if low == high:
        return [[low, high, len(values)]]
    width = (high - low) / bins
    heights = [0] * bins
    for v in values:
        heights[min(int((v - low) / width), bins - 1)] += 1
    edges = [low + i * width for i in range(bins)] + [high]
    return [[edges[i], edges[i + 1], heights[i]] for i in range(bins)]
