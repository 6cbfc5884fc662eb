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

Per trace, ``trace_figures_rows`` (a ``ReplacingMergeTree`` ordered by project, the
trace's time and id, read through the ``trace_figures`` view ``FINAL``) holds what the
trace list, a session's page and the list's totals row show of it: its time,
environment, user and session, observations, cost,
tokens (total, input, output), latency, worst level and errors, as the same deltas
compute them (:attr:`~lanterna.store.rollups.Contribution.figures`). :func:`add` writes
the row of every trace whose figures changed and a deleted row for every trace gone, so
those reads find a page's traces by key instead of reading their observations, which
ClickHouse keeps scattered over the whole time range (tens of milliseconds a page).

After the figures, :func:`add` moves each user's and session's totals and the traces in
user order (:mod:`.key_totals`). The SQL ``trace_totals`` table, its cost-indexed
``session_totals`` and the A/B rollups are not kept here: what reads them on SQL reads
the raw rows (or ``trace_figures``) on ClickHouse
(:func:`lanterna.store.rollup_read.totals_kept`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ...timeutil import now
from .. import rollups
from ..rollups import TABLES, Contribution, Figures, contribution
from . import key_totals
from .conn import EventsDb, naive_utc
from .schema import replacing_ddl

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


FIGURES = "trace_figures_rows"
#: ``trace_figures_rows``' columns and types: a trace's ``trace_totals`` columns but its
#: name and error flag (``rollups._TOTALS_COLUMNS``), then ``Contribution.figures``.
_FIGURES_LAYOUT = [
    ("project_id", "String"),
    ("trace_id", "String"),
    ("timestamp", "DateTime64(6, 'UTC')"),
    ("environment", "String"),
    ("user_id", "Nullable(String)"),
    ("session_id", "Nullable(String)"),
    ("observations", "UInt64"),
    ("cost", "Float64"),
    ("tokens", "Int64"),
    ("latency", "Nullable(Float64)"),
    ("input_tokens", "Int64"),
    ("output_tokens", "Int64"),
    ("severity", "UInt8"),
    ("errors", "UInt64"),
    # The observations' earliest and latest start: a page's observation ids are read
    # within them, by the observations' time key (migration 5).
    ("first_start", "Nullable(DateTime64(6, 'UTC'))"),
    ("last_start", "Nullable(DateTime64(6, 'UTC'))"),
    ("_version", "UInt64"),
    ("_deleted", "UInt8"),
]
FIGURES_COLUMNS = [name for name, _ in _FIGURES_LAYOUT]
# Ordered by the trace's time (fixed at its first write, so every version of a row has
# the same key), as the reads that take many traces find them: the totals row's 10,000
# latest traces at 10 M observations 225 -> 38 ms, the top sessions of a day 180 -> 16
# ms, against 90 ms for a page of 50 traces found by id alone (their rows' times first);
# a page whose traces' time range is known reads it with the ids (33.7 -> 7.3 ms).
# Small granules: a page's traces each take one (1 M observations, ordered by id: a
# page of 50 25.6 ms with granules of 8,192 rows, 18.2 with 256). Compact parts (one
# file for all columns) read such a page in 8.4 ms but scan a month for the top
# sessions in 55 ms instead of 33: not taken.
FIGURES_DDL = replacing_ddl(
    FIGURES,
    _FIGURES_LAYOUT,
    "project_id, timestamp, trace_id",
    indexes=(
        "INDEX idx_trace trace_id TYPE bloom_filter GRANULARITY 1",
        "INDEX idx_session session_id TYPE bloom_filter GRANULARITY 1",
    ),
    granularity=256,
)
FIGURES_VIEW = (
    "CREATE VIEW IF NOT EXISTS trace_figures AS"
    f" SELECT * EXCEPT (_version, _deleted) FROM {FIGURES} FINAL"
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
    events: EventsDb,
    project_id: str,
    plus: Contribution,
    minus: Contribution | None = None,
    *,
    figures: bool = True,
    keys: bool = True,
    stamp: datetime | None = None,
    done: set[str] | None = None,
) -> int:
    """Insert the deltas moving the project's rollups by ``plus - minus`` and (with
    ``figures``) the changed ``trace_figures_rows``, then (with ``keys`` too) the traces
    in user order and the users' and sessions' rows they move (:mod:`.key_totals`;
    ``stamp``: a new session's start, default now); return how many delta rows.

    ``done`` collects the names of the steps written (``deltas``, ``figures``,
    ``user_traces``, ``keys``) and skips those already in it: a writer that failed part
    way through and moves the rollups again from the stored rows (``events.py``) does
    not add the deltas or the users' and sessions' moves twice (the figures and the
    copy in user order are whole rows, the same when written again)."""
    from .events import next_version

    done = set() if done is None else done
    rows = rows_of(project_id, plus, minus)
    if rows and "deltas" not in done:
        events.insert(DELTAS, rows, COLUMNS)
    done.add("deltas")
    changed = figure_rows(project_id, plus, minus) if figures else []
    if not changed:
        return len(rows)
    if "figures" not in done:
        events.insert(FIGURES, changed, FIGURES_COLUMNS)
        done.add("figures")
    if not keys:
        return len(rows)
    version = next_version()
    copied = key_totals.user_trace_rows(project_id, plus, minus, version)
    if copied and "user_traces" not in done:
        events.insert(key_totals.USER_TRACES, copied, key_totals.USER_TRACES_COLUMNS)
    done.add("user_traces")
    if "keys" not in done:
        moved = key_totals.rows_of(
            events, project_id, plus, minus, stamp=stamp or now(), version=version
        )
        if moved:
            events.insert(key_totals.TABLE, moved, key_totals.COLUMNS)
        done.add("keys")
    return len(rows)


def figure_rows(
    project_id: str, plus: Contribution, minus: Contribution | None = None
) -> list[list[Any]]:
    """The ``trace_figures_rows`` rows of ``plus``'s traces whose figures differ from
    ``minus``'s, and a deleted row for each trace only ``minus`` has."""
    from .events import next_version

    old_totals = minus.totals if minus is not None else {}
    old_figures = minus.figures if minus is not None else {}
    version = next_version()
    out: list[list[Any]] = []
    for trace_id, totals in plus.totals.items():
        extra = plus.figures[trace_id]
        if old_totals.get(trace_id) == totals and old_figures.get(trace_id) == extra:
            continue
        out.append(_figure_row(project_id, trace_id, totals, extra, version, 0))
    for trace_id in old_totals.keys() - plus.totals.keys():
        out.append(
            _figure_row(
                project_id, trace_id, old_totals[trace_id], old_figures[trace_id], version, 1
            )
        )
    return out


def _figure_row(
    project_id: str,
    trace_id: str,
    totals: tuple[Any, ...],
    extra: Figures,
    version: int,
    deleted: int,
) -> list[Any]:
    # totals: timestamp, environment, name, user, session, observations, cost, tokens,
    # latency, error flag (``rollups._TOTALS_COLUMNS``); the timestamp an aware
    # datetime (``ClickHouseDialect.ts``), inserted naive in UTC
    stamp, env, _, user, session, n, cost, tokens, latency, _ = totals
    return [
        project_id,
        trace_id,
        naive_utc(stamp),
        env,
        user,
        session,
        n,
        float(cost),
        tokens,
        latency,
        *extra[:4],
        None if extra[4] is None else naive_utc(extra[4]),
        None if extra[5] is None else naive_utc(extra[5]),
        version,
        deleted,
    ]


#: The figures of every stored trace from the events, in one statement per project
#: (migration 3; :func:`rebuild` writes them through :func:`add`): the values
#: :class:`Contribution` computes (latency in whole microseconds over 10^6, as
#: ``timedelta.total_seconds``).
_FILL = f"""INSERT INTO {FIGURES} ({", ".join(FIGURES_COLUMNS)})
SELECT t.project_id, t.id, t.timestamp, t.environment, t.user_id, t.session_id,
    coalesce(o.n, 0), coalesce(o.cost, 0),
    coalesce(o.tokens, 0), o.latency, coalesce(o.input, 0), coalesce(o.output, 0),
    coalesce(o.severity, 0), coalesce(o.errors, 0), o.first_start, o.last_start,
    {{version}}, 0
FROM traces AS t LEFT JOIN (
    SELECT trace_id, count() AS n, sum(coalesce(total_cost, 0)) AS cost,
        sum(coalesce(usage_total, 0)) AS tokens,
        dateDiff('microsecond', min(start_time), max(coalesce(end_time, start_time)))
            / 1000000 AS latency,
        sum(coalesce(usage_input, 0)) AS input, sum(coalesce(usage_output, 0)) AS output,
        max(multiIf(level = 'ERROR', 3, level = 'WARNING', 2, level = 'DEFAULT', 1, 0))
            AS severity,
        countIf(level = 'ERROR') AS errors,
        min(start_time) AS first_start, max(start_time) AS last_start
    FROM observations WHERE project_id = ? AND trace_id IS NOT NULL
    GROUP BY trace_id
) AS o ON o.trace_id = t.id
WHERE t.project_id = ?"""


def fill_figures(events: EventsDb, project_ids: Sequence[str] | None = None) -> None:
    """Write the ``trace_figures_rows`` of ``project_ids`` (default: every project
    with traces) from the stored events, one statement per project."""
    from .events import next_version

    conn = events.conn(json_text=True)
    if project_ids is None:
        project_ids = sorted(
            r["project_id"] for r in conn.all("SELECT DISTINCT project_id FROM traces")
        )
    for project_id in project_ids:
        conn.run(_FILL.format(version=next_version()), [project_id, project_id])


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


def rebuild(
    events: EventsDb, project_ids: Sequence[str] | None = None, *, figures: bool = True
) -> int:
    """Recompute the rollups of ``project_ids`` (default: every project with events)
    from the events: their deltas dropped, then one row per key inserted; return how
    many rows. With ``figures``, the traces' ``trace_figures_rows`` and the users' and
    sessions' ``key_totals_rows`` too (migration 2, which runs before those tables
    exist, leaves them to migrations 3 and 4)."""
    from .events import next_version

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
        if figures:
            events.command(f"TRUNCATE TABLE {FIGURES}")
            events.command(f"TRUNCATE TABLE {key_totals.TABLE}")
            events.command(f"TRUNCATE TABLE {key_totals.USER_TRACES}")
    else:
        for project_id in project_ids:
            conn.run(f"DELETE FROM {DELTAS} WHERE project_id = ?", [project_id])
            if figures:
                for table in (FIGURES, key_totals.TABLE, key_totals.USER_TRACES):
                    conn.run(f"DELETE FROM {table} WHERE project_id = ?", [project_id])
    written = 0
    for project_id in project_ids:
        ids = trace_ids_of(events, project_id)
        for start in range(0, len(ids), _CHUNK):
            stored = traces_now(events, project_id, ids[start : start + _CHUNK])
            written += add(events, project_id, stored, figures=figures, keys=False)
        written += add(
            events, project_id, rollups.scores(score_rows(events, project_id, "1 = 1", []))
        )
    if figures:  # every user and session from the figures just written
        key_totals.fill(events, project_ids, next_version())
    return written
