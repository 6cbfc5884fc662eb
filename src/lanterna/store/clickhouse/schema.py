"""The ClickHouse schema and its migrations (applied once, under the metadata lock).

Each event table is a ``ReplacingMergeTree(_version, _deleted)`` named ``<table>_rows``,
ordered by ``(project_id, <time>, id)``: the time is the one a merge never changes (a
trace's and a score's ``timestamp``, an observation's ``start_time``: ``ingest/merge.py``
fixes them at the first write), so every version of a row has the same sorting key and
the engine keeps only the highest ``_version``. A write stores the *whole merged row*
(``events.py`` merges in the writer before inserting), so the latest version is the
field-wise merge SQLite and PostgreSQL keep. ``_deleted = 1`` marks a delete. The views
``traces``, ``observations`` and ``scores`` read the tables ``FINAL`` (merged, deleted
rows left out), with the columns of the SQLite/PostgreSQL tables, so the read queries
of ``store/`` run on them as written. Skip indexes on ids serve lookups by id and by
trace. JSON values are ``String`` holding JSON text.

A migration is a list of statements written ``IF NOT EXISTS`` (safe to run again) and
functions of the database (migration 2 fills the rollups from the stored events).
Applied versions are recorded in ``lanterna_migrations``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager

from ..rollups import TABLES as TABLES_OF_ROLLUPS
from .conn import EventsDb

_TS = "DateTime64(6, 'UTC')"
_ROW_END = (
    f"    created_at {_TS},\n    updated_at {_TS},\n    _version UInt64,\n    _deleted UInt8,\n"
)
_ENGINE = (
    "ENGINE = ReplacingMergeTree(_version, _deleted)\n"
    "PARTITION BY toYYYYMM({time})\nORDER BY (project_id, {time}, id)"
)

_TRACES = f"""CREATE TABLE IF NOT EXISTS traces_rows (
    project_id String,
    id String,
    timestamp {_TS},
    name Nullable(String),
    input Nullable(String),
    output Nullable(String),
    session_id Nullable(String),
    release Nullable(String),
    version Nullable(String),
    user_id Nullable(String),
    metadata Nullable(String),
    tags Nullable(String),
    public Bool,
    bookmarked Bool,
    environment String,
{_ROW_END}    INDEX idx_id id TYPE bloom_filter GRANULARITY 1,
    INDEX idx_session session_id TYPE bloom_filter GRANULARITY 1
)
{_ENGINE.format(time="timestamp")}"""

_OBSERVATIONS = f"""CREATE TABLE IF NOT EXISTS observations_rows (
    project_id String,
    id String,
    trace_id Nullable(String),
    type Nullable(String),
    name Nullable(String),
    start_time {_TS},
    end_time Nullable({_TS}),
    completion_start_time Nullable({_TS}),
    model Nullable(String),
    model_parameters Nullable(String),
    input Nullable(String),
    output Nullable(String),
    version Nullable(String),
    metadata Nullable(String),
    usage_details Nullable(String),
    cost_details Nullable(String),
    level Nullable(String),
    status_message Nullable(String),
    parent_observation_id Nullable(String),
    prompt_id Nullable(String),
    prompt_name Nullable(String),
    prompt_version Nullable(Int64),
    environment String,
    model_id Nullable(String),
    provided_usage_details Nullable(String),
    provided_cost_details Nullable(String),
    total_cost Nullable(Float64),
    cost_info Nullable(String),
    usage_input Nullable(Int64),
    usage_output Nullable(Int64),
    usage_total Nullable(Int64),
{_ROW_END}    INDEX idx_id id TYPE bloom_filter GRANULARITY 1,
    INDEX idx_trace trace_id TYPE bloom_filter GRANULARITY 1
)
{_ENGINE.format(time="start_time")}"""

_SCORES = f"""CREATE TABLE IF NOT EXISTS scores_rows (
    project_id String,
    id String,
    trace_id Nullable(String),
    session_id Nullable(String),
    observation_id Nullable(String),
    dataset_run_id Nullable(String),
    name Nullable(String),
    value Nullable(Float64),
    string_value Nullable(String),
    data_type Nullable(String),
    source Nullable(String),
    timestamp {_TS},
    author_user_id Nullable(String),
    comment Nullable(String),
    metadata Nullable(String),
    config_id Nullable(String),
    queue_id Nullable(String),
    environment String,
{_ROW_END}    INDEX idx_id id TYPE bloom_filter GRANULARITY 1,
    INDEX idx_trace trace_id TYPE bloom_filter GRANULARITY 1
)
{_ENGINE.format(time="timestamp")}"""


def replacing_ddl(
    table: str,
    layout: Sequence[tuple[str, str]],
    order_by: str,
    *,
    indexes: Sequence[str] = (),
    granularity: int | None = None,
) -> str:
    """``CREATE TABLE`` of a ``ReplacingMergeTree(_version, _deleted)`` with the columns
    ``layout`` (name, type) and skip ``indexes``, ordered by ``order_by``."""
    lines = [f"    {name} {kind}" for name, kind in layout] + [f"    {i}" for i in indexes]
    settings = f"\nSETTINGS index_granularity = {granularity}" if granularity else ""
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (\n" + ",\n".join(lines) + "\n)\n"
        f"ENGINE = ReplacingMergeTree(_version, _deleted)\nORDER BY ({order_by}){settings}"
    )


def _view(table: str) -> str:
    return (
        f"CREATE VIEW IF NOT EXISTS {table} AS"
        f" SELECT * EXCEPT (_version, _deleted) FROM {table}_rows FINAL"
    )


def _rollups() -> list[str | Step]:
    from . import rollups

    return [
        rollups.DDL,
        *(rollups.view_ddl(t) for t in TABLES_OF_ROLLUPS),
        lambda events: rollups.rebuild(events, figures=False),
    ]


def _figures(events: EventsDb) -> None:
    """Migration 3: the per-trace figures table and view, filled from the events."""
    from . import rollups

    events.command(rollups.FIGURES_DDL)
    events.command(rollups.FIGURES_VIEW)
    rollups.fill_figures(events)


def _key_totals(events: EventsDb) -> None:
    """Migration 4: the users' and sessions' totals table and views and the traces
    ordered by user, filled from the figures and the traces."""
    from . import key_totals
    from .events import next_version

    for statement in (
        key_totals.DDL,
        key_totals.USERS_VIEW,
        key_totals.SESSIONS_VIEW,
        key_totals.USER_TRACES_DDL,
        key_totals.USER_TRACES_VIEW,
    ):
        events.command(statement)
    _, rows = events.query("SELECT DISTINCT project_id FROM trace_figures")
    key_totals.fill(events, sorted(r[0] for r in rows), next_version())


def _figure_starts(events: EventsDb) -> None:
    """Migration 5: each trace's first and last observation start in its figures (the
    columns, the view again with them), filled from the events when rows lack them
    (a store that ran migration 3 with these columns already has them)."""
    from . import rollups

    for column in ("first_start", "last_start"):
        events.command(
            f"ALTER TABLE {rollups.FIGURES} ADD COLUMN IF NOT EXISTS {column}"
            " Nullable(DateTime64(6, 'UTC')) AFTER "
            + ("errors" if column == "first_start" else "first_start")
        )
    events.command("DROP VIEW IF EXISTS trace_figures")  # a view keeps its columns
    events.command(rollups.FIGURES_VIEW)
    _, rows = events.query(
        "SELECT DISTINCT project_id FROM trace_figures"
        " WHERE observations > 0 AND first_start IS NULL"
    )
    if rows:
        rollups.fill_figures(events, sorted(r[0] for r in rows))


#: A migration step: a statement, or a function of the events database (run once).
Step = Callable[[EventsDb], object]

#: ``(version, steps)`` in order; never edit an applied one, add the next.
MIGRATIONS: list[tuple[int, list[str | Step]]] = [
    (
        1,
        [
            _TRACES,
            _OBSERVATIONS,
            _SCORES,
            _view("traces"),
            _view("observations"),
            _view("scores"),
        ],
    ),
    # The metrics rollups (``rollups.py``): the deltas table, a view per SQL rollup
    # table, and the rows of the events already stored.
    (2, _rollups()),
    # Each trace's figures (``rollups.py``): the table, its view, and the rows of the
    # traces already stored.
    (3, [_figures]),
    # Each user's and session's totals (``key_totals.py``): the table, its views, and
    # the rows of the traces already stored.
    (4, [_key_totals]),
    # Each trace's first and last observation start, kept with its figures.
    (5, [_figure_starts]),
]

#: The event tables (view name -> table written).
TABLES = {"trace": "traces_rows", "observation": "observations_rows", "score": "scores_rows"}

_LEDGER = (
    "CREATE TABLE IF NOT EXISTS lanterna_migrations"
    " (version UInt32, applied_at DateTime64(6, 'UTC') DEFAULT now64(6))"
    " ENGINE = ReplacingMergeTree ORDER BY version"
)


def applied(events: EventsDb) -> set[int]:
    """The migration versions recorded as applied."""
    events.command(_LEDGER)
    _names, rows = events.query("SELECT version FROM lanterna_migrations FINAL")
    return {int(r[0]) for r in rows}


def migrate(events: EventsDb, lock: Callable[[], AbstractContextManager[object]]) -> list[int]:
    """Apply the migrations not yet applied, holding ``lock`` (the metadata database's
    exclusive write lock, so that of several processes starting together one migrates
    and the others find it done); return the versions applied now."""
    done: list[int] = []
    with lock():
        have = applied(events)
        for version, statements in _pending(have):
            for step in statements:
                if isinstance(step, str):
                    events.command(step)
                else:
                    step(events)
            events.insert("lanterna_migrations", [[version]], ["version"])
            done.append(version)
    return done


def _pending(have: set[int]) -> Iterator[tuple[int, list[str | Step]]]:
    for version, statements in MIGRATIONS:
        if version not in have:
            yield version, statements
