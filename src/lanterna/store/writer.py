"""The single writer: one thread, one write connection, group commit.

Every write in the process goes through :meth:`Writer.submit`. The thread takes the
first waiting unit of work, then everything else already queued (up to a limit), runs
them all in one transaction (each unit inside its own SAVEPOINT, so one failing unit
never takes its neighbours down) and commits once. Only after that commit does any
caller's future resolve: an HTTP 2xx is sent after the data is durable.

On SQLite the writer never checkpoints: copying WAL pages back into the database
file is done by a :class:`Checkpointer` thread on its own connection, so a commit
costs only its WAL append. Checkpointing in the writer (SQLite's default, every 1000
pages) took about 40% of each commit under load, because random-id index pages
written by many commits were copied back again and again.

Nor does the SQLite writer wait for the disk: its connection commits with
``synchronous=NORMAL`` (the WAL frames reach the OS, not yet the disk) and starts the
next transaction at once, while a :class:`WalSyncer` thread fsyncs the WAL file and
only then resolves the committed group's futures. An acknowledged write is on disk,
exactly as with ``synchronous=FULL``, but the fsync of one group overlaps the next
group's work instead of stalling the only writer (it was about a quarter of its time).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Protocol, TypeVar, cast

from ..errors import Unavailable
from .db import Conn, Database, is_connection_lost, is_disk_full

log = logging.getLogger("lanterna.writer")

T = TypeVar("T")
Work = Callable[[Conn], Any]


class Combinable(Protocol):
    """A unit of work that neighbouring units of the same kind can join.

    Units with equal ``combine_key`` (not None) that are queued next to each other run
    as the one unit ``type(unit).combine(units)`` returns: one set of statements
    instead of one per unit (see :meth:`Writer._run_combined`). Plain callables have no
    ``combine_key`` and always run alone. :class:`~lanterna.store.write.PreparedEvents`
    is the combinable unit of ingestion.
    """

    @property
    def combine_key(self) -> Hashable | None:
        """Units with equal keys may combine; None never combines."""

    def __call__(self, conn: Conn) -> Any:
        """Do the unit's writes on ``conn`` (inside the writer's transaction)."""

    @classmethod
    def combine(cls, units: list[Any]) -> Work:
        """One unit that does what ``units`` (all of this type, same key) do, in order."""


_STOP = object()

#: Above this WAL size the writer itself finishes a checkpoint and restarts the log,
#: so that the file cannot grow without bound under sustained load.
WAL_RESTART_BYTES = 128 * 1024 * 1024
#: When a restart finds readers of old snapshots, at most this often the writer holds
#: new reads back (``Database.hold_readers``) and waits for the running ones ...
HELD_RESTART_EVERY_SECONDS = 5.0
#: ... this long (reads wait at most ``db.READER_HOLD_SECONDS``).
HELD_RESTART_WAIT_MS = 1000
#: The WAL file is cut back to this size whenever it restarts.
WAL_KEEP_BYTES = 128 * 1024 * 1024


class Checkpointer:
    """Copies committed WAL frames into an SQLite database file, off the write path.

    ``PASSIVE`` checkpoints never take the write lock, so they run beside the writer's
    transactions; pages rewritten by many commits in one interval are copied once.
    """

    def __init__(self, db: Database, *, interval: float = 0.5) -> None:
        self.db = db
        self.interval = interval
        self._wake = threading.Event()
        # Set once by stop(): ends the gathering wait at once instead of after it.
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0

    def start(self) -> None:
        """Open its connection and start the thread."""
        conn = self.db.connect_writer()
        self._thread = threading.Thread(
            target=self._run, args=(conn,), name="lanterna-checkpointer", daemon=True
        )
        self._thread.start()

    def committed(self) -> None:
        """Tell the checkpointer that there are new frames to copy."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Run a last checkpoint and stop."""
        if self._thread is None:
            return
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self, conn: Conn) -> None:
        try:
            while not self._stopping.is_set():
                self._wake.wait()
                # Gather the commits of one interval into one checkpoint; a stop ends
                # the wait early (the last checkpoint below copies what is left).
                if self._stopping.wait(self.interval):
                    break
                self._wake.clear()
                self._checkpoint(conn)
            self._checkpoint(conn)
        finally:
            conn.raw.close()

    def _checkpoint(self, conn: Conn) -> None:
        try:
            conn.raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.runs += 1
        except Exception as exc:  # the next one copies what this one could not
            if is_disk_full(exc):
                log.warning("background checkpoint failed: the disk is full")
            else:
                log.warning("background checkpoint failed", exc_info=True)


class WalSyncer:
    """Makes committed WAL frames durable, then resolves the futures waiting on them.

    The writer hands each committed group's results over in commit order; one fsync
    of the WAL file covers every group committed before it started, so under load one
    fsync serves several groups. SQLite never overwrites a commit's frames before a
    checkpoint has copied them into the database file and fsynced it (also with
    ``synchronous=NORMAL``), so after this fsync the commit survives a power cut.

    A failed fsync is final, as in PostgreSQL: Linux may mark the pages that failed to
    reach the disk clean and report the error only once, so a later fsync could succeed
    with a hole in the log. From the first failure on, every waiting request gets the
    error and ``on_failure`` is called (the writer stops taking work).
    """

    def __init__(
        self, wal_path: str, on_failure: Callable[[BaseException], None] | None = None
    ) -> None:
        self.wal_path = wal_path
        self.on_failure = on_failure
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._fd: int | None = None
        self._thread: threading.Thread | None = None
        self.syncs = 0
        #: the fsync error that stopped this syncer, if any
        self.error: BaseException | None = None

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._run, name="lanterna-wal-sync", daemon=True)
        self._thread.start()

    def committed(self, results: Results) -> None:
        """Resolve ``results`` (future, ok, value) once the WAL is on disk."""
        self._queue.put(results)

    def finish(self) -> None:
        """No more commits: sync and resolve what is queued, then end the thread. Called
        by the writer thread, the only producer, so nothing committed is left behind."""
        self._queue.put(_STOP)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (after :meth:`finish`)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _sync(self) -> None:
        if self._fd is None:
            self._fd = os.open(self.wal_path, os.O_RDONLY)
        # SQLite keeps writing to the WAL it opened; if that file was unlinked, syncing
        # a new file at the same path would acknowledge frames that are not on disk.
        if os.fstat(self._fd).st_nlink == 0:
            raise OSError(f"the WAL file {self.wal_path} was deleted while in use")
        os.fsync(self._fd)
        self.syncs += 1

    def _run(self) -> None:
        stopping = False
        try:
            while not stopping:
                batches = [self._queue.get()]
                while True:  # everything committed so far shares this fsync
                    try:
                        batches.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                if batches[-1] is _STOP:
                    stopping = True
                    batches.pop()
                if batches:
                    self._settle(batches)
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _settle(self, batches: list[Results]) -> None:
        if self.error is None:
            try:
                self._sync()
            except Exception as exc:  # e.g. EIO
                log.critical(
                    "fsync of the SQLite WAL failed: the server stops writing; recent"
                    " commits may not be on disk (restart it once the disk is fixed)",
                    exc_info=True,
                )
                self.error = exc
                if self.on_failure is not None:
                    self.on_failure(exc)
        for results in batches:
            if self.error is None:
                _resolve(results)
            else:
                _fail(results, self.error)


Results = list[tuple[concurrent.futures.Future[Any], bool, Any]]


def _resolve(results: Results) -> None:
    """Give each future its unit's value or exception."""
    for future, ok, value in results:
        if future.done():  # resolved already (the group failed as a whole)
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _fail(results: Results, exc: BaseException) -> None:
    """``exc`` for the units that wrote (they are not durable); a unit that failed on its
    own (rolled back, nothing written) keeps its own error."""
    for future, ok, value in results:
        if not future.done():
            future.set_exception(exc if ok else value)


class Expected:
    """A promise that a unit of work will be submitted soon (see :meth:`Writer.expect`)."""

    __slots__ = ("_open", "_writer")

    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self._open = True
        writer._expecting(1)

    def done(self) -> None:
        """The work was submitted, or will not be: stop waiting for it."""
        if self._open:
            self._open = False
            self._writer._expecting(-1)

    def __enter__(self) -> Expected:
        return self

    def __exit__(self, *exc: object) -> None:
        self.done()


class DiskFullError(Unavailable):
    """503: the database's disk is full; nothing of the request was written. The writer
    keeps running: writes succeed again as soon as space is freed."""

    def __init__(self) -> None:
        super().__init__(
            "The server's disk is full: nothing of this request was stored."
            " Retry once space is freed."
        )


class DatabaseUnavailableError(Unavailable):
    """503: the connection to PostgreSQL is lost (a restart, a failover); nothing of the
    request was written. The writer reconnects for the next request."""

    def __init__(self) -> None:
        super().__init__(
            "The database is unavailable: nothing of this request was stored. Retry shortly."
        )


class WriterClosedError(Unavailable, RuntimeError):
    """The writer was stopped; nothing more can be written (503: nothing of the request
    was written, the client may retry against a healthy server)."""


class Writer:
    """Serialises all writes of a process into grouped transactions."""

    def __init__(self, db: Database, *, max_group: int = 256, linger: float = 0.005) -> None:
        self.db = db
        self.max_group = max_group
        #: How long a group may wait for expected work before it commits without it.
        self.linger = linger
        self._expected = 0
        self._expected_lock = threading.Lock()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._submit_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._checkpointer: Checkpointer | None = None
        self._syncer: WalSyncer | None = None
        self._wal = str(db.path) + "-wal" if db.path is not None else None
        self._last_held_restart = -HELD_RESTART_EVERY_SECONDS
        self.commits = 0
        self.units = 0

    def start(self) -> None:
        """Open the write connection and start the thread."""
        if self._thread is not None:
            return
        conn = self._connect()
        if self._wal is not None:
            # Checkpoints run in the Checkpointer (see the module docstring).
            conn.raw.execute("PRAGMA wal_autocheckpoint=0")
            conn.raw.execute(f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}")
            # The WalSyncer fsyncs each commit before it is acknowledged.
            conn.raw.execute("PRAGMA synchronous=NORMAL")
            self._syncer = WalSyncer(self._wal, on_failure=self._fsync_failed)
            self._syncer.start()
            self._checkpointer = Checkpointer(self.db)
            self._checkpointer.start()
        self._thread = threading.Thread(
            target=self._run, args=(conn,), name="lanterna-writer", daemon=True
        )
        self._thread.start()

    def _connect(self) -> Conn:
        conn = self.db.connect_writer()
        for statement in conn.dialect.writer_setup:
            conn.raw.execute(statement)
        return conn

    def _usable(self, conn: Conn) -> Conn | None:
        """``conn``, or a new connection when PostgreSQL dropped it; None while the
        database cannot be reached (the group then fails with a 503)."""
        if self._wal is not None or not (conn.raw.closed or conn.raw.broken):
            return conn
        try:
            conn.raw.close()
            fresh = self._connect()
        except Exception as exc:
            if not is_connection_lost(exc):
                raise
            return None
        log.warning("reconnected the writer to the database")
        return fresh

    def submit(self, work: Callable[[Conn], T]) -> concurrent.futures.Future[T]:
        """Queue ``work(conn)``; the future resolves after its transaction commits."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._submit_lock:  # never into the queue after the writer's last drain
            if self._closed:
                future.set_exception(self._closed_error())
                return future
            self._queue.put((work, future))
        return future

    def expect(self) -> Expected:
        """Announce work that is being prepared (parsed, validated) and will be submitted.

        While any is announced, the writer lets a group wait up to ``linger`` seconds
        for it: one commit for several requests costs much less than one each, because
        every commit rewrites the index pages it touched. Use as a context manager
        around preparing and submitting (``done()`` on submit or on failure).
        """
        return Expected(self)

    def _expecting(self, delta: int) -> None:
        with self._expected_lock:
            self._expected += delta

    async def run(self, work: Callable[[Conn], T]) -> T:
        """Queue ``work`` and wait (asynchronously) until it is committed."""
        return await asyncio.wrap_future(self.submit(work))

    def run_sync(self, work: Callable[[Conn], T], timeout: float | None = None) -> T:
        """Queue ``work`` and block until it is committed."""
        return self.submit(work).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish what is queued, then stop the threads."""
        if self._thread is None:
            self._closed = True
            return
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._syncer is not None:
            # The writer thread tells the syncer to finish once its last group is handed
            # over; if that thread is still busy, the syncer stays to resolve it.
            self._syncer.join(timeout)
        if self._checkpointer is not None:
            self._checkpointer.stop(timeout)

    def _closed_error(self) -> WriterClosedError:
        if self._syncer is not None and self._syncer.error is not None:
            return WriterClosedError(
                "the server stopped writing after an fsync of its database failed"
                f" ({self._syncer.error}); restart it once the disk is fixed"
            )
        return WriterClosedError("the writer is stopped")

    def _fsync_failed(self, exc: BaseException) -> None:
        # Called by the syncer: writing on after a failed fsync could acknowledge commits
        # behind a hole in the log. Take no more work; what is queued fails.
        self._closed = True
        self._queue.put(_STOP)

    def _run(self, conn: Conn) -> None:
        stopping = False
        try:
            while not stopping:
                first = self._queue.get()
                if first is _STOP:
                    break
                if self._syncer is not None and self._syncer.error is not None:
                    first[1].set_exception(self._closed_error())  # no commit after that
                    break
                group = [first]
                deadline = time.monotonic() + self.linger
                while len(group) < self.max_group:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        wait = deadline - time.monotonic()
                        if self._expected <= 0 or wait <= 0:
                            break
                        try:  # announced work is on its way: let it join this commit
                            item = self._queue.get(timeout=wait)
                        except queue.Empty:
                            break
                    if item is _STOP:
                        stopping = True
                        break
                    group.append(item)
                usable = self._usable(conn)
                if usable is None:
                    for _work, future in group:
                        if future.set_running_or_notify_cancel():
                            future.set_exception(DatabaseUnavailableError())
                    continue
                conn = usable
                self._commit_group(conn, group)
                if self._checkpointer is not None:
                    self._checkpointer.committed()
                    self._bound_wal(conn)
        except BaseException:  # e.g. SystemExit from a unit: its group failed already
            log.critical("the writer stopped: no more writes in this process", exc_info=True)
        finally:
            # Stopped, or died of a BaseException: nothing queued may wait forever.
            with self._submit_lock:
                self._closed = True
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not _STOP and not item[1].done():
                        item[1].set_exception(self._closed_error())
            if self._syncer is not None:
                # After the last group this thread handed over; and wait for it: closing
                # the last connection checkpoints and deletes the WAL, which must not
                # happen before the syncer has fsynced (and answered) what is in it.
                self._syncer.finish()
                self._syncer.join()
            conn.raw.close()

    def _bound_wal(self, conn: Conn) -> None:
        assert self._wal is not None
        try:
            size = os.stat(self._wal).st_size
        except OSError:
            return
        if size <= WAL_RESTART_BYTES:
            return
        # Between transactions: finish the checkpoint (most frames are copied already)
        # so that the next transaction writes the log from its start. RESTART waits
        # for readers of old snapshots: first only briefly, so that a long query never
        # stalls writes; the next commit tries again.
        if self._restart_wal(conn, wait_ms=50):
            return
        # Readers that never pause (a dashboard under load) hold an old snapshot at
        # every moment, and the WAL would grow without bound: now and then, new reads
        # of this process are held back while the restart waits for the running ones.
        now = time.monotonic()
        if now - self._last_held_restart < HELD_RESTART_EVERY_SECONDS:
            return
        self._last_held_restart = now
        with self.db.hold_readers():
            if not self._restart_wal(conn, wait_ms=HELD_RESTART_WAIT_MS):
                log.info("WAL restart waited %d ms for readers in vain", HELD_RESTART_WAIT_MS)

    def _restart_wal(self, conn: Conn, wait_ms: int) -> bool:
        """``wal_checkpoint(RESTART)``, waiting at most ``wait_ms`` for readers; True
        when the log was restarted."""
        raw = conn.raw
        previous = raw.execute("PRAGMA busy_timeout").fetchone()[0]
        try:
            raw.execute(f"PRAGMA busy_timeout={wait_ms}")
            busy = raw.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
        except Exception:
            log.warning("WAL restart checkpoint failed", exc_info=True)
            return False
        finally:
            raw.execute(f"PRAGMA busy_timeout={int(previous)}")
        return not busy

    def _commit_group(
        self, conn: Conn, group: list[tuple[Work, concurrent.futures.Future[Any]]]
    ) -> None:
        results: list[tuple[concurrent.futures.Future[Any], bool, Any]] = []
        try:
            conn.begin()
            live = [(w, f) for w, f in group if f.set_running_or_notify_cancel()]
            for run in _runs(live):
                if len(run) > 1 and self._run_combined(conn, run, results):
                    continue
                for work, future in run:
                    self._run_unit(conn, work, future, results)
            conn.commit()
        except BaseException as exc:  # KeyboardInterrupt too: no future may hang
            if is_disk_full(exc):
                log.warning("disk full: %d write request(s) refused with 503", len(group))
                exc = DiskFullError()
            elif is_connection_lost(exc):
                log.warning("database connection lost: %d write request(s) get 503", len(group))
                exc = DatabaseUnavailableError()
            else:
                log.exception("write transaction failed; %d request(s) get an error", len(group))
            try:
                conn.rollback()
            except Exception:
                log.debug("rollback after a failed commit failed too", exc_info=True)
            for _work, future in group:
                # Not yet running when the transaction failed to begin: its request
                # still gets this error (a cancelled future would surface as a 500).
                if not future.done() and (
                    future.running() or future.set_running_or_notify_cancel()
                ):
                    future.set_exception(exc)
            for future, _ok, _value in results:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.commits += 1
        self.units += len(results)
        if self._syncer is not None:
            self._syncer.committed(results)  # resolved once the WAL is on disk
        else:
            _resolve(results)

    @staticmethod
    def _run_unit(
        conn: Conn,
        work: Work,
        future: concurrent.futures.Future[Any],
        results: list[tuple[concurrent.futures.Future[Any], bool, Any]],
    ) -> None:
        raw = conn.raw
        raw.execute("SAVEPOINT unit")
        try:
            value = work(conn)
        except BaseException as exc:  # one unit's failure stays its own
            if is_disk_full(exc) or is_connection_lost(exc):
                raise  # not this unit's fault: the whole transaction fails (503)
            raw.execute("ROLLBACK TO SAVEPOINT unit")
            raw.execute("RELEASE SAVEPOINT unit")
            results.append((future, False, exc))
            if not isinstance(exc, Exception):
                raise
        else:
            raw.execute("RELEASE SAVEPOINT unit")
            results.append((future, True, value))

    @staticmethod
    def _run_combined(
        conn: Conn,
        run: list[tuple[Work, concurrent.futures.Future[Any]]],
        results: list[tuple[concurrent.futures.Future[Any], bool, Any]],
    ) -> bool:
        """Run units that can be combined as one (one set of statements instead of one
        per unit); False, with nothing written, when that fails: then each unit runs
        on its own, so that a failing one still fails alone."""
        raw = conn.raw
        raw.execute("SAVEPOINT combined")
        try:
            kind = cast(type[Combinable], type(run[0][0]))
            combined = kind.combine([work for work, _future in run])
            value = combined(conn)
        except Exception:
            raw.execute("ROLLBACK TO SAVEPOINT combined")
            raw.execute("RELEASE SAVEPOINT combined")
            log.debug("combined units failed; running them one by one", exc_info=True)
            return False
        raw.execute("RELEASE SAVEPOINT combined")
        results.extend((future, True, value) for _work, future in run)
        return True


def _runs(
    units: list[tuple[Work, concurrent.futures.Future[Any]]],
) -> list[list[tuple[Work, concurrent.futures.Future[Any]]]]:
    """Consecutive units with the same ``combine_key`` (not None) form one run; every
    other unit is a run of its own. Only neighbours combine, so the order of writes
    that depend on each other (an ingest, a delete, an ingest) is kept.

    A unit type opts in by being :class:`Combinable`.
    """
    runs: list[list[tuple[Work, concurrent.futures.Future[Any]]]] = []
    last: Any = None
    for unit in units:
        key = getattr(unit[0], "combine_key", None)
        if key is not None and key == last:
            runs[-1].append(unit)
        else:
            runs.append([unit])
        last = key
    return runs
