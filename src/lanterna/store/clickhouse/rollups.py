"""The metrics rollups on ClickHouse: the hourly and daily tables of
:mod:`lanterna.store.rollups`, kept exact by the same deltas, so that the metrics query
planner (v1/v2 metrics, dashboards and widgets, alert rules, budgets) reads a range's
whole hours from them here too instead of scanning its raw rows.

Storage: one ``SummingMergeTree`` table, ``rollup_deltas``, holds every table's rows as
*deltas*: ``(project_id, rollup, k1..k5, n, v1..v8)``, the table's name in ``rollup``,
its text keys in ``k1``... in order (``''`` for none), its integer key (a latency
bucket) in ``n`` and its values in ``v1``... (``Float64``; counts are whole numbers,
exact in a double far past any count). Each SQL rollup table is a view of the same name
and columns over its rows, so :mod:`lanterna.store.rollup_read` runs unchanged: it
``SUM``\\ s every row of a group, which is the group's value whether or not ClickHouse has
merged the deltas yet (merges add them up and drop the rows that sum to zero).

The deltas are what :func:`lanterna.store.rollups.delta_rows` computes on SQL: a
write's traces computed from their raw rows before and after it (or, for a trace that
is new with all its observations, from the batch's merged records alone), scores from
their old and new records, deletes as what the deleted rows had added. The ClickHouse
writer (``events.py``) inserts the events, then the deltas; deletes (``tombstones``)
likewise. :func:`rebuild` recomputes every row from the events (the migration that
adds the table, ``lanterna migrate --events``, and ``lanterna rollups rebuild`` after a
process died between the two inserts).

The per-trace, per-user and per-session totals (``trace_totals``, ``user_totals``,
``session_totals``) and the A/B rollups are not kept here: what reads them on SQL
reads the raw rows on ClickHouse (:func:`lanterna.store.rollup_read.totals_kept`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .. import rollups
from ..rollups import TABLES, Contribution, contribution
from .conn import EventsDb

DELTAS = "rollup_deltas"
_TEXT_KEYS = ("k1", "k2", "k3", "k4", "k5")
_VALUES = ("v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8")
#: the integer key columns of :data:`~lanterna.store.rollups.TABLES`
_INTEGER_KEYS = {"latency_bucket", "bucket"}
#: the float values (the rest are counts)
_FLOAT_VALUES = {"latency_sum", "cost", "seconds", "value_sum"}
COLUMNS = ["project_id", "rollup", *_TEXT_KEYS, "n", *_VALUES]
_CHUNK = 500

DDL = (
    f"CREATE TABLE IF NOT EXISTS {DELTAS} (\n"
    "    project_id String,\n"
    "    rollup LowCardinality(String),\n"
    + "".join(f"    {k} String,\n" for k in _TEXT_KEYS)
    + "    n Int64,\n"
    + "".join(f"    {v} Float64,\n" for v in _VALUES)
    + f") ENGINE = SummingMergeTree(({', '.join(_VALUES)}))\n"
    f"ORDER BY (project_id, rollup, {', '.join(_TEXT_KEYS)}, n)"
)


def _layout(table: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(key columns, value columns)`` of ``table``, each as (its name, the
    ``rollup_deltas`` column holding it)."""
    _, keys, values = TABLES[table]
    texts = iter(_TEXT_KEYS)
    key_cols = [(k, "n" if k in _INTEGER_KEYS else next(texts)) for k in keys]
    return key_cols, list(zip(values, _VALUES, strict=False))


def view_ddl(table: str) -> str:
    """The view named as the SQL rollup ``table``, with its columns, over its deltas."""
    key_cols, value_cols = _layout(table)
    cols = [f"{col} AS {name}" for name, col in key_cols]
    cols += [
        f"{col} AS {name}" if name in _FLOAT_VALUES else f"toInt64({col}) AS {name}"
        for name, col in value_cols
    ]
    return (
        f"CREATE VIEW IF NOT EXISTS {table} AS SELECT project_id, {', '.join(cols)}"
        f" FROM {DELTAS} WHERE rollup = '{table}'"
    )


_POSITIONS = {
    table: (
        [COLUMNS.index(col) for _, col in _layout(table)[0]],
        [COLUMNS.index(col) for _, col in _layout(table)[1]],
    )
    for table in TABLES
}


def rows_of(
    project_id: str, plus: Contribution, minus: Contribution | None = None
) -> list[list[Any]]:
    """The ``rollup_deltas`` rows moving every table by ``plus - minus``."""
    out: list[list[Any]] = []
    blank: list[Any] = [project_id, "", "", "", "", "", "", 0] + [0.0] * len(_VALUES)
    for table, rows in rollups.delta_rows(project_id, plus, minus):
        keys_at, values_at = _POSITIONS[table]
        for row in rows:
            cells = blank.copy()
            cells[1] = table
            for at, value in zip(keys_at, row[1:], strict=False):
                cells[at] = value
            for at, value in zip(values_at, row[1 + len(keys_at) :], strict=True):
                cells[at] = float(value)
            out.append(cells)
    return out


def add(
    events: EventsDb, project_id: str, plus: Contribution, minus: Contribution | None = None
) -> int:
    """Insert the deltas moving the project's rollups by ``plus - minus``; return how
    many rows."""
    rows = rows_of(project_id, plus, minus)
    if rows:
        events.insert(DELTAS, rows, COLUMNS)
    return len(rows)


def traces_now(events: EventsDb, project_id: str, trace_ids: Iterable[str]) -> Contribution:
    """What the stored traces ``trace_ids`` (and observations naming them) add now,
    from their merged rows."""
    return contribution(events.conn(json_text=True), project_id, trace_ids)


def trace_ids_of(events: EventsDb, project_id: str) -> list[str]:
    """Every trace id of the project, stored or named by an observation."""
    conn = events.conn(json_text=True)
    ids = {r["id"] for r in conn.all("SELECT id FROM traces WHERE project_id = ?", [project_id])}
    ids.update(
        r["trace_id"]
        for r in conn.all(
            "SELECT DISTINCT trace_id FROM observations WHERE project_id = ?"
            " AND trace_id IS NOT NULL",
            [project_id],
        )
    )
    return sorted(ids)


SCORE_COLUMNS = "id, trace_id, timestamp, environment, name, data_type, value, string_value"


def score_rows(
    events: EventsDb, project_id: str, where: str, params: Sequence[Any]
) -> list[dict[str, Any]]:
    """The stored scores of the project matching ``where``, as :func:`lanterna.store.rollups.scores`
    reads them."""
    conn = events.conn(json_text=True)
    rows = conn.all(
        f"SELECT {SCORE_COLUMNS} FROM scores WHERE project_id = ? AND {where}",
        [project_id, *params],
    )
    for r in rows:
        r["timestamp"] = conn.dialect.ts_parse(r["timestamp"])
    return rows


def rebuild(events: EventsDb, project_ids: Sequence[str] | None = None) -> int:
    """Recompute the rollups of ``project_ids`` (default: every project with events)
    from the events: their deltas dropped, then one row per key inserted; return how
    many rows."""
    conn = events.conn(json_text=True)
    if project_ids is None:
        project_ids = sorted(
            {
                r["project_id"]
                for table in ("traces", "observations", "scores")
                for r in conn.all(f"SELECT DISTINCT project_id FROM {table}")
            }
        )
        events.command(f"TRUNCATE TABLE {DELTAS}")
    else:
        for project_id in project_ids:
            conn.run(f"DELETE FROM {DELTAS} WHERE project_id = ?", [project_id])
    written = 0
    for project_id in project_ids:
        ids = trace_ids_of(events, project_id)
        for start in range(0, len(ids), _CHUNK):
            written += add(
                events, project_id, traces_now(events, project_id, ids[start : start + _CHUNK])
            )
        written += add(
            events, project_id, rollups.scores(score_rows(events, project_id, "1 = 1", []))
        )
    return written
