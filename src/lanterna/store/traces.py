"""Trace queries: by id (with observations and scores), filtered lists, aggregates, deletes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..schema import TRACE
from . import media, paging, rollup_write, row_counts, user_totals
from .db import Conn
from .dialect import Dialect
from .filters import (
    Column,
    Condition,
    FilterError,
    compile_conditions,
    field_columns,
    merge_conditions,
)

# This module is the ``Traces`` resource (``interface.SqlStore``); its per-trace reads of
# a list page live in ``trace_parts``.
from .trace_parts import SEVERITY_SQL as _SEVERITY
from .trace_parts import TraceRollup as TraceRollup
from .trace_parts import in_chunks as _in_chunks
from .trace_parts import observation_ids as observation_ids
from .trace_parts import score_ids as score_ids
from .trace_parts import trace_figures as trace_figures
from .trace_parts import trace_metrics as trace_metrics

# Aggregates over a trace's observations, as correlated subqueries on the trace row
# (each one is an index lookup on observations_trace).
_OBS_OF_T = "FROM observations o WHERE o.project_id = t.project_id AND o.trace_id = t.id"


def _level_count(level: str) -> str:
    return f"(SELECT COUNT(*) {_OBS_OF_T} AND o.level = '{level}')"


_OWN_COLUMNS = field_columns(TRACE)


def trace_columns(d: Dialect) -> dict[str, Column]:
    """The columns a trace list can be filtered on (the ``filter`` whitelist): the field
    table's, plus aggregates over the trace's observations."""
    latency = (
        f"(SELECT {d.epoch_seconds('MAX(COALESCE(o.end_time, o.start_time))')}"
        f" - {d.epoch_seconds('MIN(o.start_time)')} {_OBS_OF_T})"
    )
    return {
        **_OWN_COLUMNS,
        "latency": Column(latency, "number"),
        "totalCost": Column(f"(SELECT COALESCE(SUM(o.total_cost), 0) {_OBS_OF_T})", "number"),
        "level": Column(
            f"(SELECT CASE MAX({_SEVERITY}) WHEN 3 THEN 'ERROR' WHEN 2 THEN 'WARNING'"
            f" WHEN 1 THEN 'DEFAULT' WHEN 0 THEN 'DEBUG' END {_OBS_OF_T})",
            "string",
        ),
        "errorCount": Column(_level_count("ERROR"), "number"),
        "warningCount": Column(_level_count("WARNING"), "number"),
        "defaultCount": Column(_level_count("DEFAULT"), "number"),
        "debugCount": Column(_level_count("DEBUG"), "number"),
    }


#: ``orderBy`` field -> (SQL column, may hold NULL).
ORDER_FIELDS: dict[str, tuple[str, bool]] = {
    "id": ("t.id", False),
    "timestamp": ("t.timestamp", False),
    "name": ("t.name", True),
    "userId": ("t.user_id", True),
    "release": ("t.release", True),
    "version": ("t.version", True),
    "public": ("t.public", False),
    "bookmarked": ("t.bookmarked", False),
    "sessionId": ("t.session_id", True),
}


@dataclass(slots=True)
class TraceQuery:
    """What a trace list asks for: simple parameters, ``filter`` conditions, order."""

    user_id: str | None = None
    name: str | None = None
    session_id: str | None = None
    from_timestamp: datetime | None = None
    to_timestamp: datetime | None = None
    tags: Sequence[str] = ()
    version: str | None = None
    release: str | None = None
    environments: Sequence[str] = ()
    filters: Sequence[Condition] = ()
    order_field: str = "timestamp"
    order_desc: bool = True
    #: Dashboard only: text the trace's input or output contains (any case, any script).
    search: str | None = None
    #: Dashboard only: a model one of the trace's observations used.
    model: str | None = None

    def extra_where(self, d: Dialect, *, narrowed: bool = True) -> tuple[list[str], list[Any]]:
        """SQL for ``search`` and ``model`` (conditions the ``filter`` JSON cannot say);
        ``narrowed``: see :meth:`Dialect.trace_search`."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.search:
            clause, found = d.trace_search(self.search, narrowed=narrowed)
            clauses.append(clause)
            params += found
        if self.model:
            clauses.append(f"EXISTS (SELECT 1 {_OBS_OF_T} AND o.model = ?)")
            params.append(self.model)
        return clauses, params

    def conditions(self) -> list[Condition]:
        """Simple parameters as conditions, merged with (and overridden by) ``filters``."""
        simple: list[Condition] = []
        for column, value in (
            ("userId", self.user_id),
            ("name", self.name),
            ("sessionId", self.session_id),
            ("version", self.version),
            ("release", self.release),
        ):
            if value is not None:
                simple.append(Condition("string", column, "=", value))
        if self.from_timestamp is not None:
            simple.append(Condition("datetime", "timestamp", ">=", self.from_timestamp))
        if self.to_timestamp is not None:
            simple.append(Condition("datetime", "timestamp", "<", self.to_timestamp))
        if self.tags:
            simple.append(Condition("arrayOptions", "tags", "all of", list(self.tags)))
        if self.environments:
            simple.append(
                Condition("stringOptions", "environment", "any of", list(self.environments))
            )
        return merge_conditions(simple, list(self.filters))


def _order_sql(field: str, desc: bool) -> str:
    if field not in ORDER_FIELDS:
        raise FilterError(f"orderBy: unknown field {field!r}; use one of {', '.join(ORDER_FIELDS)}")
    column, nullable = ORDER_FIELDS[field]
    direction = "DESC" if desc else "ASC"
    # NULLs last on both backends (their defaults differ); only said for nullable
    # columns so that the plain index order serves the default sort.
    nulls = " NULLS LAST" if nullable else ""
    return f"{column} {direction}{nulls}, t.id {direction}"


_IO_COLUMNS = "t.input, t.output, t.metadata"
_NO_IO = "NULL AS input, NULL AS output, NULL AS metadata"
_CORE_COLUMNS = (
    "t.project_id, t.id, t.timestamp, t.name, t.user_id, t.session_id, t.release, t.version,"
    " t.environment, t.tags, t.public, t.bookmarked, t.created_at, t.updated_at"
)


def list_traces(
    conn: Conn,
    project_id: str,
    query: TraceQuery,
    *,
    limit: int,
    offset: int,
    with_io: bool = True,
    count_limit: int | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the project's traces matching ``query``, and the total count.

    With ``count_limit`` the count stops past ``max(count_limit, offset + limit)``: a
    total above that means "more than that" (counting every match of a broad filter
    or search reads every matching trace; the page itself stops at its last row).

    Raises :class:`FilterError` for an unknown column, operator or order field.
    """
    m = _matching(conn, project_id, query)
    where, params = m.where, m.params
    source, count_where, count_params = m.source, m.count_where, m.count_params
    order = m.order
    cap = None if count_limit is None else max(count_limit, offset + limit) + 1
    if m.unfiltered:  # the count kept in the write path (row_counts, or the rollups)
        total = row_counts.count(conn, project_id, "trace")
        total = total if cap is None else min(total, cap)
    else:
        if cap is None:
            count_sql = f"SELECT COUNT(*) FROM {source} WHERE {count_where}"
        else:
            count_sql = (
                f"SELECT COUNT(*) FROM (SELECT 1 FROM {source} WHERE {count_where} LIMIT ?) AS m"
            )
            count_params = [*count_params, cap]
        total = int(conn.scalar(count_sql, count_params) or 0)
    if total <= offset:
        return [], total
    source = "traces t"
    if m.in_time_order:
        # The time index gives the order. (SQLite's planner took traces_created, which
        # 0028 added after the benchmark's ANALYZE and so without statistics, and
        # sorted every trace: 1-1.7 s instead of 0.3 ms at 600,000 traces, and a
        # broad search checked every trace's text before sorting.)
        source = conn.dialect.by_index(source, "traces_time")
    rows = paging.page(
        conn,
        source,
        columns=f"{_CORE_COLUMNS}, {_IO_COLUMNS if with_io else _NO_IO}",
        where=where,
        params=params,
        order=order,
        limit=limit,
        offset=offset,
        key="t.timestamp" if query.order_field == "timestamp" else None,
        desc=query.order_desc,
    )
    return rows, total


@dataclass(frozen=True, slots=True)
class _Matching:
    """How to read the traces matching a query: ``where``/``params`` on ``traces t`` for
    the page (in ``order``), and ``source``/``count_where``/``count_params`` to walk
    every match (the count and the totals)."""

    where: str
    params: list[Any]
    order: str
    source: str
    count_where: str
    count_params: list[Any]
    #: True when the query selects every trace of the project (no filter, no search).
    unfiltered: bool = False
    #: True when the page is best read in the time index's order: time order, no
    #: filter clause, and no search narrowed to the index's few candidates.
    in_time_order: bool = False


def _matching(conn: Conn, project_id: str, query: TraceQuery) -> _Matching:
    compiled = compile_conditions(
        query.conditions(), trace_columns(conn.dialect), conn.dialect, resource="traces"
    )
    order = _order_sql(query.order_field, query.order_desc)
    d = conn.dialect
    base = f"t.project_id = ? AND {compiled.where()}"
    base_params = [project_id, *compiled.params]
    user = _one_user(query)
    order_by_time = query.order_field == "timestamp"
    if user is not None and _few_of_user(conn, project_id, user):
        # ClickHouse: the user's traces found by key in the copy ordered by user, so
        # that the traces are read by their own key (the condition holds on the
        # merged row all the same)
        base += (
            f" AND (t.timestamp, t.id) IN (SELECT timestamp, id FROM {d.user_traces}"
            " WHERE project_id = ? AND user_id = ?)"
        )
        base_params += [project_id, user]
    hits = d.search_hits(query.search) if query.search else None
    # A search the index narrows to few traces reads those and sorts them; a broad one
    # reads the traces in list order until the page is full. Either way the count
    # walks the index's candidates (SQLite: in index order, stopping at the count
    # limit; PostgreSQL: its bitmap of candidates, checked until the limit).
    if hits is not None:
        few = _few_hits(conn, hits)
    elif query.search:
        few = not _broad(conn, query.search, base, base_params, order)
    else:
        few = True

    def where_of(narrowed: bool) -> tuple[str, list[Any]]:
        extra, extra_params = query.extra_where(d, narrowed=narrowed)
        return " AND ".join([base, *extra]), [*base_params, *extra_params]

    where, params = where_of(few)
    source = "traces t"
    count_where, count_params = where_of(True)
    if hits is not None and not few:
        source = f"({hits[0]}) AS h CROSS JOIN traces t ON t.rowid = h.rowid"
        count_where, count_params = where_of(False)
        count_params = [*hits[1], *count_params]
    in_copy = not (query.search or query.model) and all(
        c.column in _IN_USER_ORDER and c.key is None for c in query.conditions()
    )
    if user is not None and d.user_traces != "traces" and in_copy and order_by_time:
        # ClickHouse, the traces of one user in time order and no condition but on the
        # columns the copy ordered by user holds (name, session, time): counted (and
        # the totals row's chosen in order) there (a busy user's 35,000 traces at 10 M
        # observations: 10 ms, against 180 for their merged rows; with a name and 30
        # days, against 600)
        source = f"{d.user_traces} t"
        count_where = f"t.project_id = ? AND {compiled.where()}"
        count_params = [project_id, *compiled.params]
    unfiltered = not compiled.clauses and not query.search and not query.model
    in_order = not compiled.clauses and query.order_field == "timestamp"
    in_order = in_order and not (hits is not None and few)
    return _Matching(where, params, order, source, count_where, count_params, unfiltered, in_order)


#: Trace list filters on what ClickHouse's copy of the traces ordered by user holds
#: (``Dialect.user_traces``: user, time, id, name, session).
_IN_USER_ORDER = frozenset({"userId", "name", "sessionId", "timestamp"})

#: A user with at most this many traces has them found by key on ClickHouse
#: (:func:`_few_of_user`).
FEW_USER_TRACES = 2000


def _few_of_user(conn: Conn, project_id: str, user: str) -> bool:
    """Whether the traces of ``user`` are best found by key in the copy of the traces
    ordered by user (``Dialect.user_traces``, ClickHouse): when they are few. At 10 M
    observations the merged rows of a user's 40 traces with a name filter take 36 ms
    (count) and 84 ms (a page) found that way against 177 and 518 read whole; 400
    traces 122 and 144 against 198 and 174; but 35,000 traces (whose rows cover most of
    the table) 212 and 67 against 178 and 47."""
    if conn.dialect.user_traces == "traces":
        return False
    traces = conn.scalar(
        "SELECT traces FROM user_totals WHERE project_id = ? AND user_id = ?", [project_id, user]
    )
    return int(traces or 0) <= FEW_USER_TRACES


def _one_user(query: TraceQuery) -> str | None:
    """The user id a query's traces must have, when it names one."""
    for c in query.conditions():
        if c.column == "userId" and c.operator == "=" and isinstance(c.value, str):
            return c.value
    return None


@dataclass(slots=True)
class TraceTotals:
    """What a set of traces adds up to (the trace list's totals row).

    ``traces``: how many were summed (at most the limit asked for; ``more``: and more
    match); ``cost`` and ``tokens``: sums over their observations; ``latency``: the
    average latency of those with observations (None when none has); ``scores``: the
    average of each numeric or boolean score name over their scores.
    """

    traces: int = 0
    cost: float = 0.0
    tokens: int = 0
    latency: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    more: bool = False


def trace_totals(
    conn: Conn, project_id: str, query: TraceQuery, *, limit: int, scores: bool = True
) -> TraceTotals:
    """Totals over the traces matching ``query``: all of them when there are at most
    ``limit``, else the first ``limit`` of them in the list's order (the list counts
    up to a limit the same way), and whether more match. ``scores=False`` leaves the
    score averages out (:func:`trace_score_averages` reads them, on a connection of
    its own beside this one).

    Raises :class:`FilterError` like :func:`list_traces`.
    """
    # The matching traces (bounded) with their narrow trace_totals rows (observations,
    # cost, tokens and latency, kept in the write path: no observation is read), summed
    # here; then their scores by name, a few hundred traces per statement. (Joined to
    # the scores in one statement, SQLite took 200 ms for 10,000 traces at 10 M
    # observations; by lists of ids, 35 ms.)
    # One more than the limit: whether more match (the list's count stops there too).
    chosen, params = _chosen(conn, project_id, query, limit + 1, figures=True)
    out = TraceTotals()
    ids: list[str] = []
    observed = 0
    latency = 0.0
    # Rows as tuples, in _CHOSEN_COLUMNS' order (10,000 dicts cost PostgreSQL's reads
    # about 10 ms).
    for trace_id, observations, cost, tokens, trace_latency in conn.tuples(chosen, params):
        if len(ids) == limit:
            out.more = True
            break
        ids.append(trace_id)
        out.cost += float(cost or 0.0)
        out.tokens += int(tokens or 0)
        if observations:
            observed += 1
            latency += float(trace_latency or 0.0)
    out.traces = len(ids)
    out.latency = latency / observed if observed else None
    if scores:
        out.scores = score_averages(conn, project_id, ids)
    return out


def trace_score_averages(
    conn: Conn, project_id: str, query: TraceQuery, *, limit: int
) -> dict[str, float]:
    """The score averages of :func:`trace_totals` (the same first ``limit`` matching
    traces), read apart: the matches' ids alone (no ``trace_totals`` row where the
    filters do not need one), then their scores."""
    chosen, params = _chosen(conn, project_id, query, limit, figures=False)
    ids = [r[0] for r in conn.tuples(chosen, params)]
    return score_averages(conn, project_id, ids)


def _chosen(
    conn: Conn, project_id: str, query: TraceQuery, limit: int, *, figures: bool
) -> tuple[str, list[Any]]:
    """The first ``limit`` matching traces in the list's order: their ids, with their
    ``trace_totals`` figures when ``figures``."""
    return _totals_alone(conn, project_id, query, limit, figures) or _totals_joined(
        conn, project_id, query, limit, figures
    )


def score_averages(conn: Conn, project_id: str, trace_ids: Sequence[str]) -> dict[str, float]:
    """The average of each numeric or boolean score name over these traces' scores
    (sorted by name), read :data:`_SCORE_CHUNK` traces per statement (PostgreSQL:
    :data:`_SCORE_ARRAY_CHUNK`, bound as one array)."""
    sums: dict[str, list[float]] = {}
    source = conn.dialect.by_index("scores s", "scores_trace")
    # PostgreSQL plans a list of ids bound as one array parameter faster than as many
    # parameters: 10,000 traces' scores at 10 M observations, 135 -> 95 ms.
    array = conn.dialect.name == "postgresql"
    chunk = _SCORE_ARRAY_CHUNK if array else _SCORE_CHUNK
    if conn.dialect.few_statements:  # a statement costs about as much for 10,000 ids
        chunk = max(len(trace_ids), 1)
    for i in range(0, len(trace_ids), chunk):
        part = list(trace_ids[i : i + chunk])
        ids, params = (
            ("= ANY(?)", [part]) if array else (f"IN ({', '.join('?' * len(part))})", part)
        )
        _score_sums(conn, source, project_id, f"s.trace_id {ids}", params, sums)
    return {name: total / n for name, (n, total) in sorted(sums.items()) if n}


def score_averages_where(
    conn: Conn, project_id: str, traces_in: str, params: Sequence[Any]
) -> dict[str, float]:
    """:func:`score_averages` of the traces whose ids ``traces_in`` selects (a
    subquery, where a statement's long list of ids costs more to parse than the
    subquery to run again: ClickHouse)."""
    sums: dict[str, list[float]] = {}
    _score_sums(conn, "scores s", project_id, f"s.trace_id IN ({traces_in})", params, sums)
    return {name: total / n for name, (n, total) in sorted(sums.items()) if n}


def _score_sums(
    conn: Conn,
    source: str,
    project_id: str,
    which: str,
    params: Sequence[Any],
    sums: dict[str, list[float]],
) -> None:
    for r in conn.all(
        f"SELECT s.name AS name, COUNT(s.value) AS n, SUM(s.value) AS total FROM {source}"
        f" WHERE s.project_id = ? AND {which}"
        " AND s.data_type IN ('NUMERIC', 'BOOLEAN') AND s.value IS NOT NULL"
        " GROUP BY s.name",
        [project_id, *params],
    ):
        have = sums.setdefault(r["name"], [0, 0.0])
        have[0] += int(r["n"] or 0)
        have[1] += float(r["total"] or 0.0)


#: Traces whose scores :func:`score_averages` reads per statement (SQLite).
_SCORE_CHUNK = 500
#: ... on PostgreSQL, as one array parameter.
_SCORE_ARRAY_CHUNK = 2000

#: Trace list filters that ``trace_totals`` holds as ``traces`` does (API name -> its
#: column there): a totals row over these alone reads ``trace_totals`` only.
_TOTALS_FILTERS = {
    "timestamp": "timestamp",
    "environment": "environment",
    "name": "name",
    "userId": "user_id",
    "sessionId": "session_id",
}
_CHOSEN_COLUMNS = "tt.observations, tt.cost, tt.tokens, tt.latency"


def _figures(figures: bool) -> str:
    """The ``trace_totals`` columns after a chosen trace's id, when asked for."""
    return f", {_CHOSEN_COLUMNS}" if figures else ""


def _totals_alone(
    conn: Conn, project_id: str, query: TraceQuery, limit: int, figures: bool
) -> tuple[str, list[Any]] | None:
    """The first ``limit`` matching traces with their totals from ``trace_totals`` alone (its
    time index, in the list's time order: no trace row and no key lookup per trace),
    when the query filters only on what it holds and orders by time; else None.

    ``trace_totals`` holds one row per stored trace with its timestamp, environment,
    name, user and session (see :mod:`lanterna.store.rollups`), so the rows and
    their order are the list's."""
    if query.search or query.model or query.order_field != "timestamp":
        return None
    conditions = query.conditions()
    tagged = _totals_by_tag(conn, project_id, conditions, query.order_desc, limit, figures)
    if tagged is not None:
        return tagged
    if any(c.column not in _TOTALS_FILTERS for c in conditions):
        return None
    columns = {
        name: Column(f"tt.{column}", _OWN_COLUMNS[name].kind)
        for name, column in _TOTALS_FILTERS.items()
    }
    direction = "DESC" if query.order_desc else "ASC"
    keyed = _totals_by_key(conn, project_id, conditions, columns, direction, limit, figures)
    if keyed is not None:
        return keyed
    compiled = compile_conditions(conditions, columns, conn.dialect, resource="traces")
    source = conn.dialect.by_index("trace_totals tt", "trace_totals_time")
    return (
        f"SELECT tt.trace_id AS id{_figures(figures)} FROM {source}"
        f" WHERE tt.project_id = ? AND {compiled.where()}"
        f" ORDER BY tt.timestamp {direction}, tt.trace_id {direction} LIMIT ?",
        [project_id, *compiled.params, limit],
    )


#: A filter column equal to one value -> the traces index leading with it.
_KEYED = (("sessionId", "session_id", "traces_session"), ("userId", "user_id", "traces_user"))


def _totals_by_key(
    conn: Conn,
    project_id: str,
    conditions: list[Condition],
    columns: dict[str, Column],
    direction: str,
    limit: int,
    figures: bool,
) -> tuple[str, list[Any]] | None:
    """:func:`_totals_alone` for a query naming one session or one user: that one's
    traces in time order from the traces index leading with it (a user's share of the
    range, not every trace of it), each match with its ``trace_totals`` row by key."""
    found = next(
        (
            key
            for key in _KEYED
            if any(
                c.column == key[0] and c.operator == "=" and c.type == "string" for c in conditions
            )
        ),
        None,
    )
    if found is None:
        return None
    index = found[2]
    # Every filter on the trace's own columns: ``traces_user`` holds the name and the
    # environment too (0048), so only the matches are joined to ``trace_totals``.
    keyed = {n: Column(f"t.{c}", columns[n].kind) for n, c in _TOTALS_FILTERS.items()}
    compiled = compile_conditions(conditions, keyed, conn.dialect, resource="traces")
    source = conn.dialect.by_index("traces t", index)
    if figures:
        source += " JOIN trace_totals tt ON tt.project_id = t.project_id AND tt.trace_id = t.id"
    return (
        f"SELECT t.id AS id{_figures(figures)} FROM {source}"
        f" WHERE t.project_id = ? AND {compiled.where()}"
        f" ORDER BY t.timestamp {direction}, t.id {direction} LIMIT ?",
        [project_id, *compiled.params, limit],
    )


def _tag_driver(conditions: list[Condition]) -> tuple[list[str], list[Condition]] | None:
    """The tags every match must have and the other conditions, when the conditions
    are one tag condition (all of some tags, or any of one) and ones ``trace_totals``
    holds; else None."""
    tagged = [c for c in conditions if c.column == "tags"]
    if len(tagged) != 1 or tagged[0].type != "arrayOptions":
        return None
    cond = tagged[0]
    values = cond.value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        return None
    if not (cond.operator == "all of" or (cond.operator == "any of" and len(values) == 1)):
        return None
    rest = [c for c in conditions if c is not cond]
    if any(c.column not in _TOTALS_FILTERS for c in rest):
        return None
    return sorted(set(values)), rest


def _totals_by_tag(
    conn: Conn,
    project_id: str,
    conditions: list[Condition],
    desc: bool,
    limit: int,
    figures: bool,
) -> tuple[str, list[Any]] | None:
    """:func:`_totals_alone` for a query naming tags a trace must have: the first tag's
    traces in time order from ``trace_tags`` (migration 0049: the tag's stretch of the
    range, not every trace of it), the other tags by key there, each match with its
    ``trace_totals`` row by key (which holds the other filters' columns)."""
    found = _tag_driver(conditions)
    if found is None:
        return None
    (first, *others), rest = found
    columns = {
        name: Column(
            "g.timestamp" if name == "timestamp" else f"tt.{column}", _OWN_COLUMNS[name].kind
        )
        for name, column in _TOTALS_FILTERS.items()
    }
    compiled = compile_conditions(rest, columns, conn.dialect, resource="traces")
    also = "".join(
        " AND EXISTS (SELECT 1 FROM trace_tags g2 WHERE g2.project_id = g.project_id"
        " AND g2.tag = ? AND g2.timestamp = g.timestamp AND g2.trace_id = g.trace_id)"
        for _ in others
    )
    direction = "DESC" if desc else "ASC"
    # CROSS JOIN: SQLite keeps the tag's rows as the outer loop (PostgreSQL plans freely).
    # The ids alone need no trace_totals row unless a filter reads one of its columns.
    source = "trace_tags g"
    joined = ""
    if figures or any(c.column != "timestamp" for c in rest):
        source += " CROSS JOIN trace_totals tt"
        joined = " AND tt.project_id = g.project_id AND tt.trace_id = g.trace_id"
    return (
        f"SELECT g.trace_id AS id{_figures(figures)} FROM {source}"
        f" WHERE g.project_id = ? AND g.tag = ?{joined} AND {compiled.where()}{also}"
        f" ORDER BY g.timestamp {direction}, g.trace_id {direction} LIMIT ?",
        [project_id, first, *compiled.params, *others, limit],
    )


def _totals_joined(
    conn: Conn, project_id: str, query: TraceQuery, limit: int, figures: bool
) -> tuple[str, list[Any]]:
    """The first ``limit`` matching traces in the list's order, then (``figures``)
    each one's ``trace_totals`` row by key."""
    m = _matching(conn, project_id, query)
    source, where, params = m.source, m.count_where, m.count_params
    if m.in_time_order:  # as the page reads them: in the time index's order
        source = conn.dialect.by_index("traces t", "traces_time")
        where, params = m.where, m.params
    ids = f"SELECT t.id AS id FROM {source} WHERE {where} ORDER BY {m.order} LIMIT ?"
    if not figures:
        return ids, [*params, limit]
    return (
        f"SELECT ids.id AS id, {_CHOSEN_COLUMNS} FROM ({ids}) ids"
        " LEFT JOIN trace_totals tt ON tt.project_id = ? AND tt.trace_id = ids.id",
        [*params, limit, project_id],
    )


#: A search whose index candidates reach this many reads the traces in list order.
SEARCH_SORT_LIMIT = 5000


def _few_hits(conn: Conn, hits: tuple[str, list[Any]]) -> bool:
    sql, params = hits
    found = conn.scalar(f"SELECT COUNT(*) FROM ({sql} LIMIT ?) AS h", [*params, SEARCH_SORT_LIMIT])
    return int(found or 0) < SEARCH_SORT_LIMIT


def _broad(conn: Conn, text: str, where: str, params: list[Any], order: str) -> bool:
    """Whether ``text`` is in at least 1 % of the latest :data:`SEARCH_SAMPLE` traces
    of the list (so reading the list in order fills a page sooner than checking every
    candidate of the index would)."""
    exact, exact_params = conn.dialect.trace_search(text, narrowed=False)
    found = conn.scalar(
        f"SELECT COUNT(*) FROM (SELECT t.input, t.output FROM traces t WHERE {where}"
        f" ORDER BY {order} LIMIT ?) AS t WHERE {exact}",
        [*params, SEARCH_SAMPLE, *exact_params],
    )
    return int(found or 0) * 100 >= SEARCH_SAMPLE


#: How many of the latest traces :func:`_broad` checks.
SEARCH_SAMPLE = 500


def get_trace(conn: Conn, project_id: str, trace_id: str) -> dict[str, Any] | None:
    """One trace row, or None."""
    where, params = conn.dialect.event_rows(
        "traces", "timestamp", "{a}project_id = ? AND {a}id = ?", [project_id, trace_id]
    )
    return conn.one(f"SELECT * FROM traces WHERE {where}", params)


def observations_of(conn: Conn, project_id: str, trace_id: str) -> list[dict[str, Any]]:
    """All observations of a trace, in start order (through the trace index: without
    statistics SQLite walks the time index for the order, every row of the project)."""
    source = conn.dialect.by_index("observations", "observations_trace")
    where, params = conn.dialect.event_rows(
        "observations",
        "start_time",
        "{a}project_id = ? AND {a}trace_id = ?",
        [project_id, trace_id],
    )
    return conn.all(f"SELECT * FROM {source} WHERE {where} ORDER BY start_time, id", params)


def scores_of(conn: Conn, project_id: str, trace_id: str) -> list[dict[str, Any]]:
    """All scores of a trace (its own and its observations'), oldest first (through
    the trace index, as :func:`observations_of`)."""
    source = conn.dialect.by_index("scores", "scores_trace")
    where, params = conn.dialect.event_rows(
        "scores", "timestamp", "{a}project_id = ? AND {a}trace_id = ?", [project_id, trace_id]
    )
    return conn.all(f"SELECT * FROM {source} WHERE {where} ORDER BY timestamp, id", params)


def delete_traces(conn: Conn, project_id: str, trace_ids: Sequence[str]) -> int:
    """Delete traces with their observations and scores; return how many traces went.

    Runs in the writer. Every statement is scoped to ``project_id``: an id of another
    project's trace matches nothing.
    """

    def delete() -> int:
        deleted = observations = 0
        for chunk in _in_chunks(trace_ids):
            marks = ", ".join("?" * len(chunk))
            params = [project_id, *chunk]
            rollup_write.remove_scores(conn, project_id, "trace_id", chunk)
            conn.run(f"DELETE FROM scores WHERE project_id = ? AND trace_id IN ({marks})", params)
            observations += conn.run(
                f"DELETE FROM observations WHERE project_id = ? AND trace_id IN ({marks})", params
            )
            deleted += conn.run(
                f"DELETE FROM traces WHERE project_id = ? AND id IN ({marks})", params
            )
        row_counts.add(conn, project_id, {"trace": -deleted, "observation": -observations})
        # Media the traces referred to go with the last trace that refers to them.
        media.release_traces(conn, project_id, trace_ids)
        return deleted

    # The hourly rollups and the user totals lose what these traces contributed.
    return user_totals.maintained(conn, project_id, set(trace_ids), delete)
