"""Copy a whole Lanterna database into an empty PostgreSQL database (``lanterna migrate
--from ... --to ...``): resumable, with progress, verified by row counts and checksums.

What is copied comes from the schema, not from a list: every table of the (migrated)
target except ``schema_migrations`` (the target records its own migrations), with every
column, read from the source in primary-key order and inserted in foreign-key order
(a referenced table before the tables that refer to it). Source tables the target does
not have must be ones PostgreSQL does not need (SQLite's full-text index of the traces,
``traces_search*``, which PostgreSQL replaces by a trigram index on ``traces``); any
other one stops the copy, so no table is forgotten. Rollup tables and the per-project
row counts are copied as rows: the write path keeps them exact, so the copies are too.
So is ``trace_tags``, which triggers on ``traces`` keep: by name it comes before
``traces``, and the rows the target's triggers add for each copied trace are there
already (they insert with ``ON CONFLICT DO NOTHING``).
Secrets are copied as stored (API key hashes, values sealed with the server key), so
the target's server must use the same server key.

Resuming: the target holds a progress record, table :data:`PROGRESS`: the source it is
a copy of, and per table the last primary key copied, the rows copied and whether the
table is done. Each batch's rows and its progress row are written in one transaction,
so an interrupted copy (Ctrl-C, a crash, a lost connection) leaves the target exactly
as of its last committed batch, and running the same command again continues after
it, never inserting a row twice (the primary keys would refuse it anyway).

Verifying: for each table, the rows on both sides are counted and hashed: each row's
values in a canonical form (timestamps as UTC ISO text, JSON with sorted keys, booleans,
numbers), 16 bytes of BLAKE2b per row, summed modulo 2**128, so the order rows come in
does not matter. Computed the same way on both sides by this module.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .. import _json
from ..timeutil import format_ts, now
from .db import Conn, Database
from .dialect import Dialect

if TYPE_CHECKING:
    from .clickhouse.conn import EventsDb

#: The target's progress record (not part of the copied schema).
PROGRESS = "lanterna_copy_progress"
#: Tables never copied: the target's own migration record, and the progress record.
_NOT_COPIED = frozenset({"schema_migrations", PROGRESS})
#: Source tables the target may lack: SQLite's own and its FTS5 index of the traces.
_SOURCE_ONLY = ("sqlite_", "traces_search")
#: The progress row of the copy as a whole (no table has this name).
_WHOLE = "*"
#: PostgreSQL column types and the canonical kind each is converted through.
_KINDS = {
    "timestamp with time zone": "ts",
    "jsonb": "json",
    "boolean": "bool",
    "double precision": "float",
    "bigint": "int",
    "integer": "int",
    "smallint": "int",
    "text": "text",
}
_MOD = 1 << 128


class CopyError(Exception):
    """A copy that cannot be made or continued; the message says why and what to do."""


@dataclass(frozen=True)
class Table:
    """A table to copy: its columns (name -> kind) and primary key, from the target."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]


@dataclass(frozen=True)
class TableCheck:
    """One table's row count and checksum on both sides."""

    table: str
    source_rows: int
    target_rows: int
    source_sum: str
    target_sum: str

    @property
    def ok(self) -> bool:
        """Whether both sides hold the same rows."""
        return self.source_rows == self.target_rows and self.source_sum == self.target_sum


@dataclass
class CopyReport:
    """What :func:`copy_database` did: rows copied now per table, whether it resumed an
    earlier copy, and the verification."""

    copied: dict[str, int] = field(default_factory=dict)
    resumed: bool = False
    checks: list[TableCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every table verified."""
        return all(check.ok for check in self.checks)


#: ``progress(table, copied, total, done)``: after each batch and when a table is done.
Progress = Callable[[str, int, int, bool], None]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _pg_tables(conn: Conn) -> list[str]:
    rows = conn.all(
        "SELECT table_name AS name FROM information_schema.tables"
        " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
    )
    return sorted(r["name"] for r in rows)


def _source_tables(conn: Conn) -> list[str]:
    if conn.dialect.name == "sqlite":
        rows = conn.all("SELECT name FROM sqlite_master WHERE type = 'table'")
        return sorted(r["name"] for r in rows)
    return _pg_tables(conn)


def _source_columns(conn: Conn, table: str) -> set[str]:
    if conn.dialect.name == "sqlite":
        return {r["name"] for r in conn.all(f"SELECT name FROM pragma_table_info('{table}')")}
    rows = conn.all(
        "SELECT column_name AS name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = ?",
        [table],
    )
    return {r["name"] for r in rows}


def target_tables(conn: Conn) -> list[Table]:
    """Every table of the PostgreSQL database on ``conn`` to copy, in dependency order
    (each after the tables its foreign keys refer to; otherwise by name)."""
    names = [n for n in _pg_tables(conn) if n not in _NOT_COPIED]
    tables: dict[str, Table] = {}
    for name in names:
        cols = conn.all(
            "SELECT column_name AS name, data_type AS type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            [name],
        )
        columns = []
        for col in cols:
            kind = _KINDS.get(col["type"])
            if kind is None:
                raise CopyError(f"{name}.{col['name']}: column type {col['type']} is not supported")
            columns.append((col["name"], kind))
        key = conn.all(
            "SELECT a.attname AS name FROM pg_index i,"
            " unnest(i.indkey) WITH ORDINALITY AS k(num, pos), pg_attribute a"
            " WHERE i.indrelid = ?::regclass AND i.indisprimary"
            " AND a.attrelid = i.indrelid AND a.attnum = k.num ORDER BY k.pos",
            [name],
        )
        if not key:
            raise CopyError(f"table {name} has no primary key: it cannot be copied resumably")
        tables[name] = Table(name, tuple(columns), tuple(r["name"] for r in key))
    refs: dict[str, set[str]] = {n: set() for n in names}
    for row in conn.all(
        "SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent"
        " FROM pg_constraint WHERE contype = 'f'"
    ):
        child, parent = row["child"].strip('"'), row["parent"].strip('"')
        if child in refs and parent in refs and child != parent:
            refs[child].add(parent)
    ordered: list[Table] = []
    placed: set[str] = set()
    while len(ordered) < len(names):
        ready = [n for n in names if n not in placed and refs[n] <= placed]
        if not ready:
            raise CopyError("the tables' foreign keys form a cycle")
        for n in ready:
            ordered.append(tables[n])
            placed.add(n)
    return ordered


def canonical(dialect: Dialect, kind: str, value: Any) -> Any:
    """A stored value as the Python value it stands for (aware datetime, decoded JSON,
    bool, float, int, str), whichever database it was read from."""
    if value is None:
        return None
    if kind == "ts":
        return dialect.ts_parse(value)
    if kind == "json":
        try:
            return dialect.json_out(value)
        except _json.JSONDecodeError:  # text that is not JSON: kept as a JSON string
            return value
    if kind == "bool":
        return bool(value)
    if kind == "float":
        return float(value)
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise CopyError(f"{value!r} is not an integer")
        return int(value)
    return value if isinstance(value, str) else str(value)


def _bound(dialect: Dialect, kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "ts":
        return dialect.ts(value)
    if kind == "json":
        return dialect.json(value)
    return value


def _bound_row(dialect: Dialect, table: Table, values: Sequence[Any]) -> list[Any]:
    return [
        _bound(dialect, kind, value) for (_, kind), value in zip(table.columns, values, strict=True)
    ]


def _digest_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "ts":
        return format_ts(value)
    if kind == "json":
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()
    return value


def row_digest(table: Table, values: Sequence[Any]) -> int:
    """The 128-bit hash of one row's canonical values (columns in name order)."""
    pairs = sorted(
        (name, _digest_value(kind, value))
        for (name, kind), value in zip(table.columns, values, strict=True)
    )
    data = orjson.dumps(pairs, default=str)
    return int.from_bytes(hashlib.blake2b(data, digest_size=16).digest(), "big")


def _batches(
    conn: Conn, table: Table, after: list[Any] | None, size: int
) -> Iterator[tuple[list[list[Any]], list[Any]]]:
    """The table's rows in primary-key order after the key ``after``, ``size`` at a time,
    each batch with its last row's key (as stored in the source)."""
    cols = ", ".join(_q(name) for name, _ in table.columns)
    keys = ", ".join(_q(k) for k in table.key)
    where_keys = f"({keys})" if len(table.key) > 1 else keys
    marks = "(" + ", ".join("?" * len(table.key)) + ")" if len(table.key) > 1 else "?"
    positions = [i for k in table.key for i, (n, _) in enumerate(table.columns) if n == k]
    while True:
        where = f" WHERE {where_keys} > {marks}" if after is not None else ""
        params = [*(after or []), size]
        rows = conn.raw.execute(
            conn.dialect.sql(f"SELECT {cols} FROM {_q(table.name)}{where} ORDER BY {keys} LIMIT ?"),
            params,
        ).fetchall()
        if not rows:
            return
        after = [rows[-1][i] for i in positions]
        yield [list(r) for r in rows], after
        if len(rows) < size:
            return


def table_checksum(conn: Conn, table: Table, *, batch_size: int = 5000) -> tuple[int, str]:
    """A table's row count and order-independent checksum (hex) over canonical values."""
    count, total = 0, 0
    for rows, _ in _batches(conn, table, None, batch_size):
        for row in rows:
            values = [
                canonical(conn.dialect, k, v) for (_, k), v in zip(table.columns, row, strict=True)
            ]
            total = (total + row_digest(table, values)) % _MOD
        count += len(rows)
    return count, f"{total:032x}"


def verify(
    source: Database,
    target: Database,
    tables: Sequence[Table],
    events: EventsDb | None = None,
    *,
    batch_size: int = 5000,
) -> list[TableCheck]:
    """Count and checksum every table on both sides (with ``events``: traces,
    observations and scores in the event store, over the columns it keeps), reading
    ``batch_size`` rows at a time."""
    checks = []
    with source.read() as src, target.read() as dst:
        for table in tables:
            side, theirs = dst, table
            if events is not None and table.name in _event_kinds():
                from .copy_events import sort_key, stored_columns

                kind = _event_kinds()[table.name]
                keep = tuple(c for c in table.columns if c[0] in stored_columns(kind))
                table = Table(table.name, keep, table.key)
                # Paged in ClickHouse's sorting key: each page a range of its index.
                theirs = Table(table.name, keep, sort_key(kind))
                side = events.conn(json_text=True)
            s_rows, s_sum = table_checksum(src, table, batch_size=batch_size)
            t_rows, t_sum = table_checksum(side, theirs, batch_size=batch_size)
            checks.append(TableCheck(table.name, s_rows, t_rows, s_sum, t_sum))
    return checks


def _event_kinds() -> dict[str, str]:
    from .copy_events import KINDS

    return KINDS


def _check_source(src: Conn, tables: Sequence[Table]) -> None:
    from .migrations import MIGRATIONS

    present = set(_source_tables(src))
    if "schema_migrations" not in present:
        raise CopyError("the source is not a Lanterna database (no schema_migrations table)")
    have = {r["name"] for r in src.all("SELECT name FROM schema_migrations")}
    missing = [name for name, _ in MIGRATIONS if name not in have]
    if missing:
        raise CopyError(
            f"the source's schema is not current ({len(missing)} migration(s) pending, first"
            f" {missing[0]}): run `lanterna migrate --database-url SOURCE` (or start this"
            " version's server on it once) first"
        )
    unknown = have - {name for name, _ in MIGRATIONS}
    if unknown:
        raise CopyError(
            f"the source has migrations this version does not know ({sorted(unknown)[0]}):"
            " copy it with the Lanterna version that wrote it"
        )
    wanted = {t.name for t in tables}
    extra = sorted(n for n in present - wanted - _NOT_COPIED if not n.startswith(_SOURCE_ONLY))
    if extra:
        raise CopyError(f"source tables the target does not have: {', '.join(extra)}")
    for table in tables:
        if table.name not in present:
            raise CopyError(f"the source has no table {table.name}")
        lacking = {n for n, _ in table.columns} - _source_columns(src, table.name)
        if lacking:
            raise CopyError(f"the source's {table.name} lacks {', '.join(sorted(lacking))}")


def _same_database(source: Database, target: Database) -> bool:
    if source.url == target.url:
        return True
    return source.describe() == target.describe()


def _open_progress(
    conn: Conn, tables: Sequence[Table], source_name: str, events: EventsDb | None
) -> dict[str, dict[str, Any]]:
    """The progress rows by table (created on an empty target); refuse a target that is
    not empty and not a copy of this source."""
    exists = conn.scalar("SELECT to_regclass(?)", [PROGRESS]) is not None
    if not exists:
        busy = [t.name for t in tables if conn.scalar(f"SELECT 1 FROM {_q(t.name)} LIMIT 1")]
        if events is not None:
            from .copy_events import is_empty

            if not is_empty(events):
                busy.append("the event store's traces, observations or scores")
        if busy:
            raise CopyError(
                f"the target is not empty ({', '.join(busy[:5])}"
                f"{', ...' if len(busy) > 5 else ''} hold rows) and holds no copy in"
                " progress: copy into a new, empty database"
            )
        conn.run(
            f"CREATE TABLE {PROGRESS} (table_name TEXT PRIMARY KEY, source TEXT NOT NULL,"
            " last_key TEXT, copied BIGINT NOT NULL, done BOOLEAN NOT NULL,"
            " updated_at TIMESTAMPTZ NOT NULL)"
        )
        conn.run(
            f"INSERT INTO {PROGRESS} VALUES (?, ?, NULL, 0, FALSE, ?)",
            [_WHOLE, source_name, now()],
        )
    rows = {r["table_name"]: r for r in conn.all(f"SELECT * FROM {PROGRESS}")}
    whole = rows.get(_WHOLE)
    if whole is None or whole["source"] != source_name:
        other = whole["source"] if whole else "an unknown source"
        raise CopyError(
            f"the target holds a copy of {other}, not of {source_name}: copy into a new,"
            " empty database"
        )
    return rows


def _copy_table(
    source: Database,
    target: Database,
    table: Table,
    state: dict[str, Any] | None,
    source_name: str,
    batch_size: int,
    progress: Progress | None,
    on_batch: Callable[[str, int], None] | None,
    elsewhere: Callable[[Sequence[str], list[list[Any]]], None] | None = None,
) -> int:
    """Copy what remains of one table (into the event store with ``elsewhere``); return
    the rows copied now."""
    after = _json.loads(state["last_key"]) if state and state["last_key"] else None
    done_before = int(state["copied"]) if state else 0
    names = [n for n, _ in table.columns]
    head = f"INSERT INTO {_q(table.name)} ({', '.join(_q(n) for n in names)})"
    upsert = (
        f"INSERT INTO {PROGRESS} (table_name, source, last_key, copied, done, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (table_name) DO UPDATE SET"
        " last_key = excluded.last_key, copied = excluded.copied, done = excluded.done,"
        " updated_at = excluded.updated_at"
    )
    copied = 0
    with source.read() as src:
        total = int(src.scalar(f"SELECT COUNT(*) FROM {_q(table.name)}") or 0)
        out = target.connect_writer()
        try:
            for rows, last in _batches(src, table, after, batch_size):
                values = []
                for row in rows:
                    try:
                        values.append(
                            [
                                canonical(src.dialect, kind, value)
                                for (_, kind), value in zip(table.columns, row, strict=True)
                            ]
                        )
                    except (CopyError, ValueError, TypeError) as exc:
                        raise CopyError(f"{table.name}: a value cannot be copied: {exc}") from None
                finished = len(rows) < batch_size
                if elsewhere is not None:  # acknowledged before the progress commits
                    elsewhere(names, values)
                with out.transaction():
                    if elsewhere is None:
                        out.insert(head, [_bound_row(out.dialect, table, v) for v in values])
                    out.run(
                        upsert,
                        [
                            table.name,
                            source_name,
                            _json.dumps(last),
                            done_before + copied + len(rows),
                            finished,
                            now(),
                        ],
                    )
                copied += len(rows)
                if progress is not None:
                    progress(table.name, done_before + copied, total, finished)
                if on_batch is not None:
                    on_batch(table.name, len(rows))
                if finished:
                    return copied
            with out.transaction():  # empty, or the last batch was exactly full
                out.run(
                    upsert,
                    [
                        table.name,
                        source_name,
                        _json.dumps(after) if after else None,
                        done_before + copied,
                        True,
                        now(),
                    ],
                )
            if progress is not None:
                progress(table.name, done_before + copied, total, True)
        finally:
            out.raw.close()
    return copied


def source_database(url: str) -> Database:
    """The source database of a copy: ``sqlite:///file``, an SQLite file or data folder
    path, or a PostgreSQL URL. An SQLite source must exist (nothing is created)."""
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        return Database(url)
    path = Path(url.removeprefix("sqlite:///") if url.startswith("sqlite:") else url).expanduser()
    if path.is_dir():
        path = path / "lanterna.db"
    if not path.is_file():
        raise CopyError(f"no SQLite database at {path}")
    try:
        sqlite3.connect(f"file:{path}?mode=ro", uri=True).close()
    except sqlite3.Error as exc:
        raise CopyError(f"{path}: {exc}") from None
    return Database(f"sqlite:///{path.resolve()}")


def copy_database(
    source: Database,
    target: Database,
    *,
    batch_size: int = 1000,
    progress: Progress | None = None,
    on_batch: Callable[[str, int], None] | None = None,
    events: EventsDb | None = None,
) -> CopyReport:
    """Copy every table of ``source`` into the PostgreSQL database ``target`` (migrated
    to the current schema first), continuing an interrupted copy of the same source,
    then verify both sides. ``on_batch(table, rows)`` runs after each committed batch
    (tests stop a copy there). With ``events`` (the ClickHouse event store), traces,
    observations and scores go there instead (:mod:`lanterna.store.copy_events`).
    Raises :class:`CopyError` when the copy cannot be made."""
    from .migrations import migrate

    if batch_size < 1:
        raise CopyError("the batch size must be at least 1")
    if _same_database(source, target):
        raise CopyError("the source and the target are the same database")
    if target.is_sqlite:
        raise CopyError("the target must be a PostgreSQL database (postgresql://...)")
    migrate(target)
    if events is not None:
        from .clickhouse.schema import migrate as migrate_events

        migrate_events(events, lambda: target.transaction(exclusive=True))
    with target.read() as dst:
        tables = target_tables(dst)
    with source.read() as src:
        _check_source(src, tables)
    source_name = source.describe()
    report = CopyReport()
    with target.transaction(exclusive=True) as conn:
        state = _open_progress(conn, tables, source_name, events)
    report.resumed = len(state) > 1
    for table in tables:
        row = state.get(table.name)
        if row is not None and row["done"]:
            continue
        elsewhere = None
        if events is not None and table.name in _event_kinds():
            from .copy_events import sink

            elsewhere = sink(events, _event_kinds()[table.name])
        report.copied[table.name] = _copy_table(
            source, target, table, row, source_name, batch_size, progress, on_batch, elsewhere
        )
    if events is not None:
        # The event store's rollups, from the copied events (the SQL rollup tables
        # were copied as rows; ClickHouse keeps its own). Again on a resumed copy.
        from .clickhouse.rollups import rebuild

        rebuild(events)
    with target.transaction() as conn:
        conn.run(
            f"UPDATE {PROGRESS} SET done = TRUE, updated_at = ? WHERE table_name = ?",
            [now(), _WHOLE],
        )
    report.checks = verify(source, target, tables, events)
    return report
