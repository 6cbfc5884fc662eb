"""A ClickHouse events database: its URL, its client, and a :class:`~lanterna.store.db.Conn`
over it so that the portable read queries of ``store/`` run on ClickHouse unchanged.

URLs (``--events-url`` / ``LANTERNA_EVENTS_URL``):

- ``clickhouse://user:password@host:8123/database`` (HTTP; ``clickhouses://`` for
  HTTPS, default port 8443): a ClickHouse server or cluster;
- ``chdb:///absolute/folder?database=name``: ClickHouse in-process (chDB), data in that
  folder; one process at a time. The test suite uses it; it runs the same engine and SQL.

The tables are ``ReplacingMergeTree``s named ``<table>_rows``; the names the queries use
(``traces``, ``observations``, ``scores``) are views that read them ``FINAL`` (the merged,
latest version of each row, deleted rows left out), see ``schema.py``.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from ... import _json
from ...errors import DomainError
from ..dialect import Dialect
from ..tables import COLUMNS, JSON

if TYPE_CHECKING:
    from ..db import Conn


class EventsUrlError(DomainError):
    """An events URL the server cannot use (the message never holds a password)."""

    status = 400
    error = "InvalidEventsUrl"


@dataclass(frozen=True, slots=True)
class EventsUrl:
    """A parsed events URL: ``kind`` is ``http`` (a server) or ``chdb`` (in-process)."""

    kind: str
    database: str
    host: str = ""
    port: int = 0
    secure: bool = False
    username: str = "default"
    password: str = ""
    path: str = ""

    @classmethod
    def parse(cls, url: str) -> EventsUrl:
        """Parse ``url``; raise :class:`EventsUrlError` for anything else."""
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        if parts.scheme == "chdb":
            if not parts.path.startswith("/") or parts.netloc:
                raise EventsUrlError("a chdb events URL is chdb:///absolute/folder?database=name")
            database = query.get("database", ["lanterna"])[0]
            return cls("chdb", _checked_name(database), path=parts.path)
        if parts.scheme in ("clickhouse", "clickhouses"):
            secure = parts.scheme == "clickhouses"
            database = parts.path.lstrip("/") or "lanterna"
            try:
                port = parts.port or (8443 if secure else 8123)
            except ValueError:
                raise EventsUrlError("the events URL's port is not a number") from None
            return cls(
                "http",
                _checked_name(database),
                host=parts.hostname or "localhost",
                port=port,
                secure=secure,
                username=unquote(parts.username or "default"),
                password=unquote(parts.password or ""),
            )
        raise EventsUrlError(
            "events URL: use clickhouse://user:password@host:8123/database or"
            " chdb:///absolute/folder?database=name"
        )


def _checked_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise EventsUrlError(f"events URL: {name!r} is not a plain database name")
    return name


# --- binding -------------------------------------------------------------------------


def naive_utc(value: datetime) -> datetime:
    """``value`` as ClickHouse stores a ``DateTime64(6, 'UTC')``: naive, in UTC (a
    naive ``value`` is taken to be UTC already)."""
    tz = value.tzinfo
    if tz is UTC:  # the common case (parsed timestamps are UTC): no conversion
        return value.replace(tzinfo=None)
    return value.astimezone(UTC).replace(tzinfo=None) if tz else value


def literal(value: Any) -> str:
    """``value`` as a ClickHouse SQL literal (the queries bind with ``?``)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime):
        value = naive_utc(value)
        return f"toDateTime64('{value.isoformat(sep=' ', timespec='microseconds')}', 6, 'UTC')"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def bind(sql: str, params: Sequence[Any]) -> str:
    """``sql`` with each ``?`` replaced by the next parameter as a literal."""
    if not params:
        return sql
    pieces = sql.split("?")
    if len(pieces) != len(params) + 1:
        raise ValueError(f"{len(pieces) - 1} placeholders for {len(params)} parameters")
    out = [pieces[0]]
    for value, piece in zip(params, pieces[1:], strict=True):
        out.append(literal(value))
        out.append(piece)
    return "".join(out)


class ClickHouseDialect(Dialect):
    """How the portable queries of ``store/`` are spelled on ClickHouse.

    Only what those queries use differs: JSON columns are ``String`` holding JSON text
    (as on SQLite), timestamps ``DateTime64(6, 'UTC')`` bound as literals."""

    name = "clickhouse"
    keeps_row_counts = False
    few_statements = True
    user_traces = "user_traces"
    whole_right_joins = True
    subquery_fence = ""  # ClickHouse computes a subquery's columns once

    def ts(self, dt: datetime | None) -> Any:
        return dt

    def by_index(self, table: str, index: str) -> str:
        return table

    def event_rows(
        self, table: str, time_column: str, where: str, params: list[Any], alias: str = ""
    ) -> tuple[str, list[Any]]:
        # The views read their tables FINAL, which reads every column of each granule
        # (thousands of rows) the skip index keeps, input and output included: a
        # trace's observations took 110-165 ms at 1 M observations. The keys of the
        # matching rows, read first from the table without FINAL (narrow columns, any
        # version, deleted or not: a superset), let the primary key select only their
        # granules: 31 ms. The condition is applied again to the merged row.
        outer = where.format(a=alias, traces="traces")
        inner = where.format(a="", traces="traces_rows")
        keys = f"({alias}{time_column}, {alias}id) IN"
        return (
            f"({outer}) AND {keys} (SELECT {time_column}, id FROM {table}_rows WHERE {inner})",
            [*params, *params],
        )

    def indexed_by(self, index: str) -> str:
        return ""

    def contains_text(self, column: str) -> str:
        return f"position({column}, ?) > 0"

    def text_search(self, column: str) -> str:
        # ``CAST(NULL AS String)`` is an error in ClickHouse: a trace without input or
        # output reads as empty text (no match), as SQL's NULL comparison does elsewhere.
        return f"positionCaseInsensitiveUTF8(ifNull(CAST({column} AS Nullable(String)), ''), ?) > 0"

    def json_array_contains(self, column: str) -> str:
        return f"has(JSONExtract(ifNull({column}, '[]'), 'Array(String)'), ?)"

    def json_array_filter(self, column: str) -> tuple[str, int]:
        return self.json_array_contains(column), 1

    def json_text_at(self, column: str) -> str:
        return f"JSONExtractString(ifNull({column}, '{{}}'), ?)"

    def json_number_at(self, column: str) -> str:
        return (
            f"if(JSONType(ifNull({column}, '{{}}'), ?) IN ('Int64', 'UInt64', 'Double'),"
            f" JSONExtractFloat(ifNull({column}, '{{}}'), ?), NULL)"
        )

    def epoch_seconds(self, column: str) -> str:
        return f"(toUnixTimestamp64Micro({column}) / 1000000.0)"

    def utc_day(self, column: str) -> str:
        return f"formatDateTime({column}, '%Y-%m-%d', 'UTC')"

    def utc_month(self, column: str) -> str:
        return f"formatDateTime({column}, '%Y-%m', 'UTC')"

    def time_bucket(self, column: str, granularity: str) -> str:
        # dateTrunc's week starts on Monday, as PostgreSQL's date_trunc
        start = f"toDateTime(dateTrunc('{granularity}', {column}, 'UTC'), 'UTC')"
        return f"formatDateTime({start}, '%Y-%m-%dT%H:%i:%S.000Z', 'UTC')"

    def seconds_between(self, end: str, start: str) -> str:
        return f"((toUnixTimestamp64Micro({end}) - toUnixTimestamp64Micro({start})) / 1000000.0)"

    def percentile(self, fraction: float, expr: str) -> str:
        # linear interpolation between the closest ranks, as percentile_cont; NULLs skipped
        return f"quantileExactInclusive({float(fraction)!r})({expr})"

    def collect(self, expr: str) -> str:
        return f"groupArray({expr})"  # skips NULLs

    def collected(self, value: Any) -> list[Any]:
        return [] if value is None else list(value)

    def json_sum_keys_containing(self, column: str) -> str:
        pairs = f"JSONExtractKeysAndValues(ifNull({column}, '{{}}'), 'Float64')"
        chosen = f"arrayFilter(x -> positionCaseInsensitiveUTF8(x.1, ?) > 0, {pairs})"
        return f"arrayReduce('sumOrNull', arrayMap(x -> x.2, {chosen}))"

    def sql(self, text: str) -> str:
        # A cast to a plain type refuses NULL on ClickHouse; the portable queries cast
        # values that may be NULL (a trace without observations has no cost).
        return text.replace(" AS DOUBLE PRECISION)", " AS Nullable(Float64))")

    def utc_hour(self, column: str) -> str:
        return f"formatDateTime({column}, '%Y-%m-%dT%H', 'UTC')"

    def search_hits(self, text: str) -> tuple[str, list[Any]] | None:
        return None

    def trace_search(self, text: str, *, narrowed: bool = True) -> tuple[str, list[Any]]:
        exact = f"({self.text_search('t.input')} OR {self.text_search('t.output')})"
        return exact, [text, text]


CLICKHOUSE = ClickHouseDialect()

#: Column names whose values are JSON (text in ClickHouse): a read hands them to the
#: layers above as the metadata database's driver would.
_JSON_NAMES = frozenset(
    {"trace_tags", *(c for cols in COLUMNS.values() for c, kind in cols.items() if kind is JSON)}
)


class _Cursor:
    """Enough of a DB-API cursor for :class:`~lanterna.store.db.Conn`."""

    def __init__(self, names: Sequence[str], rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self.description = [(n,) for n in names] if names else None
        self._rows = rows
        self.rowcount = rowcount

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None


class ChRaw:
    """A connection-like object over a ClickHouse client: ``execute(sql, params)``.

    Rows come back as the metadata database's driver would give them to the shapes:
    timestamps as aware UTC datetimes, JSON as text (``json_text``, as SQLite's driver)
    or as parsed values (as psycopg gives jsonb)."""

    def __init__(self, events: EventsDb, *, json_text: bool) -> None:
        self._events = events
        self._json_text = json_text
        self._limit: float | None = None

    @contextlib.contextmanager
    def time_limit(self, seconds: float, message: str) -> Iterator[None]:
        """Queries in the block stop after ``seconds`` (ClickHouse's
        ``max_execution_time``) and raise :class:`StatementTimeout` with ``message``."""
        from ..db import StatementTimeout

        self._limit = seconds
        try:
            yield
        except Exception as exc:
            if "TIMEOUT_EXCEEDED" in str(exc) or "Timeout exceeded" in str(exc):
                raise StatementTimeout(message) from None
            raise
        finally:
            self._limit = None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        text = bind(sql, params)
        if not text.lstrip()[:6].upper().startswith(("SELECT", "WITH")):
            self._events.command(text)
            return _Cursor((), [], 0)
        names, rows = self._events.query(text, limit=self._limit)
        fix = [
            i
            for i, n in enumerate(names)
            if n in _JSON_NAMES or any(isinstance(r[i], datetime) for r in rows[:1])
        ]
        if fix and rows:
            rows = [self._convert(names, row, fix) for row in rows]
        return _Cursor(names, rows, len(rows))

    def _convert(
        self, names: Sequence[str], row: tuple[Any, ...], fix: list[int]
    ) -> tuple[Any, ...]:
        out = list(row)
        for i in fix:
            value = out[i]
            if isinstance(value, datetime):
                out[i] = value if value.tzinfo else value.replace(tzinfo=UTC)
            elif isinstance(value, str) and not self._json_text and names[i] in _JSON_NAMES:
                # (an aggregate may share a JSON column's name: ``input`` token sums)
                out[i] = _json.loads(value)
        return tuple(out)


_CHDB_LOCK = threading.RLock()
_CHDB_CLIENTS: dict[tuple[str, str], Any] = {}


class EventsDb:
    """One ClickHouse events database: a client (thread-safe through a lock for chDB,
    which runs in this process) with this project's query settings."""

    #: Settings every query runs with: SQL joins that find nothing give NULLs, as
    #: in SQLite and PostgreSQL; statements up to 16 MiB (ids are bound as literals: a
    #: batch's thousands of ids, or long ones, pass ClickHouse's default 256 KiB).
    SETTINGS = {
        "join_use_nulls": 1,
        "allow_experimental_correlated_subqueries": 1,
        "max_query_size": 16 * 2**20,
    }

    def __init__(self, url: str) -> None:
        self.url = EventsUrl.parse(url)
        # chDB is one engine in this process: its clients take turns. An HTTP client
        # is safe to share between threads (no session id).
        self._lock: AbstractContextManager[Any] = (
            _CHDB_LOCK if self.url.kind == "chdb" else contextlib.nullcontext()
        )
        self._client = _open(self.url)
        #: table -> column name -> type, read once per table (see :meth:`insert`)
        self._types: dict[str, dict[str, str]] = {}

    @property
    def database(self) -> str:
        """The ClickHouse database the tables live in."""
        return self.url.database

    def query(
        self, sql: str, *, limit: float | None = None
    ) -> tuple[Sequence[str], list[tuple[Any, ...]]]:
        """Run a SELECT (stopped after ``limit`` seconds); return column names and rows."""
        settings: dict[str, Any] = dict(self.SETTINGS)
        if limit:
            settings["max_execution_time"] = limit
            settings["timeout_overflow_mode"] = "throw"
        with self._lock:
            result = self._client.query(sql, settings=settings)
        return result.column_names, list(result.result_rows)

    def command(self, sql: str) -> None:
        """Run a statement that returns no rows (DDL: the column types :meth:`insert`
        holds are read again after one)."""
        self._types.clear()
        with self._lock:
            self._client.command(sql, settings=self.SETTINGS)

    def insert(self, table: str, rows: list[list[Any]], columns: Sequence[str]) -> None:
        """Insert ``rows`` synchronously: when this returns, ClickHouse has them.

        The columns' types are read once per table and handed to the client, which
        otherwise asks for them (``DESCRIBE TABLE``) before every insert: 0.6-1.8 ms of
        an insert's 4-5 ms in chDB. Tables change only in migrations, which run before
        this process writes."""
        names = list(columns)
        types = self._types.get(table)
        if types is None or not all(name in types for name in names):
            _, described = self.query(f"DESCRIBE TABLE {table}")
            types = self._types[table] = {str(r[0]): str(r[1]) for r in described}
        with self._lock:
            self._client.insert(
                table, rows, column_names=names, column_type_names=[types[n] for n in names]
            )

    def conn(self, *, json_text: bool) -> Any:
        """A :class:`~lanterna.store.db.Conn` running the portable queries here."""
        from ..db import Conn

        return Conn(ChRaw(self, json_text=json_text), CLICKHOUSE)

    def close(self) -> None:
        """Close the client (chDB's engine and clients stay for the process)."""
        if self.url.kind == "http":
            self._client.close()


def _open(url: EventsUrl) -> Any:
    """A clickhouse-connect client for ``url``, its database created if missing."""
    try:
        import clickhouse_connect
    except ImportError:  # pragma: no cover - the [clickhouse] extra is not installed
        raise EventsUrlError(
            "the ClickHouse event store needs the clickhouse extra:"
            " pip install 'lanterna[clickhouse]'"
        ) from None
    if url.kind == "chdb":
        with _CHDB_LOCK:  # one client per database for the process's engine
            client = _CHDB_CLIENTS.get((url.path, url.database))
            if client is None:
                admin = clickhouse_connect.get_client(dsn=f"chdb://{url.path}")
                admin.command(f"CREATE DATABASE IF NOT EXISTS {url.database}")
                client = clickhouse_connect.get_client(
                    dsn=f"chdb://{url.path}", database=url.database
                )
                _CHDB_CLIENTS[(url.path, url.database)] = client
            return client
    server: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "username": url.username,
        "password": url.password,
        "secure": url.secure,
        "autogenerate_session_id": False,
    }
    admin = clickhouse_connect.get_client(**server)
    admin.command(f"CREATE DATABASE IF NOT EXISTS {url.database}")
    admin.close()
    return clickhouse_connect.get_client(**server, database=url.database)


def events_on(events: EventsDb, conn: Conn) -> Conn:
    """A Conn on ClickHouse whose rows look like those of ``conn``'s database (JSON as
    text for SQLite, parsed for PostgreSQL): what ``Store.events_conn`` gives."""
    ch: Conn = events.conn(json_text=conn.dialect.name != "postgresql")
    return ch
