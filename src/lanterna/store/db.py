"""Connections: open a database by URL, hand out read connections, run migrations.

SQLite: one file in WAL mode; the single writer (see ``writer.py``) owns the only
write connection, readers take connections from a small pool. PostgreSQL: psycopg 3,
a write connection for the writer and a ``psycopg_pool`` pool for reads.
"""

from __future__ import annotations

import math
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import DomainError
from .dialect import POSTGRES, SQLITE, Dialect, magnitude
from .files import secure_sqlite


def is_connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL's connection failing (the server restarted, went
    away, or refused a new connection): the request may succeed once it is back."""
    try:
        import psycopg
    except ImportError:  # SQLite-only install
        return False
    # No SQLSTATE: the connection itself failed (also psycopg_pool's PoolTimeout);
    # 57P01-03: the server is shutting down, crashed, or cannot take connections yet.
    return isinstance(exc, psycopg.OperationalError) and getattr(exc, "sqlstate", None) in (
        None,
        "57P01",
        "57P02",
        "57P03",
    )


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is the database saying its disk (or quota) is full: SQLite's
    ``SQLITE_FULL``, PostgreSQL's ``disk_full`` (SQLSTATE 53100)."""
    if isinstance(exc, sqlite3.OperationalError):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    return getattr(exc, "sqlstate", None) == "53100"


class StatementTimeout(DomainError):
    """422: a read ran longer than the server's statement timeout and was cancelled
    (Langfuse answers 422 when a query exceeds its resource limits)."""

    status = 422
    error = "QueryTimeoutError"


class Conn:
    """A DB-API connection plus its dialect, with dict rows and ``?`` placeholders."""

    __slots__ = ("dialect", "raw")

    def __init__(self, raw: Any, dialect: Dialect) -> None:
        self.raw = raw
        self.dialect = dialect

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a query and return every row as a dict."""
        cur = self.raw.execute(self.dialect.sql(sql), params)
        if cur.description is None:
            return []
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def tuples(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query and return every row as a tuple (no dict per row: for reads of
        thousands of rows)."""
        return list(self.raw.execute(self.dialect.sql(sql), params).fetchall())

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """Run a query and return its first row as a dict, or None."""
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run a query and return the first column of its first row, or None."""
        row = self.raw.execute(self.dialect.sql(sql), params).fetchone()
        return None if row is None else row[0]

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement and return the number of rows it touched."""
        cur = self.raw.execute(self.dialect.sql(sql), params)
        return int(cur.rowcount or 0)

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for each parameter row (``executemany``)."""
        cur = self.raw.cursor()
        cur.executemany(self.dialect.sql(sql), list(rows))

    def insert(self, head: str, rows: Sequence[Sequence[Any]], tail: str = "") -> None:
        """Run ``head VALUES (?, ...), (?, ...) tail`` for ``rows`` (all of one width).

        On SQLite as multi-row statements of up to 64 rows: each statement is one trip
        out of and back into the GIL (``executemany`` makes one per row, and under load
        each re-entry can wait for a busy request thread). On PostgreSQL, whose driver
        re-parses long statements, as one pipelined ``executemany``.
        """
        if not rows:
            return
        most = min(_MAX_ROWS, self.dialect.insert_rows)
        width = len(rows[0])
        if most <= 1:
            self.many(_values_sql(head, width, 1, tail), rows)
            return
        start = 0
        while start < len(rows):
            # Power-of-two chunks: only a few statement shapes per table to cache.
            size = min(most, 1 << ((len(rows) - start).bit_length() - 1))
            params = [value for row in rows[start : start + size] for value in row]
            self.raw.execute(_values_sql(head, width, size, tail), params)
            start += size

    @contextmanager
    def time_limit(
        self, seconds: float | None, *, clock: Callable[[], float] = time.monotonic
    ) -> Iterator[Conn]:
        """Cancel what runs in the block after ``seconds`` (None or 0: no limit); a
        cancelled statement raises :class:`StatementTimeout`. PostgreSQL: a
        ``statement_timeout`` local to a transaction around the block (per statement; a
        read connection is otherwise autocommit). SQLite: a progress handler interrupts
        the running statement once ``clock`` passes the deadline, ``seconds`` after the
        block starts."""
        if not seconds or seconds <= 0:
            yield self
            return
        message = f"The query ran longer than the server's limit of {seconds:g} s"
        if self.dialect is SQLITE:
            deadline = clock() + seconds
            self.raw.set_progress_handler(lambda: 1 if clock() > deadline else 0, 100)
            try:
                yield self
            except sqlite3.OperationalError as exc:
                if "interrupted" in str(exc):
                    raise StatementTimeout(message) from None
                raise
            finally:
                self.raw.set_progress_handler(None, 0)
            return
        if self.dialect.name == "clickhouse":  # the event store's own limit
            with self.raw.time_limit(seconds, message):
                yield self
            return
        import psycopg

        millis = max(1, math.ceil(seconds * 1000))
        try:
            with self.raw.transaction():
                self.raw.execute(
                    "SELECT set_config('statement_timeout', %s, true)", (f"{millis}ms",)
                )
                yield self
        except psycopg.errors.QueryCanceled:
            raise StatementTimeout(message) from None

    def begin(self, *, exclusive: bool = False) -> None:
        """Start a write transaction holding the database's write lock (see
        :meth:`Dialect.begin`; ``exclusive`` also holds off other writers on PostgreSQL)."""
        self.raw.execute(self.dialect.begin(exclusive=exclusive))

    def commit(self) -> None:
        """Commit the transaction :meth:`begin` started."""
        self.raw.execute("COMMIT")

    def rollback(self) -> None:
        """Roll back the transaction :meth:`begin` started."""
        self.raw.execute("ROLLBACK")

    @contextmanager
    def transaction(self, *, exclusive: bool = False) -> Iterator[Conn]:
        """One write transaction on this connection: committed when the block ends,
        rolled back when it raises (anything, ``SystemExit`` too)."""
        self.begin(exclusive=exclusive)
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        self.commit()


# 64 rows x 35 columns stays far below SQLite's (32,766) and PostgreSQL's (65,535)
# limits on bound parameters per statement.
_MAX_ROWS = 64


@lru_cache(maxsize=256)
def _values_sql(head: str, width: int, rows: int, tail: str) -> str:
    one = "(" + ", ".join("?" * width) + ")"
    return f"{head} VALUES {', '.join([one] * rows)}{tail}"


def _sqlite_connect(path: str, *, readonly: bool) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves (the writer uses
    # BEGIN IMMEDIATE so it never fails half-way on a lock upgrade).
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    # WAL: readers never block the writer and the writer never blocks readers.
    raw.execute("PRAGMA journal_mode=WAL")
    # FULL: the WAL is fsynced at every commit, so a 2xx survives a power cut, not just
    # a process crash. The writer's connection switches to NORMAL and has a syncer
    # thread fsync the WAL before any commit is acknowledged (see writer.py).
    raw.execute("PRAGMA synchronous=FULL")
    # Wait for a lock instead of failing at once (only migrations and tools contend).
    raw.execute("PRAGMA busy_timeout=30000")
    # 64 MiB page cache per connection: list queries scan hot index pages repeatedly.
    raw.execute("PRAGMA cache_size=-65536")
    # Temporary B-trees for ORDER BY / GROUP BY stay in memory.
    raw.execute("PRAGMA temp_store=MEMORY")
    if readonly:
        # A read connection can never write by mistake.
        raw.execute("PRAGMA query_only=1")
    # Exact percentiles (the metrics query API); PostgreSQL has percentile_cont.
    raw.create_aggregate("lanterna_percentile", 2, _Percentile)  # type: ignore[arg-type]
    # A session's cost magnitude (store/session_totals.py); PostgreSQL computes it in SQL.
    raw.create_function("lanterna_magnitude", 1, magnitude, deterministic=True)
    return raw


class _Percentile:
    """SQLite aggregate ``lanterna_percentile(value, fraction)``: the exact quantile,
    interpolated between the closest ranks as PostgreSQL's ``percentile_cont``."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.fraction = 0.5

    def step(self, value: Any, fraction: float) -> None:
        self.fraction = float(fraction)
        if value is not None:
            self.values.append(float(value))

    def finalize(self) -> float | None:
        return percentile_cont(self.values, self.fraction)


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """The ``fraction`` (0..1) quantile of ``values`` by linear interpolation between
    the closest ranks (PostgreSQL's ``percentile_cont``); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


#: Longest a read waits while the writer restarts the WAL (``Database.hold_readers``).
READER_HOLD_SECONDS = 2.0


class Database:
    """A database opened from a URL: ``sqlite:///path.db``, a path, or ``postgresql://``."""

    def __init__(
        self, url: str, *, read_pool_size: int = 8, sqlite_memory_mib: int | None = None
    ) -> None:
        """``sqlite_memory_mib``: cap SQLite's memory in this process (its page caches,
        sorts) at about that many MiB (``PRAGMA soft_heap_limit``, which is per process:
        the last database opened with a cap sets it); None or 0 leaves it as it is."""
        self.url = url
        self._lock = threading.Lock()
        self._closed = False
        if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            from psycopg_pool import ConnectionPool

            self.dialect: Dialect = POSTGRES
            self._pg_url = url.replace("postgresql+psycopg://", "postgresql://", 1)
            self._pool = ConnectionPool(
                self._pg_url,
                min_size=1,
                max_size=read_pool_size,
                kwargs={"autocommit": True},
                open=True,
                # After a PostgreSQL restart the idle connections are dead: test each
                # one as it is handed out, and wait at most 5 s for one (then 503).
                check=ConnectionPool.check_connection,
                timeout=5.0,
            )
            self.path: Path | None = None
        else:
            self.dialect = SQLITE
            path = url.removeprefix("sqlite:///") if url.startswith("sqlite:") else url
            self.path = Path(path).expanduser().resolve()
            secure_sqlite(self.path)  # folder 0700, database, WAL and SHM 0600
            self._readers: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
            # Open unless the writer is restarting the WAL (``hold_readers``).
            self._gate = threading.Event()
            self._gate.set()
            self._reader_count = 0
            self._read_pool_size = read_pool_size
            if sqlite_memory_mib:
                cap = sqlite3.connect(":memory:")
                cap.execute(f"PRAGMA soft_heap_limit={int(sqlite_memory_mib) * 2**20}")
                cap.close()

    @property
    def is_sqlite(self) -> bool:
        """True when this database is an SQLite file."""
        return self.dialect is SQLITE

    def describe(self) -> str:
        """Where the data lives, without any password."""
        if self.path is not None:
            return str(self.path)
        from urllib.parse import urlsplit

        parts = urlsplit(self._pg_url)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
        return f"postgresql://{host}{port}{parts.path}"

    def connect_writer(self) -> Conn:
        """A new connection for writing (the writer thread, migrations, tools)."""
        if self.path is not None:
            return Conn(_sqlite_connect(str(self.path), readonly=False), self.dialect)
        import psycopg

        return Conn(psycopg.connect(self._pg_url, autocommit=True), self.dialect)

    @contextmanager
    def transaction(self, *, exclusive: bool = False) -> Iterator[Conn]:
        """A write connection of its own in one transaction, for work outside the
        server's writer (the CLI, migrations, tests): committed when the block ends,
        rolled back when it raises, closed either way. It waits for the database's
        write lock, so it runs between a running server's write transactions."""
        conn = self.connect_writer()
        try:
            with conn.transaction(exclusive=exclusive):
                yield conn
        finally:
            conn.raw.close()

    @contextmanager
    def hold_readers(self) -> Iterator[None]:
        """New reads of this process wait (at most ``READER_HOLD_SECONDS``) until the
        block ends; reads already running go on. The writer restarts the WAL inside it:
        SQLite can only do that once no read uses the log, and a read starting while
        the restart waits would make it wait for that read too (with reads that never
        pause, the restart then never comes and the WAL grows without bound)."""
        if self.path is None:
            yield
            return
        self._gate.clear()
        try:
            yield
        finally:
            self._gate.set()

    @contextmanager
    def read(self) -> Iterator[Conn]:
        """Borrow a read connection (autocommit; each statement sees committed data)."""
        if self.path is None:
            with self._pool.connection() as pg:
                yield Conn(pg, self.dialect)
            return
        self._gate.wait(READER_HOLD_SECONDS)
        try:
            lite = self._readers.get_nowait()
        except queue.Empty:
            lite = _sqlite_connect(str(self.path), readonly=True)
        try:
            yield Conn(lite, self.dialect)
        finally:
            if lite.in_transaction:
                lite.rollback()
            if self._closed or self._readers.qsize() >= self._read_pool_size:
                lite.close()
            else:
                self._readers.put(lite)

    def close(self) -> None:
        """Close pooled connections."""
        self._closed = True
        if self.path is None:
            self._pool.close()
            return
        while True:
            try:
                self._readers.get_nowait().close()
            except queue.Empty:
                break


def default_sqlite_url(data_dir: str | os.PathLike[str]) -> str:
    """The SQLite URL inside ``data_dir``."""
    return "sqlite:///" + str(Path(data_dir).expanduser().resolve() / "lanterna.db")
