"""The views of the metrics query API: per view, its dimensions, measures, filter
columns, time column and base table (Langfuse's names, contract section 4.6).

Dimensions on an entity's own columns come from its field table (``schema/``): the
column, and the filter kind of its value kind. Joined ones (a trace's name on an
observation, an observation's model on a score) name the join they need. A measure is
an expression with one value per row of the view (an observation's latency, a trace's
cost summed over its observations); the query aggregates those values per group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ...schema import OBSERVATION, SCORE, TRACE, Entity
from ...schema.field import FILTER_KIND
from ...store.dialect import Dialect
from ...store.filters import Column

#: Every aggregation the API knows; percentiles by their fraction.
PERCENTILES = {"p50": 0.50, "p75": 0.75, "p90": 0.90, "p95": 0.95, "p99": 0.99}
AGGREGATIONS = ("sum", "avg", "count", "max", "min", *PERCENTILES, "histogram")
#: What a measure counting distinct values (``uniqueUserIds``) accepts.
DISTINCT_AGGREGATIONS = ("count", "sum")

#: SQL of an expression, per dialect, with its bound parameters.
Sql = Callable[[Dialect], tuple[str, list[Any]]]
#: SQL of an expression without parameters, per dialect.
Text = Callable[[Dialect], str]


def _plain(text: str) -> Sql:
    return lambda _d: (text, [])


def _text(text: str) -> Text:
    return lambda _d: text


@dataclass(frozen=True, slots=True)
class Dimension:
    """A field to group or filter by: its SQL, filter kind and the join it needs.

    ``high_cardinality`` ones (ids) are refused as a v2 grouping; ``v2_only`` ones are
    unknown to v1."""

    name: str
    sql: Text
    kind: str
    join: str | None = None
    high_cardinality: bool = False
    v2_only: bool = False


@dataclass(frozen=True, slots=True)
class Measure:
    """A value per row of the view, aggregated per group. ``integer`` measures keep
    integer sums, counts, minima and maxima; ``distinct`` ones count distinct values
    (``count``/``sum`` only)."""

    name: str
    sql: Sql
    integer: bool = False
    distinct: bool = False
    join: str | None = None
    unit: str = ""
    #: The join it needs on ClickHouse instead of a correlated subquery (its SQL there
    #: reads the joined per-trace sums: see :func:`_per_trace`).
    ch_join: str | None = None

    def allows(self, aggregation: str) -> bool:
        """True when ``aggregation`` applies to this measure."""
        return aggregation in (DISTINCT_AGGREGATIONS if self.distinct else AGGREGATIONS)


@dataclass(frozen=True, slots=True)
class View:
    """One view: rows of ``table`` (as ``alias``), narrowed by ``segment``, in time by
    ``time_column``; ``joins`` are the SQL each named join adds (``?`` bound to the
    project id)."""

    name: str
    table: str
    alias: str
    time_column: str
    dimensions: Mapping[str, Dimension]
    measures: Mapping[str, Measure]
    joins: Mapping[str, str]
    segment: str = ""
    #: Filter-only columns: metadata (by key) and timestamps.
    extra_filters: Mapping[str, tuple[str, str, str | None]] = field(default_factory=dict)
    versions: tuple[int, ...] = (1, 2)

    def dimensions_for(self, version: int) -> dict[str, Dimension]:
        """The dimensions a query of API ``version`` may name."""
        return {n: d for n, d in self.dimensions.items() if version == 2 or not d.v2_only}

    def filter_columns(self, dialect: Dialect, version: int) -> dict[str, Column]:
        """The ``filters`` whitelist: every dimension, metadata and the timestamps."""
        out: dict[str, Column] = {}
        for name, dim in self.dimensions_for(version).items():
            out[name] = Column(dim.sql(dialect), dim.kind, dim.join)  # type: ignore[arg-type]
        for name, (sql, kind, join) in self.extra_filters.items():
            out[name] = Column(sql, kind, join)  # type: ignore[arg-type]
        return out


# --- dimensions from the field tables ----------------------------------------------------


def own(entity: Entity, column: str, name: str | None = None, **more: Any) -> Dimension:
    """A dimension on a column of the view's own entity, named by its API name."""
    f = entity[column]
    api = name or f.api
    assert api is not None, column
    return Dimension(api, _text(f"{entity.alias}.{column}"), FILTER_KIND[f.kind], **more)


def joined(entity: Entity, column: str, name: str, **more: Any) -> Dimension:
    """A dimension on a column of a joined entity (its join named after its table)."""
    f = entity[column]
    return Dimension(
        name, _text(f"{entity.alias}.{column}"), FILTER_KIND[f.kind], join=entity.table, **more
    )


def _month(column: str) -> Text:
    return lambda d: d.utc_month(column)


def _day(column: str) -> Text:
    return lambda d: d.utc_day(column)


def _dims(*items: Dimension) -> dict[str, Dimension]:
    return {d.name: d for d in items}


def _measures(*items: Measure) -> dict[str, Measure]:
    return {m.name: m for m in items}


def _sql(sql: Text) -> Sql:
    return lambda d: (sql(d), [])


def _float(sql: Text) -> Sql:
    """A float-valued expression, cast so both backends aggregate it as a double."""
    return lambda d: (f"CAST({sql(d)} AS DOUBLE PRECISION)", [])


def _millis(end: str, start: str) -> Sql:
    return _float(lambda d: f"({d.seconds_between(end, start)}) * 1000")


def _per_second(tokens: str, end: str, start: str) -> Sql:
    return _float(
        lambda d: f"{tokens} / NULLIF(CAST({d.seconds_between(end, start)} AS DOUBLE PRECISION), 0)"
    )


def _cost_part(part: str) -> Sql:
    return lambda d: (
        f"CAST({d.json_sum_keys_containing('o.cost_details')} AS DOUBLE PRECISION)",
        [part],
    )


def _of_observations(select: Text, on_clickhouse: Text) -> Text:
    """A trace's value over its observations: a correlated subquery on their index, or
    on ClickHouse (which does not run those) ``on_clickhouse`` over the joined per-trace
    sums (``tob``, the ``trace_observations`` join)."""
    return lambda d: (
        on_clickhouse(d)
        if d.name == "clickhouse"
        else (
            f"(SELECT {select(d)} FROM observations ob"
            " WHERE ob.project_id = t.project_id AND ob.trace_id = t.id)"
        )
    )


def _summed(column: str) -> str:
    """A trace's sum of an observation column: 0 when none of its observations has a
    value, null only when it has no observations (what the rollups add up)."""
    return f"COALESCE(SUM({column}), CASE WHEN COUNT(*) > 0 THEN 0 END)"


COUNT = Measure("count", _plain("1"), integer=True)


def _errors(
    flag: str, *, on_clickhouse: str | None = None, ch_join: str | None = None
) -> tuple[Measure, Measure]:
    """Lanterna's error measures (Langfuse has none): ``errorCount``, 1 for a row that
    is an error and 0 otherwise (its ``sum`` counts errors), and ``errorRate``, the same
    as a float (its ``avg`` is the share of rows that are errors). ``on_clickhouse``:
    the flag there, reading ``ch_join``."""

    def case(d: Dialect) -> str:
        chosen = on_clickhouse if on_clickhouse and d.name == "clickhouse" else flag
        return f"CASE WHEN {chosen} THEN 1 ELSE 0 END"

    return (
        Measure("errorCount", lambda d: (case(d), []), integer=True, ch_join=ch_join),
        Measure(
            "errorRate",
            lambda d: (f"CAST({case(d)} AS DOUBLE PRECISION)", []),
            ch_join=ch_join,
        ),
    )


_T, _O, _S = TRACE.alias, OBSERVATION.alias, SCORE.alias
#: In a join's SQL: the ids of the project's traces in the query's range (``run.py``
#: binds the project, the range's start and its end).
RANGED_TRACES = (
    "(SELECT rt.id FROM traces rt WHERE rt.project_id = ? AND rt.timestamp >= ?"
    " AND rt.timestamp < ?)"
)

#: In a join's SQL: the figures' rows of the query's range (``run.py`` binds its start
#: and end): ``trace_figures`` is ordered by the traces' time.
RANGED_FIGURES = "f.timestamp >= ? AND f.timestamp < ?"

#: Joins by name (``?``: the project id).
JOIN_TRACES = {
    "observations": f"LEFT JOIN traces {_T} ON {_T}.project_id = {_O}.project_id"
    f" AND {_T}.id = {_O}.trace_id",
    "scores": f"LEFT JOIN traces {_T} ON {_T}.project_id = {_S}.project_id"
    f" AND {_T}.id = {_S}.trace_id",
}

TRACES = View(
    "traces",
    "traces",
    _T,
    f"{_T}.timestamp",
    _dims(
        own(TRACE, "id", high_cardinality=True),
        own(TRACE, "name"),
        own(TRACE, "tags"),
        own(TRACE, "user_id", high_cardinality=True),
        own(TRACE, "session_id", high_cardinality=True),
        own(TRACE, "release"),
        own(TRACE, "version"),
        own(TRACE, "environment"),
        Dimension("timestampMonth", _month(f"{_T}.timestamp"), "string"),
    ),
    _measures(
        COUNT,
        Measure(
            "observationsCount",
            _sql(_of_observations(lambda _d: "COUNT(*)", lambda _d: "COALESCE(tob.n, 0)")),
            integer=True,
            ch_join="trace_observations",
        ),
        Measure(
            "scoresCount",
            lambda d: (
                "COALESCE(tsc.n, 0)"
                if d.name == "clickhouse"
                else "(SELECT COUNT(*) FROM scores sc"
                f" WHERE sc.project_id = {_T}.project_id AND sc.trace_id = {_T}.id)",
                [],
            ),
            integer=True,
            ch_join="trace_scores",
        ),
        Measure("uniqueUserIds", _plain(f"{_T}.user_id"), integer=True, distinct=True),
        Measure("uniqueSessionIds", _plain(f"{_T}.session_id"), integer=True, distinct=True),
        Measure(
            "latency",
            _float(
                _of_observations(
                    lambda d: (
                        d.seconds_between(
                            "MAX(COALESCE(ob.end_time, ob.start_time))", "MIN(ob.start_time)"
                        )
                        + " * 1000"
                    ),
                    lambda _d: "tob.latency * 1000",
                )
            ),
            unit="ms",
            ch_join="trace_observations",
        ),
        Measure(
            "totalTokens",
            _sql(_of_observations(lambda _d: _summed("ob.usage_total"), lambda _d: "tob.tokens")),
            integer=True,
            ch_join="trace_observations",
        ),
        Measure(
            "totalCost",
            _float(_of_observations(lambda _d: _summed("ob.total_cost"), lambda _d: "tob.cost")),
            unit="USD",
            ch_join="trace_observations",
        ),
        # A trace is an error when one of its observations has level ERROR.
        *_errors(
            "EXISTS (SELECT 1 FROM observations ob WHERE ob.project_id = t.project_id"
            " AND ob.trace_id = t.id AND ob.level = 'ERROR')",
            on_clickhouse="COALESCE(tob.errors, 0) > 0",
            ch_join="trace_observations",
        ),
    ),
    {
        # ClickHouse only (see Measure.ch_join): a trace's observations summed, as the
        # write path keeps them per trace (``trace_figures``: latency in seconds, cost and
        # tokens 0 where its observations have none), for the traces of the query's
        # range (RANGED_TRACES: the ids of the project's traces in it, so a range of an
        # hour does not read every trace stored).
        "trace_observations": "LEFT JOIN (SELECT f.project_id AS p, f.trace_id AS tid,"
        " f.observations AS n, f.latency AS latency, f.tokens AS tokens, f.cost AS cost,"
        " f.errors AS errors FROM trace_figures f WHERE f.project_id = ?"
        f" AND {RANGED_FIGURES} AND f.trace_id IN {RANGED_TRACES} AND f.observations > 0) tob"
        f" ON tob.p = {_T}.project_id AND tob.tid = {_T}.id",
        "trace_scores": "LEFT JOIN (SELECT sc.project_id AS p, sc.trace_id AS tid,"
        f" COUNT(*) AS n FROM scores sc WHERE sc.project_id = ? AND sc.trace_id IN"
        f" {RANGED_TRACES} GROUP BY sc.project_id, sc.trace_id) tsc"
        f" ON tsc.p = {_T}.project_id AND tsc.tid = {_T}.id",
    },
    extra_filters={
        "metadata": (f"{_T}.metadata", "object", None),
        "timestamp": (f"{_T}.timestamp", "datetime", None),
    },
    versions=(1,),
)

_TRACE_FIELDS = (
    joined(TRACE, "name", "traceName"),
    joined(TRACE, "tags", "tags"),
    joined(TRACE, "user_id", "userId", high_cardinality=True),
    joined(TRACE, "session_id", "sessionId", high_cardinality=True),
    joined(TRACE, "release", "traceRelease"),
    joined(TRACE, "version", "traceVersion"),
)

OBSERVATIONS = View(
    "observations",
    "observations",
    _O,
    f"{_O}.start_time",
    _dims(
        own(OBSERVATION, "id", high_cardinality=True),
        own(OBSERVATION, "trace_id", high_cardinality=True),
        *_TRACE_FIELDS,
        joined(TRACE, "release", "release", v2_only=True),
        own(OBSERVATION, "environment"),
        own(OBSERVATION, "parent_observation_id", high_cardinality=True),
        own(OBSERVATION, "type"),
        own(OBSERVATION, "name"),
        own(OBSERVATION, "level"),
        own(OBSERVATION, "version"),
        own(OBSERVATION, "model", "providedModelName"),
        own(OBSERVATION, "prompt_name"),
        own(OBSERVATION, "prompt_version"),
        Dimension("startTimeMonth", _month(f"{_O}.start_time"), "string"),
        Dimension(
            "isRootObservation",
            _text(f"({_O}.parent_observation_id IS NULL)"),
            "boolean",
            v2_only=True,
        ),
    ),
    _measures(
        COUNT,
        Measure("latency", _millis(f"{_O}.end_time", f"{_O}.start_time"), unit="ms"),
        Measure(
            "streamingLatency",
            _millis(f"{_O}.end_time", f"{_O}.completion_start_time"),
            unit="ms",
        ),
        Measure("inputTokens", _plain(f"{_O}.usage_input"), integer=True),
        Measure("outputTokens", _plain(f"{_O}.usage_output"), integer=True),
        Measure("totalTokens", _plain(f"{_O}.usage_total"), integer=True),
        Measure(
            "outputTokensPerSecond",
            _per_second(f"{_O}.usage_output", f"{_O}.end_time", f"{_O}.completion_start_time"),
        ),
        Measure(
            "tokensPerSecond",
            _per_second(f"{_O}.usage_total", f"{_O}.end_time", f"{_O}.start_time"),
        ),
        Measure("inputCost", _cost_part("input"), unit="USD"),
        Measure("outputCost", _cost_part("output"), unit="USD"),
        Measure("totalCost", _float(lambda _d: f"{_O}.total_cost"), unit="USD"),
        Measure(
            "timeToFirstToken",
            _millis(f"{_O}.completion_start_time", f"{_O}.start_time"),
            unit="ms",
        ),
        Measure(
            "countScores",
            _plain("COALESCE(score_counts.n, 0)"),
            integer=True,
            join="score_counts",
        ),
        *_errors(f"{_O}.level = 'ERROR'"),
    ),
    {
        "traces": JOIN_TRACES["observations"],
        # One pass over the project's scores instead of one lookup per observation.
        "score_counts": "LEFT JOIN (SELECT sc.observation_id, COUNT(*) AS n FROM scores sc"
        " WHERE sc.project_id = ? AND sc.observation_id IS NOT NULL"
        f" GROUP BY sc.observation_id) score_counts ON score_counts.observation_id = {_O}.id",
    },
    extra_filters={
        "metadata": (f"{_O}.metadata", "object", None),
        "startTime": (f"{_O}.start_time", "datetime", None),
        "endTime": (f"{_O}.end_time", "datetime", None),
    },
)

_SCORE_DIMENSIONS = (
    *_TRACE_FIELDS,
    joined(OBSERVATION, "name", "observationName"),
    joined(OBSERVATION, "model", "observationModelName"),
    joined(OBSERVATION, "prompt_name", "observationPromptName"),
    joined(OBSERVATION, "prompt_version", "observationPromptVersion"),
    own(SCORE, "id", high_cardinality=True),
    own(SCORE, "environment"),
    own(SCORE, "name"),
    own(SCORE, "source"),
    own(SCORE, "data_type"),
    own(SCORE, "trace_id", high_cardinality=True),
    own(SCORE, "config_id"),
    own(SCORE, "observation_id", high_cardinality=True),
    Dimension("timestampMonth", _month(f"{_S}.timestamp"), "string"),
    Dimension("timestampDay", _day(f"{_S}.timestamp"), "string"),
)
_SCORE_JOINS = {
    "traces": JOIN_TRACES["scores"],
    "observations": f"LEFT JOIN observations {_O} ON {_O}.project_id = {_S}.project_id"
    f" AND {_O}.id = {_S}.observation_id",
}
_SCORE_FILTERS = {
    "metadata": (f"{_S}.metadata", "object", None),
    "timestamp": (f"{_S}.timestamp", "datetime", None),
}
_VALUE = Measure("value", _float(lambda _d: f"{_S}.value"))


def _scores(name: str, segment: str, *more: Dimension, value: bool = True) -> View:
    measures = (COUNT, _VALUE) if value else (COUNT,)
    return View(
        name,
        "scores",
        _S,
        f"{_S}.timestamp",
        _dims(*_SCORE_DIMENSIONS, *more),
        _measures(*measures),
        _SCORE_JOINS,
        segment=segment,
        extra_filters=_SCORE_FILTERS,
    )


SCORES_NUMERIC = _scores(
    "scores-numeric",
    f"{_S}.data_type IN ('NUMERIC', 'BOOLEAN')",
    own(SCORE, "value"),
)
SCORES_CATEGORICAL = _scores(
    "scores-categorical",
    f"{_S}.data_type = 'CATEGORICAL'",
    own(SCORE, "string_value"),
    value=False,
)
SCORES_BOOLEAN = replace(
    _scores(
        "scores-boolean",
        f"{_S}.data_type = 'BOOLEAN'",
        own(SCORE, "value"),
        Dimension("booleanValue", _text(f"({_S}.value = 1)"), "boolean"),
    ),
    # v2's view; v1 takes it too, as Langfuse's OpenAPI document lists it there.
    versions=(1, 2),
)

#: Every view by its API name.
VIEWS: dict[str, View] = {
    v.name: v for v in (TRACES, OBSERVATIONS, SCORES_NUMERIC, SCORES_CATEGORICAL, SCORES_BOOLEAN)
}


def views_for(version: int) -> dict[str, View]:
    """The views API ``version`` (1 or 2) serves."""
    return {n: v for n, v in VIEWS.items() if version in v.versions}
