"""Traces: a page of the trace list with the per-trace aggregates asked for, and one
trace with its observations, scores, latency and cost. The public API
(``/api/public/traces``) and the dashboard's trace pages both read them here.

Per-trace latency, cost, tokens, observation count and the worst level are the
store's ``traces.trace_figures``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..store.db import Conn
from ..store.dialect import Dialect
from ..store.interface import Store, TraceQuery, TraceRollup
from ..timeutil import seconds_between

Row = dict[str, Any]


@dataclass(slots=True)
class ScoreBrief:
    """A score as the trace list shows it."""

    name: str
    value: Any
    data_type: str
    observation_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def trace_scores(
    store: Store, conn: Conn, project_id: str, trace_ids: Sequence[str], *, limit: int = 1000
) -> dict[str, list[ScoreBrief]]:
    """``trace id -> its scores`` (newest first) for a page of traces."""
    ids = list(dict.fromkeys(trace_ids))
    if not ids:
        return {}
    rows = store.scores.scores_of_traces(conn, project_id, ids, limit=limit)
    out: dict[str, list[ScoreBrief]] = {}
    for r in rows:
        value = r["value"] if r["data_type"] in ("NUMERIC", "BOOLEAN") else r["string_value"]
        out.setdefault(r["trace_id"], []).append(
            ScoreBrief(r["name"], value, r["data_type"], r["observation_id"])
        )
    return out


# --- the list -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TraceParts:
    """What a list page reads besides the traces (one grouped query each, per page)."""

    io: bool = True  # input, output and metadata of the traces
    metrics: bool = True  # latency and cost
    observation_ids: bool = False
    score_ids: bool = False
    rollups: bool = False  # tokens, observation count, worst level, errors
    scores: bool = False  # the scores as the list shows them


@dataclass(slots=True)
class TraceItem:
    """A trace of a list page with what its :class:`TraceParts` asked for.

    ``latency``/``cost`` are None when not asked for or when the trace has no
    observations.
    """

    row: Row
    latency: float | None = None
    cost: float | None = None
    observation_ids: list[str] = field(default_factory=list)
    score_ids: list[str] = field(default_factory=list)
    rollup: TraceRollup | None = None
    scores: list[ScoreBrief] = field(default_factory=list)


def times_of(conn: Conn, rows: Sequence[Row]) -> tuple[datetime, datetime] | None:
    """The first and last time of these trace rows (None for none)."""
    stamps = [conn.dialect.ts_parse(r["timestamp"]) for r in rows]
    known = [s for s in stamps if s is not None]
    return (min(known), max(known)) if known else None


def trace_list(
    store: Store,
    conn: Conn,
    project_id: str,
    query: TraceQuery,
    *,
    limit: int,
    offset: int,
    parts: TraceParts = TraceParts(),
    count_limit: int | None = None,
) -> tuple[list[TraceItem], int]:
    """A page of the project's traces matching ``query`` and the total count (which
    may stop early with ``count_limit``, see :func:`~lanterna.store.traces.list_traces`).

    Raises :class:`~lanterna.store.filters.FilterError` for a bad filter or order.
    """
    traces = store.traces
    rows, total = traces.list_traces(
        conn,
        project_id,
        query,
        limit=limit,
        offset=offset,
        with_io=parts.io,
        count_limit=count_limit,
    )
    ids = [r["id"] for r in rows]
    metrics: dict[str, tuple[float, float]] = {}
    rollups: dict[str, TraceRollup] = {}
    around = times_of(conn, rows)  # a store may key these reads by the traces' time
    if parts.metrics or parts.rollups:  # both from one read
        metrics, rollups = traces.trace_figures(conn, project_id, ids, around=around)
        metrics = metrics if parts.metrics else {}
        rollups = rollups if parts.rollups else {}
    obs = (
        traces.observation_ids(conn, project_id, ids, around=around)
        if parts.observation_ids
        else {}
    )
    score_ids = traces.score_ids(conn, project_id, ids) if parts.score_ids else {}
    scores = trace_scores(store, conn, project_id, ids) if parts.scores else {}
    items = []
    for row in rows:
        tid = row["id"]
        latency, cost = metrics.get(tid, (None, None))
        items.append(
            TraceItem(
                row,
                latency,
                cost,
                obs.get(tid, []),
                score_ids.get(tid, []),
                rollups.get(tid),
                scores.get(tid, []),
            )
        )
    return items, total


# --- one trace ------------------------------------------------------------------------


@dataclass(slots=True)
class TraceDetail:
    """A trace row with its observation rows (start order), score rows (oldest first),
    latency and cost (None without observations, or when not asked for)."""

    row: Row
    observations: list[Row] = field(default_factory=list)
    scores: list[Row] = field(default_factory=list)
    latency: float | None = None
    cost: float | None = None


def figures_of(dialect: Dialect, observations: Sequence[Row]) -> tuple[float, float]:
    """``(latency seconds, total cost)`` of a trace from its observation rows (at least
    one), as :func:`~lanterna.store.traces.trace_figures` reads them, for a page that
    has the rows already: one statement less, tens of milliseconds on ClickHouse. The
    cost is summed exactly (``math.fsum``)."""
    parse = dialect.ts_parse
    first: datetime | None = None
    last: datetime | None = None
    for o in observations:
        start = parse(o["start_time"])
        end = parse(o["end_time"]) or start
        if start is not None and (first is None or start < first):
            first = start
        if end is not None and (last is None or end > last):
            last = end
    cost = math.fsum(o["total_cost"] for o in observations if o["total_cost"] is not None)
    return seconds_between(first, last) or 0.0, cost


def trace_detail(
    store: Store,
    conn: Conn,
    project_id: str,
    trace_id: str,
    *,
    observations: bool = True,
    scores: bool = True,
    metrics: bool = True,
) -> TraceDetail | None:
    """One trace with what is asked for, or None when the project has no such trace."""
    traces = store.traces
    row = traces.get_trace(conn, project_id, trace_id)
    if row is None:
        return None
    out = TraceDetail(row)
    if observations:
        out.observations = traces.observations_of(conn, project_id, trace_id)
    if scores:
        out.scores = traces.scores_of(conn, project_id, trace_id)
    if metrics and observations:
        # From the rows just read: one statement less.
        if out.observations:
            out.latency, out.cost = figures_of(conn.dialect, out.observations)
    elif metrics:
        found = traces.trace_metrics(conn, project_id, [trace_id])
        out.latency, out.cost = found.get(trace_id, (None, None))
    return out
