"""Score queries: one score, filtered pages of scores (with their trace's user and tags),
cursor pages (v3), and deletes. Writes of new scores go through ``write.apply_events``
like every event.

Filters use the shared compiler in ``filters.py``: the simple query parameters become
conditions, merged with the ``filter`` JSON parameter over :data:`SCORE_COLUMNS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..schema import SCORE
from . import event_rows, rollup_write
from .db import Conn
from .filters import Column, Condition, compile_conditions, field_columns, merge_conditions

#: The ``operator`` of the ``operator``/``value`` parameters -> SQL (never user text).
VALUE_OPERATORS = {"<": "<", ">": ">", "<=": "<=", ">=": ">=", "=": "=", "!=": "<>", "<>": "<>"}

#: What the legacy v1 routes return: trace scores of the types their clients know.
V1_DATA_TYPES = ("NUMERIC", "BOOLEAN", "CATEGORICAL", "TEXT")

_TRACE = "trace"  # the join a trace column needs
_JOIN = " LEFT JOIN traces t ON t.project_id = s.project_id AND t.id = s.trace_id"

#: Columns a ``filter`` condition may name (and the simple parameters use): the field
#: table's, plus the trace's.
SCORE_COLUMNS: dict[str, Column] = {
    **field_columns(SCORE),
    "userId": Column("t.user_id", "string", join=_TRACE),
    "traceName": Column("t.name", "string", join=_TRACE),
    "traceTags": Column("t.tags", "array", join=_TRACE),
    "traceEnvironment": Column("t.environment", "string", join=_TRACE),
}

# The trace columns shown next to a score (``trace: {userId, tags, environment,
# sessionId}``); prefixed so they never shadow a score column.
_SELECT = (
    "SELECT s.*, t.user_id AS trace_user_id, t.tags AS trace_tags, "
    f"t.environment AS trace_environment, t.session_id AS trace_session_id FROM scores s{_JOIN}"
)


@dataclass
class ScoreQuery:
    """The filters of ``GET /api/public/v2/scores`` (and the legacy v1 list), parsed."""

    user_id: str | None = None
    name: str | None = None
    from_timestamp: datetime | None = None
    to_timestamp: datetime | None = None
    environments: list[str] = field(default_factory=list)
    source: str | None = None
    score_ids: list[str] = field(default_factory=list)
    config_id: str | None = None
    session_id: str | None = None
    dataset_run_id: str | None = None
    trace_id: str | None = None
    observation_ids: list[str] = field(default_factory=list)
    queue_id: str | None = None
    data_type: str | None = None
    trace_tags: list[str] = field(default_factory=list)
    #: ``operator`` (a key of VALUE_OPERATORS) and ``value``: both or neither.
    operator: str | None = None
    value: float | None = None
    #: v3: exact numeric values, any of (BOOLEAN ones as 1.0 / 0.0).
    values: list[float] = field(default_factory=list)
    #: Conditions of the ``filter`` parameter (v2), or the list parameters of v3; they
    #: replace simple ones on their column.
    filters: list[Condition] = field(default_factory=list)
    #: v1: only scores on a trace (no session / dataset-run scores), of V1_DATA_TYPES.
    traces_only: bool = False

    def conditions(self) -> list[Condition]:
        """Simple parameters as conditions, merged with ``filters``."""
        simple: list[Condition] = []
        for column, value in (
            ("name", self.name),
            ("source", self.source),
            ("configId", self.config_id),
            ("sessionId", self.session_id),
            ("datasetRunId", self.dataset_run_id),
            ("traceId", self.trace_id),
            ("queueId", self.queue_id),
            ("dataType", self.data_type),
            ("userId", self.user_id),
        ):
            if value is not None:
                simple.append(Condition("string", column, "=", value))
        for column, values in (
            ("environment", self.environments),
            ("id", self.score_ids),
            ("observationId", self.observation_ids),
        ):
            if values:
                simple.append(Condition("stringOptions", column, "any of", list(values)))
        if self.trace_tags:
            simple.append(Condition("arrayOptions", "traceTags", "all of", list(self.trace_tags)))
        if self.from_timestamp is not None:
            simple.append(Condition("datetime", "timestamp", ">=", self.from_timestamp))
        if self.to_timestamp is not None:
            simple.append(Condition("datetime", "timestamp", "<", self.to_timestamp))
        merged = merge_conditions(simple, self.filters)
        if self.environments and self.reads_trace(merged):
            # Filtering by trace properties: the trace must be in those environments too.
            merged.append(
                Condition("stringOptions", "traceEnvironment", "any of", list(self.environments))
            )
        return merged

    @staticmethod
    def reads_trace(conditions: list[Condition]) -> bool:
        """True when a condition reads the scored trace's columns."""
        return any(
            (col := SCORE_COLUMNS.get(c.column)) is not None and col.join == _TRACE
            for c in conditions
        )


def _where(conn: Conn, project_id: str, q: ScoreQuery) -> tuple[str, list[Any], bool]:
    """SQL condition, parameters, and whether it reads the trace; FilterError if bad."""
    compiled = compile_conditions(q.conditions(), SCORE_COLUMNS, conn.dialect, resource="scores")
    clauses = ["s.project_id = ?", compiled.where()]
    params: list[Any] = [project_id, *compiled.params]
    if q.operator is not None and q.value is not None:
        clauses.append(f"s.value {VALUE_OPERATORS[q.operator]} ?")
        params.append(q.value)
    if q.values:
        clauses.append(f"s.value IN ({', '.join('?' * len(q.values))})")
        params.extend(q.values)
    if q.traces_only:
        marks = ", ".join("?" * len(V1_DATA_TYPES))
        clauses.append(
            "s.trace_id IS NOT NULL AND s.session_id IS NULL AND s.dataset_run_id IS NULL"
            f" AND s.data_type IN ({marks})"
        )
        params.extend(V1_DATA_TYPES)
    return " AND ".join(clauses), params, _TRACE in compiled.joins


def list_scores(
    conn: Conn, project_id: str, q: ScoreQuery, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of the project's scores matching ``q``, newest first, and the total.

    Raises ``FilterError`` for an unknown filter column, type or operator.
    """
    where, params, reads_trace = _where(conn, project_id, q)
    join = _JOIN if reads_trace else ""
    total = int(conn.scalar(f"SELECT COUNT(*) FROM scores s{join} WHERE {where}", params) or 0)
    if total <= offset:
        return [], total
    order = "ORDER BY s.timestamp DESC, s.id DESC LIMIT ? OFFSET ?"
    if reads_trace or not conn.dialect.whole_right_joins:
        return conn.all(f"{_SELECT} WHERE {where} {order}", [*params, limit, offset]), total
    # The page's scores, then their traces' columns by id (joined, ClickHouse would read
    # every trace).
    rows = conn.all(f"SELECT s.* FROM scores s WHERE {where} {order}", [*params, limit, offset])
    event_rows.with_trace_columns(
        conn, project_id, rows, ("user_id", "tags", "environment", "session_id")
    )
    return rows, total


def scores_of_traces(
    conn: Conn, project_id: str, trace_ids: Sequence[str], *, limit: int
) -> list[dict[str, Any]]:
    """The scores of ``trace_ids`` (their own and their observations'), newest first,
    at most ``limit``: their own columns only, in one statement (a list page's scores;
    :func:`list_scores` also counts them and reads their traces' columns)."""
    ids = list(dict.fromkeys(trace_ids))
    if not ids:
        return []
    source = conn.dialect.by_index("scores s", "scores_trace")
    # ClickHouse: the rows' keys found first through the trace id index, so only their
    # granules are read merged (10 M observations, a page of 50 traces: 99 -> 30 ms)
    where, params = conn.dialect.event_rows(
        "scores",
        "timestamp",
        f"{{a}}project_id = ? AND {{a}}trace_id IN ({', '.join('?' * len(ids))})",
        [project_id, *ids],
        alias="s.",
    )
    return conn.all(
        f"SELECT s.* FROM {source} WHERE {where} ORDER BY s.timestamp DESC, s.id DESC LIMIT ?",
        [*params, limit],
    )


def scores_after(
    conn: Conn,
    project_id: str,
    q: ScoreQuery,
    *,
    limit: int,
    after: tuple[datetime, str] | None,
) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` matching scores after the cursor, and whether more exist (v3).

    Order: ``timestamp`` descending, then ``id`` descending (a total order, so a walk
    with the cursor sees every row exactly once, without OFFSET's rescans). ``after`` is
    the last row's ``(timestamp, id)`` from the previous page. Rows are plain score rows
    (no trace columns). Raises ``FilterError`` for a bad filter.
    """
    where, params, reads_trace = _where(conn, project_id, q)
    if after is not None:
        # Written so the timestamp bound alone can drive the scores_time range scan.
        ts = conn.dialect.ts(after[0])
        where += " AND s.timestamp <= ? AND (s.timestamp < ? OR s.id < ?)"
        params += [ts, ts, after[1]]
    join = _JOIN if reads_trace else ""
    rows = conn.all(
        f"SELECT s.* FROM scores s{join} WHERE {where}"
        " ORDER BY s.timestamp DESC, s.id DESC LIMIT ?",
        [*params, limit + 1],
    )
    return rows[:limit], len(rows) > limit


def get_score(
    conn: Conn, project_id: str, score_id: str, *, traces_only: bool = False
) -> dict[str, Any] | None:
    """One score row (with its trace's columns), or None."""
    where, params, _ = _where(
        conn, project_id, ScoreQuery(score_ids=[score_id], traces_only=traces_only)
    )
    return conn.one(f"{_SELECT} WHERE {where}", params)


def delete_score(conn: Conn, project_id: str, score_id: str) -> bool:
    """Delete one score; False when the project has no such score. Runs in the writer."""
    rollup_write.remove_scores(conn, project_id, "id", [score_id])
    sql = "DELETE FROM scores WHERE project_id = ? AND id = ?"
    return conn.run(sql, (project_id, score_id)) > 0


@dataclass
class ScoreDistribution:
    """How the scores of one name and data type are spread (the dashboard's Scores page).

    NUMERIC: ``bins`` are ``(lower, upper, count)``, each from ``lower`` up to (not
    including, but the last one including) ``upper``; when the scores take at most
    ``max_bins`` distinct values, one bin per value (``lower == upper``). Other types:
    ``counts`` are ``(value, count)``, the most frequent first.
    """

    name: str
    data_type: str
    count: int
    average: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    bins: list[tuple[float, float, int]] = field(default_factory=list)
    counts: list[tuple[str, int]] = field(default_factory=list)


def score_distributions(
    conn: Conn,
    project_id: str,
    q: ScoreQuery,
    *,
    max_names: int = 20,
    max_bins: int = 20,
    max_values: int = 20,
) -> list[ScoreDistribution]:
    """The distribution of each score name (and data type) among the scores matching
    ``q``: the ``max_names`` most frequent names, by name. Raises ``FilterError``."""
    where, params, reads_trace = _where(conn, project_id, q)
    source = f"FROM scores s{_JOIN if reads_trace else ''} WHERE {where}"
    groups = conn.all(
        "SELECT s.name AS name, s.data_type AS data_type, COUNT(*) AS n, AVG(s.value) AS avg,"
        f" MIN(s.value) AS lo, MAX(s.value) AS hi {source}"
        " GROUP BY s.name, s.data_type ORDER BY n DESC, name LIMIT ?",
        [*params, max_names],
    )
    out: list[ScoreDistribution] = []
    for g in sorted(groups, key=lambda g: (g["name"], g["data_type"])):
        dist = ScoreDistribution(g["name"], g["data_type"], int(g["n"]))
        one = " AND s.name = ? AND s.data_type = ?"
        mine = [*params, g["name"], g["data_type"]]
        if g["data_type"] == "NUMERIC" and g["lo"] is not None:
            dist.average, dist.minimum, dist.maximum = float(g["avg"]), g["lo"], g["hi"]
            dist.bins = _numeric_bins(conn, source + one, mine, g["lo"], g["hi"], max_bins)
        else:
            rows = conn.all(
                f"SELECT s.string_value AS v, COUNT(*) AS n {source}{one}"
                " GROUP BY s.string_value ORDER BY n DESC, v LIMIT ?",
                [*mine, max_values],
            )
            dist.counts = [("" if r["v"] is None else str(r["v"]), int(r["n"])) for r in rows]
        out.append(dist)
    return out


def _numeric_bins(
    conn: Conn, source: str, params: list[Any], lo: float, hi: float, max_bins: int
) -> list[tuple[float, float, int]]:
    """A histogram of the values ``source`` selects (between ``lo`` and ``hi``)."""
    distinct = conn.all(
        f"SELECT s.value AS v, COUNT(*) AS n {source} GROUP BY s.value ORDER BY v LIMIT ?",
        [*params, max_bins + 1],
    )
    if len(distinct) <= max_bins:  # few values (ratings, 0/1): one bar per value
        return [(float(r["v"]), float(r["v"]), int(r["n"])) for r in distinct]
    width = (hi - lo) / max_bins
    edges = [lo + width * i for i in range(1, max_bins)]
    # Bin i holds lower <= value < upper; portable SQL (no FLOOR in every SQLite).
    case = " ".join(f"WHEN s.value < ? THEN {i}" for i in range(len(edges)))
    rows = conn.all(
        f"SELECT CASE {case} ELSE {max_bins - 1} END AS b, COUNT(*) AS n {source} GROUP BY 1",
        [*edges, *params],
    )
    counts = {int(r["b"]): int(r["n"]) for r in rows}
    bounds = [lo, *edges, hi]
    return [(bounds[i], bounds[i + 1], counts.get(i, 0)) for i in range(max_bins)]
