"""Experiments and experiment items: dataset runs and their run items as Langfuse's
``/api/public/experiments`` and ``/api/public/experiment-items`` list them (cursor
pages, newest activity first, within a time range of the run items)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import event_rows
from .db import Conn


@dataclass
class ExperimentQuery:
    """What the experiment lists filter on: run items created in ``[start, end)``, and
    any of the ids and names given (empty: any)."""

    start: datetime
    end: datetime | None = None
    run_ids: list[str] = field(default_factory=list)
    run_names: list[str] = field(default_factory=list)
    dataset_ids: list[str] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)


def _where(conn: Conn, project_id: str, q: ExperimentQuery) -> tuple[str, list[Any]]:
    d = conn.dialect
    where = "ri.project_id = ? AND ri.created_at >= ?"
    params: list[Any] = [project_id, d.ts(q.start)]
    if q.end is not None:
        where += " AND ri.created_at < ?"
        params.append(d.ts(q.end))
    for column, values in (
        ("r.id", q.run_ids),
        ("r.name", q.run_names),
        ("r.dataset_id", q.dataset_ids),
        ("ri.dataset_item_id", q.item_ids),
    ):
        if values:
            where += f" AND {column} IN ({', '.join('?' for _ in values)})"
            params.extend(values)
    return where, params


_FROM = (
    " FROM dataset_run_items ri JOIN dataset_runs r"
    " ON r.project_id = ri.project_id AND r.id = ri.run_id"
)


def experiments_after(
    conn: Conn,
    project_id: str,
    q: ExperimentQuery,
    *,
    limit: int,
    after: tuple[datetime, str] | None,
) -> tuple[list[dict[str, Any]], bool]:
    """Runs with items in range: ``start_time``/``end_time`` (first and last item),
    ``item_count``; latest activity first; ``after`` is the last row's (end, id)."""
    d = conn.dialect
    where, params = _where(conn, project_id, q)
    params.append(project_id)
    outer = ""
    if after is not None:
        outer = " WHERE a.end_time < ? OR (a.end_time = ? AND r.id < ?)"
        params += [d.ts(after[0]), d.ts(after[0]), after[1]]
    rows = conn.all(
        "SELECT r.id, r.name, r.description, r.metadata, r.dataset_id, a.start_time,"
        " a.end_time, a.item_count FROM (SELECT ri.run_id, MIN(ri.created_at) AS start_time,"
        " MAX(ri.created_at) AS end_time, COUNT(*) AS item_count"
        f"{_FROM} WHERE {where} GROUP BY ri.run_id) a JOIN dataset_runs r"
        f" ON r.project_id = ? AND r.id = a.run_id{outer}"
        " ORDER BY a.end_time DESC, r.id DESC LIMIT ?",
        [*params, limit + 1],
    )
    for row in rows:
        row["metadata"] = d.json_out(row["metadata"])
    return rows[:limit], len(rows) > limit


def experiment_items_after(
    conn: Conn,
    project_id: str,
    q: ExperimentQuery,
    *,
    limit: int,
    after: tuple[datetime, str] | None,
    events: Conn | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """Run items in range with their run, dataset item and trace (read on ``events``,
    the store's ``events_conn``; ``conn`` by default), newest first; ``after`` is the
    last row's (created_at, id)."""
    d = conn.dialect
    where, params = _where(conn, project_id, q)
    if after is not None:
        where += " AND (ri.created_at < ? OR (ri.created_at = ? AND ri.id < ?))"
        params += [d.ts(after[0]), d.ts(after[0]), after[1]]
    rows = conn.all(
        "SELECT ri.id, ri.trace_id, ri.observation_id, ri.created_at, ri.dataset_version,"
        " ri.dataset_item_id, r.id AS run_id, r.name AS run_name, r.description AS run_description,"
        " r.metadata AS run_metadata, r.dataset_id, i.expected_output, i.metadata AS item_metadata"
        f"{_FROM} LEFT JOIN dataset_items i ON i.project_id = ri.project_id"
        f" AND i.id = ri.dataset_item_id WHERE {where} ORDER BY ri.created_at DESC, ri.id DESC"
        " LIMIT ?",
        [*params, limit + 1],
    )
    traces = event_rows.by_id(
        events or conn, "traces", project_id, (r["trace_id"] for r in rows[:limit]), _TRACE
    )
    for row in rows:
        trace = traces.get(row["trace_id"]) or {}
        for column in ("input", "output", "metadata", "environment"):
            row[column] = trace.get(column)
        row["trace_time"] = trace.get("timestamp")
        for column in (
            "run_metadata",
            "expected_output",
            "item_metadata",
            "input",
            "output",
            "metadata",
        ):
            row[column] = d.json_out(row[column])
    return rows[:limit], len(rows) > limit


_TRACE = ("input", "output", "metadata", "environment", "timestamp")


def scores_on(
    conn: Conn, project_id: str, *, trace_ids: Sequence[str] = (), run_ids: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Plain score rows on these traces (their observations included) or these runs,
    newest first (``conn``: where the scores are, the store's ``events_conn``)."""
    return event_rows.scores_on(
        conn, project_id, trace_ids=trace_ids, run_ids=run_ids, newest_first=True
    )
