"""What a trace list's page reads of each of its traces (the ``Traces`` resource's
per-trace reads, :mod:`.traces` holds the rest): each trace's figures from its
observations (latency, cost, tokens, worst level, errors) and its observation and score
ids, in one grouped statement per chunk of traces."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ..schema import LEVELS
from ..timeutil import seconds_between
from .db import Conn

#: Trace ids bound in one statement.
CHUNK = 500
#: An observation's level as its rank in :data:`~lanterna.schema.LEVELS` (SQL on ``o``).
SEVERITY_SQL = (
    "CASE o.level WHEN 'ERROR' THEN 3 WHEN 'WARNING' THEN 2 WHEN 'DEFAULT' THEN 1 ELSE 0 END"
)


def in_chunks(ids: Sequence[str]) -> list[list[str]]:
    """``ids`` without repeats, in statements' worth of :data:`CHUNK`."""
    unique = list(dict.fromkeys(ids))
    return [unique[i : i + CHUNK] for i in range(0, len(unique), CHUNK)]


def trace_metrics(
    conn: Conn, project_id: str, trace_ids: Sequence[str]
) -> dict[str, tuple[float, float]]:
    """``trace id -> (latency seconds, total cost)`` (:func:`trace_figures`)."""
    return trace_figures(conn, project_id, trace_ids)[0]


@dataclass(slots=True)
class TraceRollup:
    """What a trace's observations add up to."""

    observations: int = 0
    tokens: int = 0
    level: str = "DEFAULT"  # the worst observation's (``schema.LEVELS`` order)
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


def trace_figures(
    conn: Conn,
    project_id: str,
    trace_ids: Sequence[str],
    *,
    around: tuple[datetime, datetime] | None = None,
) -> tuple[dict[str, tuple[float, float]], dict[str, TraceRollup]]:
    """Per trace, ``(latency seconds, total cost)`` and its :class:`TraceRollup`, in one
    grouped query per chunk of traces (a list page shows both).

    Latency runs from the first observation's start to the last one's end; traces
    without observations are absent from both (their latency and cost are 0).
    ``around``, the traces' first and last time when the caller has them, serves the
    stores that keep these figures by time (ClickHouse's); this query needs none.
    """
    d = conn.dialect
    metrics: dict[str, tuple[float, float]] = {}
    rollups: dict[str, TraceRollup] = {}
    for chunk in in_chunks(trace_ids):
        marks = ", ".join("?" * len(chunk))
        where, params = d.event_rows(
            "observations",
            "start_time",
            f"{{a}}project_id = ? AND {{a}}trace_id IN ({marks})",
            [project_id, *chunk],
            alias="o.",
        )
        rows = conn.all(
            "SELECT o.trace_id AS trace_id, MIN(o.start_time) AS first_start,"
            " MAX(COALESCE(o.end_time, o.start_time)) AS last_end, SUM(o.total_cost) AS cost,"
            " COUNT(*) AS n, COALESCE(SUM(o.usage_total), 0) AS tokens,"
            " COALESCE(SUM(o.usage_input), 0) AS input, COALESCE(SUM(o.usage_output), 0) AS output,"
            f" MAX({SEVERITY_SQL}) AS severity,"
            " SUM(CASE WHEN o.level = 'ERROR' THEN 1 ELSE 0 END) AS errors"
            f" FROM observations o WHERE {where} GROUP BY o.trace_id",
            params,
        )
        for r in rows:
            latency = seconds_between(d.ts_parse(r["first_start"]), d.ts_parse(r["last_end"]))
            metrics[r["trace_id"]] = (latency or 0.0, float(r["cost"] or 0.0))
            rollups[r["trace_id"]] = TraceRollup(
                observations=int(r["n"]),
                tokens=int(r["tokens"] or 0),
                level=LEVELS[int(r["severity"] or 0)],
                errors=int(r["errors"] or 0),
                input_tokens=int(r["input"] or 0),
                output_tokens=int(r["output"] or 0),
            )
    return metrics, rollups


def _ids_by_trace(
    conn: Conn, table: str, project_id: str, trace_ids: Sequence[str], order: str
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    # Through the trace index: SQLite's planner may otherwise walk the time index for
    # the order (every row of the project) instead of sorting a page's few rows.
    source = conn.dialect.by_index(table, f"{table}_trace")
    for chunk in in_chunks(trace_ids):
        marks = ", ".join("?" * len(chunk))
        where, params = conn.dialect.event_rows(
            table,
            order,
            f"{{a}}project_id = ? AND {{a}}trace_id IN ({marks})",
            [project_id, *chunk],
        )
        rows = conn.all(
            f"SELECT trace_id, id FROM {source} WHERE {where} ORDER BY {order}, id", params
        )
        for r in rows:
            out[r["trace_id"]].append(r["id"])
    return out


def observation_ids(
    conn: Conn,
    project_id: str,
    trace_ids: Sequence[str],
    *,
    around: tuple[datetime, datetime] | None = None,
) -> dict[str, list[str]]:
    """``trace id -> its observation ids`` (start order), one query per chunk of traces.

    ``around``, the traces' first and last time when the caller has them, serves the
    stores that keep each trace's observation starts (ClickHouse's); the trace index
    needs none."""
    return _ids_by_trace(conn, "observations", project_id, trace_ids, "start_time")


def score_ids(conn: Conn, project_id: str, trace_ids: Sequence[str]) -> dict[str, list[str]]:
    """``trace id -> its score ids`` (oldest first), one query per chunk of traces."""
    return _ids_by_trace(conn, "scores", project_id, trace_ids, "timestamp")
