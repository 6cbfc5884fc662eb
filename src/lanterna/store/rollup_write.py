"""Writing the SQL stores' rollups (:mod:`lanterna.store.rollups` computes them):
``trace_totals`` made to hold a :class:`~lanterna.store.rollups.Contribution`'s traces,
the hourly and daily tables moved by the difference of two contributions (one upsert
per table on SQLite, one statement for every table on PostgreSQL), and the helpers
that move them around a write (:func:`snapshot`, :func:`remove_scores`;
:mod:`lanterna.store.user_totals` moves the user and session totals with them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from . import ab_rollups
from .db import Conn
from .rollups import (
    _CHUNK,
    TABLES,
    Contribution,
    _chunked,
    delta_rows,
    recorded,
)

_TOTALS_COLUMNS = (
    "timestamp",
    "environment",
    "name",
    "user_id",
    "session_id",
    "observations",
    "cost",
    "tokens",
    "latency",
    "error",
)
_TOTALS_HEAD = f"INSERT INTO trace_totals (project_id, trace_id, {', '.join(_TOTALS_COLUMNS)})"
_TOTALS_TAIL = " ON CONFLICT (project_id, trace_id) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in _TOTALS_COLUMNS
)


def _upsert_sql(table: str) -> tuple[str, str]:
    _, keys, values = TABLES[table]
    head = f"INSERT INTO {table} (project_id, {', '.join(keys)}, {', '.join(values)})"
    tail = f" ON CONFLICT (project_id, {', '.join(keys)}) DO UPDATE SET " + ", ".join(
        f"{v} = {table}.{v} + excluded.{v}" for v in values
    )
    return head, tail


_UPSERTS = {table: _upsert_sql(table) for table in TABLES}
_INTEGERS = {"latency_bucket", "bucket"}
_FLOATS = {"latency_sum", "cost", "seconds", "value_sum"}


def _pg_upsert_sql(table: str) -> tuple[str, tuple[Callable[[Any], Any], ...]]:
    """PostgreSQL: the upsert of :func:`_upsert_sql` from one array per column
    (``unnest``), and each column's Python conversion."""
    _, keys, values = TABLES[table]
    head, tail = _UPSERTS[table]
    arrays = []
    cast: list[Callable[[Any], Any]] = []
    for col in ("project_id", *keys):
        arrays.append("?::bigint[]" if col in _INTEGERS else "?::text[]")
        cast.append(int if col in _INTEGERS else str)
    for col in values:
        arrays.append("?::float8[]" if col in _FLOATS else "?::bigint[]")
        cast.append(float if col in _FLOATS else int)
    return f"{head} SELECT * FROM unnest({', '.join(arrays)}){tail}", tuple(cast)


_PG_UPSERTS = {table: _pg_upsert_sql(table) for table in TABLES}


def add(
    conn: Conn,
    project_id: str,
    plus: Contribution,
    minus: Contribution | None = None,
    *,
    tables: Iterable[str] = TABLES,
) -> None:
    """Add ``plus - minus`` to the project's rollup ``tables`` (keys whose difference
    is zero are left alone), and make ``trace_totals`` hold ``plus``'s traces (those
    only in ``minus`` are gone)."""
    old_totals = minus.totals if minus is not None else {}
    changed = [
        [project_id, trace_id, *row]
        for trace_id, row in sorted(plus.totals.items())
        if old_totals.get(trace_id) != row
    ]
    conn.insert(_TOTALS_HEAD, changed, _TOTALS_TAIL)
    gone = sorted(set(old_totals) - set(plus.totals))
    for start in range(0, len(gone), _CHUNK):
        chunk = gone[start : start + _CHUNK]
        conn.run(
            f"DELETE FROM trace_totals WHERE project_id = ? AND trace_id IN"
            f" ({', '.join('?' * len(chunk))})",
            [project_id, *chunk],
        )
    pg: list[tuple[str, list[Any]]] = []
    for table, rows in delta_rows(project_id, plus, minus, tables):
        if not rows:
            continue
        if conn.dialect.name == "postgresql":
            sql, cast = _PG_UPSERTS[table]
            columns = zip(*rows, strict=True)
            pg.append((sql, [[f(x) for x in col] for f, col in zip(cast, columns, strict=True)]))
        else:
            head, tail = _UPSERTS[table]
            conn.insert(head, rows, tail)
    if pg:
        # One statement for every table, each upsert a data-modifying CTE binding a
        # column array per column: one round trip instead of one per table (psycopg
        # parses long multi-row statements anew every time; one pipelined statement
        # per row costs its Python side about 40 us a row).
        ctes = ", ".join(f"u{i} AS ({sql})" for i, (sql, _) in enumerate(pg))
        conn.run(f"WITH {ctes} SELECT 1", [p for _, params in pg for p in params])


def remove_scores(conn: Conn, project_id: str, column: str, ids: Sequence[str]) -> None:
    """Before deleting the scores whose ``column`` (``id`` or ``trace_id``) is one of
    ``ids``: take what they added out of the rollups."""
    if column not in ("id", "trace_id"):
        raise ValueError(column)
    gone = Contribution()
    d = conn.dialect
    for chunk in _chunked(ids):
        for r in conn.all(
            "SELECT id, trace_id, timestamp, environment, name, data_type, value, string_value"
            f" FROM scores WHERE project_id = ? AND {column} IN ({', '.join('?' * len(chunk))})",
            [project_id, *chunk],
        ):
            r["timestamp"] = d.ts_parse(r["timestamp"])
            gone.add_score(r)
    if gone.scores:
        add(conn, project_id, Contribution(), gone)
    if gone.score_rows:
        ab_rollups.apply(conn, project_id, Contribution(), gone)


Snapshot = list[tuple[str, set[str], Contribution]]


def snapshot(conn: Conn, rows: Iterable[dict[str, Any]]) -> Snapshot:
    """Before a write to the observation ``rows`` (with ``project_id`` and ``trace_id``)
    of any projects: their traces' contributions, for
    :func:`lanterna.store.user_totals.settle` after it."""
    touched: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        touched[row["project_id"]].add(row["trace_id"])
    return [(pid, ids, recorded(conn, pid, ids)) for pid, ids in sorted(touched.items())]
