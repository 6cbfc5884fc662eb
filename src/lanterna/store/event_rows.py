"""Event rows (traces, observations, scores) looked up by id for rows of the metadata
tables (dataset run items, experiment items): read on the store's ``events_conn``, so
the same code serves events in the same database and in ClickHouse, where a join across
the two databases is impossible."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .db import Conn

Row = dict[str, Any]
_CHUNK = 500


def _chunks(ids: Iterable[str | None]) -> Iterable[list[str]]:
    unique = sorted({i for i in ids if i})
    for start in range(0, len(unique), _CHUNK):
        yield unique[start : start + _CHUNK]


def by_id(
    conn: Conn, table: str, project_id: str, ids: Iterable[str | None], columns: Sequence[str]
) -> dict[str, Row]:
    """``id -> row`` (``columns``) of the project's ``traces`` or ``observations`` with
    these ids (None and missing ids left out)."""
    found: dict[str, Row] = {}
    for chunk in _chunks(ids):
        for r in conn.all(
            f"SELECT id, {', '.join(columns)} FROM {table}"
            f" WHERE project_id = ? AND id IN ({', '.join('?' * len(chunk))})",
            [project_id, *chunk],
        ):
            found[r["id"]] = r
    return found


def with_trace_columns(
    conn: Conn, project_id: str, rows: list[Row], columns: Sequence[str]
) -> None:
    """Give a page's ``rows`` (with ``trace_id``) their trace's ``columns`` as
    ``trace_<column>`` (None without a stored trace, as a left join gives them), the
    traces read by id with their keys found first (``Dialect.event_rows``: on
    ClickHouse only their granules are read merged). For stores that would build a
    join's right side from every trace (``Dialect.whole_right_joins``)."""
    found: dict[str, Row] = {}
    for chunk in _chunks(r["trace_id"] for r in rows):
        where, params = conn.dialect.event_rows(
            "traces",
            "timestamp",
            f"{{a}}project_id = ? AND {{a}}id IN ({', '.join('?' * len(chunk))})",
            [project_id, *chunk],
        )
        for t in conn.all(f"SELECT id, {', '.join(columns)} FROM traces WHERE {where}", params):
            found[t["id"]] = t
    for r in rows:
        t = found.get(r["trace_id"]) or {}
        for column in columns:
            r[f"trace_{column}"] = t.get(column)


def scores_on(
    conn: Conn,
    project_id: str,
    *,
    trace_ids: Iterable[str | None] = (),
    run_ids: Sequence[str] = (),
    newest_first: bool = False,
) -> list[Row]:
    """Plain score rows on these traces (their observations included) or these dataset
    runs (``dataset_run_id``), each once, by ``(timestamp, id)``."""
    found: dict[str, Row] = {}
    for column, chunks in (("trace_id", _chunks(trace_ids)), ("dataset_run_id", _chunks(run_ids))):
        for chunk in chunks:
            for r in conn.all(
                f"SELECT s.* FROM scores s WHERE s.project_id = ?"
                f" AND s.{column} IN ({', '.join('?' * len(chunk))})",
                [project_id, *chunk],
            ):
                found[r["id"]] = r
    return sorted(found.values(), key=lambda r: (r["timestamp"], r["id"]), reverse=newest_first)
