"""The single writer: one thread, one write connection, group commit.

Every write in the process goes through :meth:`Writer.submit`. The thread takes the
first waiting unit of work, then everything else already queued (up to a limit), runs
them all in one transaction (each unit inside its own SAVEPOINT, so one failing unit
never takes its neighbours down) and commits once. Only after that commit does any
caller's future resolve: an HTTP 2xx is sent after the data is durable.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .db import Conn, Database

log = logging.getLogger("lanterna.writer")

T = TypeVar("T")
Work = Callable[[Conn], Any]

_STOP = object()


class WriterClosedError(RuntimeError):
    """The writer was stopped; nothing more can be written."""


class Writer:
    """Serialises all writes of a process into grouped transactions."""

    def __init__(self, db: Database, *, max_group: int = 256) -> None:
        self.db = db
        self.max_group = max_group
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.commits = 0
        self.units = 0

    def start(self) -> None:
        """Open the write connection and start the thread."""
        if self._thread is not None:
            return
        conn = self.db.connect_writer()
        self._thread = threading.Thread(
            target=self._run, args=(conn,), name="lanterna-writer", daemon=True
        )
        self._thread.start()

    def submit(self, work: Callable[[Conn], T]) -> concurrent.futures.Future[T]:
        """Queue ``work(conn)``; the future resolves after its transaction commits."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        if self._closed:
            future.set_exception(WriterClosedError("the writer is stopped"))
            return future
        self._queue.put((work, future))
        return future

    async def run(self, work: Callable[[Conn], T]) -> T:
        """Queue ``work`` and wait (asynchronously) until it is committed."""
        return await asyncio.wrap_future(self.submit(work))

    def run_sync(self, work: Callable[[Conn], T], timeout: float | None = None) -> T:
        """Queue ``work`` and block until it is committed."""
        return self.submit(work).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish what is queued, then stop the thread."""
        if self._thread is None or self._closed:
            self._closed = True
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self, conn: Conn) -> None:
        stopping = False
        try:
            while not stopping:
                first = self._queue.get()
                if first is _STOP:
                    break
                group = [first]
                while len(group) < self.max_group:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                        break
                    group.append(item)
                self._commit_group(conn, group)
        finally:
            conn.raw.close()

    def _commit_group(
        self, conn: Conn, group: list[tuple[Work, concurrent.futures.Future[Any]]]
    ) -> None:
        results: list[tuple[concurrent.futures.Future[Any], bool, Any]] = []
        raw = conn.raw
        try:
            raw.execute("BEGIN IMMEDIATE" if self.db.is_sqlite else "BEGIN")
            for work, future in group:
                if not future.set_running_or_notify_cancel():
                    continue
                raw.execute("SAVEPOINT unit")
                try:
                    value = work(conn)
                except BaseException as exc:  # one unit's failure stays its own
                    raw.execute("ROLLBACK TO SAVEPOINT unit")
                    raw.execute("RELEASE SAVEPOINT unit")
                    results.append((future, False, exc))
                    if not isinstance(exc, Exception):
                        raise
                else:
                    raw.execute("RELEASE SAVEPOINT unit")
                    results.append((future, True, value))
            raw.execute("COMMIT")
        except Exception as exc:
            log.exception("write transaction failed; %d request(s) get an error", len(group))
            try:
                raw.execute("ROLLBACK")
            except Exception:
                log.debug("rollback after a failed commit failed too", exc_info=True)
            for _work, future in group:
                if not future.done():
                    if future.running():
                        future.set_exception(exc)
                    else:
                        future.cancel()
            for future, _ok, _value in results:
                if not future.done():
                    future.set_exception(exc)
            return
        self.commits += 1
        self.units += len(results)
        for future, ok, value in results:
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
