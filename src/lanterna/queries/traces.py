"""Traces: a page of the trace list with the per-trace aggregates asked for, and one
trace with its observations, scores, latency and cost. The public API
(``/api/public/traces``) and the dashboard's trace pages both read them here.

Per-trace latency and cost are ``store.traces.trace_metrics``; tokens, observation
count and the worst level are :func:`trace_rollups`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..store import scores as score_store
from ..store import traces as trace_store
from ..store.db import Conn
from ..store.filters import Condition
from ..store.traces import TraceQuery

Row = dict[str, Any]

#: Levels from least to most severe; a trace's level is its worst observation's.
LEVELS = ("DEBUG", "DEFAULT", "WARNING", "ERROR")
_SEVERITY = "CASE level WHEN 'ERROR' THEN 3 WHEN 'WARNING' THEN 2 WHEN 'DEFAULT' THEN 1 ELSE 0 END"


@dataclass(slots=True)
class TraceRollup:
    """What a trace's observations add up to."""

    observations: int = 0
    tokens: int = 0
    level: str = "DEFAULT"
    errors: int = 0


@dataclass(slots=True)
class ScoreBrief:
    """A score as the trace list shows it."""

    name: str
    value: Any
    data_type: str
    observation_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def trace_rollups(conn: Conn, project_id: str, trace_ids: Sequence[str]) -> dict[str, TraceRollup]:
    """``trace id -> TraceRollup`` for up to a page of traces, in one grouped query."""
    ids = list(dict.fromkeys(trace_ids))
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    rows = conn.all(
        "SELECT trace_id, COUNT(*) AS n, COALESCE(SUM(usage_total), 0) AS tokens,"
        f" MAX({_SEVERITY}) AS severity,"
        " SUM(CASE WHEN level = 'ERROR' THEN 1 ELSE 0 END) AS errors"
        f" FROM observations WHERE project_id = ? AND trace_id IN ({marks}) GROUP BY trace_id",
        [project_id, *ids],
    )
    return {
        r["trace_id"]: TraceRollup(
            observations=int(r["n"]),
            tokens=int(r["tokens"] or 0),
            level=LEVELS[int(r["severity"] or 0)],
            errors=int(r["errors"] or 0),
        )
        for r in rows
    }


def trace_scores(
    conn: Conn, project_id: str, trace_ids: Sequence[str], *, limit: int = 1000
) -> dict[str, list[ScoreBrief]]:
    """``trace id -> its scores`` (newest first) for a page of traces."""
    ids = list(dict.fromkeys(trace_ids))
    if not ids:
        return {}
    query = score_store.ScoreQuery(filters=[Condition("stringOptions", "traceId", "any of", ids)])
    rows, _total = score_store.list_scores(conn, project_id, query, limit=limit, offset=0)
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


def trace_list(
    conn: Conn,
    project_id: str,
    query: TraceQuery,
    *,
    limit: int,
    offset: int,
    parts: TraceParts = TraceParts(),
) -> tuple[list[TraceItem], int]:
    """A page of the project's traces matching ``query`` and the total count.

    Raises :class:`~lanterna.store.filters.FilterError` for a bad filter or order.
    """
    rows, total = trace_store.list_traces(
        conn, project_id, query, limit=limit, offset=offset, with_io=parts.io
    )
    ids = [r["id"] for r in rows]
    metrics = trace_store.trace_metrics(conn, project_id, ids) if parts.metrics else {}
    obs = trace_store.observation_ids(conn, project_id, ids) if parts.observation_ids else {}
    score_ids = trace_store.score_ids(conn, project_id, ids) if parts.score_ids else {}
    rollups = trace_rollups(conn, project_id, ids) if parts.rollups else {}
    scores = trace_scores(conn, project_id, ids) if parts.scores else {}
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


def trace_detail(
    conn: Conn,
    project_id: str,
    trace_id: str,
    *,
    observations: bool = True,
    scores: bool = True,
    metrics: bool = True,
) -> TraceDetail | None:
    """One trace with what is asked for, or None when the project has no such trace."""
    row = trace_store.get_trace(conn, project_id, trace_id)
    if row is None:
        return None
    out = TraceDetail(row)
    if observations:
        out.observations = trace_store.observations_of(conn, project_id, trace_id)
    if scores:
        out.scores = trace_store.scores_of(conn, project_id, trace_id)
    if metrics:
        found = trace_store.trace_metrics(conn, project_id, [trace_id])
        out.latency, out.cost = found.get(trace_id, (None, None))
    return out
