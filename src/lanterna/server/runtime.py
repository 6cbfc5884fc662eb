"""What a running server holds: settings, the database, the writer, the store interface.
Built in the lifespan."""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ..alerts.evaluator import ChannelLookup, Evaluator, EvaluatorLoop, file_clock, no_channels
from ..alerts.secretbox import SecretBox
from ..alerts.stored import outbound_policy, secret_box
from ..evaluation.llm import Caller
from ..evaluation.worker import Evaluate, EvaluationWorker
from ..lifecycle.retention import RetentionJob, RetentionLoop
from ..store.db import Conn, Database
from ..store.interface import BlobStore, Store, purge_freed, sql_store
from ..store.migrations import migrate
from ..store.writer import Writer
from ..timeutil import now as utc_now
from .media import UrlSigner, blob_store
from .quota import RateLimits
from .scheduled_exports import ExportJob, ExportLoop
from .settings import Settings

T = TypeVar("T")


class Runtime:
    """The server's shared state; one per app."""

    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        alert_channels: ChannelLookup | None = None,
    ) -> None:
        self.settings = settings
        self.db = Database(
            settings.db_url,
            read_pool_size=settings.read_pool_size,
            sqlite_memory_mib=settings.sqlite_memory_mib,
        )
        self.writer = Writer(self.db)
        #: Every stored-data operation routes, pages and the read layer call
        #: (``store/interface.py``; the SQLite/PostgreSQL store unless another is given);
        #: run them through :meth:`read` and :meth:`write`.
        self.store: Store = store if store is not None else store_for(settings)
        #: The alert evaluator (``alerts/evaluator.py``): its rules' channels come from
        #: ``alert_channels``; it ticks in a thread when ``alert_tick_seconds`` > 0.
        self.evaluator = Evaluator(
            self.db,
            self.store,
            self.writer.run_sync,
            channels_for=alert_channels or no_channels,
            base_url=settings.base_url,
            clock=file_clock(settings.alert_clock_file) if settings.alert_clock_file else utc_now,
        )
        self._starts = 0  # lifespans running (start/stop are counted)
        self._prepare_slot_by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Semaphore
        ] = weakref.WeakKeyDictionary()
        self._alert_loop: EvaluatorLoop | None = None
        #: Per-project rate limits (``quota.py``), shared through the database.
        self.quota = RateLimits(
            {"ingest": settings.ingest_rate_limit, "read": settings.read_rate_limit},
            self.store.quotas,
        )
        #: The retention job (``lifecycle/retention.py``): runs every
        #: ``retention_interval_seconds`` (0: not in this process), once across processes.
        self.retention = RetentionJob(
            self.db,
            self.store,
            self.writer.run_sync,
            interval=timedelta(seconds=max(settings.retention_interval_seconds, 1)),
            purge_media=self.purge_media_sync,
        )
        self._retention_loop: RetentionLoop | None = None
        #: Calls to LLM connections (the judge, the playground): the SSRF allowlist and
        #: the timeout of the settings.
        self.llm = Caller(
            policy=outbound_policy(settings.outbound_allow),
            timeout=float(settings.llm_timeout_seconds),
        )
        #: The online evaluation worker (``evaluation/worker.py``); it ticks in a thread
        #: when ``evaluation_tick_seconds`` > 0.
        self.evaluation = EvaluationWorker(
            self.db,
            self.store,
            self.writer.run_sync,
            Evaluate(self.store, self.read_sync, self.secret_box, self.llm),
        )
        self._evaluation_loop: EvaluatorLoop | None = None
        #: Scheduled exports to object storage (``scheduled_exports.py``): due
        #: integrations looked for every ``export_tick_seconds`` (0: not here).
        self.exports = ExportJob(
            self.db,
            self.store,
            self.writer.run_sync,
            self.secret_box,
            outbound_policy(settings.outbound_allow),
        )
        self._export_loop: ExportLoop | None = None

    def secret_box(self) -> SecretBox:
        """The server key's box (LLM keys and channel secrets at rest)."""
        return secret_box(self.settings.secret_key, self.settings.data_dir)

    @functools.cached_property
    def blobs(self) -> BlobStore:
        """Where media bytes live (``store/blobs.py``: the local folder or S3)."""
        return blob_store(self.settings)

    @functools.cached_property
    def media_urls(self) -> UrlSigner:
        """Signs the server's own media upload and download URLs."""
        return UrlSigner(self.settings)

    def purge_media_sync(self) -> int:
        """Delete the blobs no media record holds any more (after trace deletion or
        retention committed); returns how many went. Blocking: call from a thread."""
        media = self.store.media
        return purge_freed(self.writer.run_sync, media.freed_blobs, media.forget_freed, self.blobs)

    def start(self) -> None:
        """Migrate the schema, start the writer and (unless turned off) the alert
        evaluator and the evaluation worker. Counted: an app whose lifespan runs twice
        at once (two test clients on one app) starts them once and stops them when the
        last lifespan ends."""
        self._starts += 1
        if self._starts > 1:
            return
        migrate(self.db)
        migrate_events(self.db, self.store)
        self.writer.start()
        if self.settings.alert_tick_seconds > 0:
            self._alert_loop = EvaluatorLoop(self.evaluator, self.settings.alert_tick_seconds)
            self._alert_loop.start()
        if self.settings.retention_interval_seconds > 0:
            poll = min(self.settings.retention_interval_seconds, 300)
            self._retention_loop = RetentionLoop(self.retention, poll)
            self._retention_loop.start()
        if self.settings.evaluation_tick_seconds > 0:
            self._evaluation_loop = EvaluatorLoop(
                self.evaluation, self.settings.evaluation_tick_seconds, "lanterna-evaluation"
            )
            self._evaluation_loop.start()
        if self.settings.export_tick_seconds > 0:
            self._export_loop = ExportLoop(self.exports, self.settings.export_tick_seconds)
            self._export_loop.start()

    def stop(self) -> None:
        """Stop the background loops, drain the writer and close connections (when the
        last :meth:`start` is matched)."""
        self._starts = max(0, self._starts - 1)
        if self._starts:
            return
        for loop in (
            self._alert_loop,
            self._evaluation_loop,
            self._retention_loop,
            self._export_loop,
        ):
            if loop is not None:
                loop.stop()
        self._alert_loop = self._evaluation_loop = None
        self._retention_loop = None
        self._export_loop = None
        self.writer.stop()
        self.db.close()
        events = getattr(self.store, "events", None)
        if events is not None:
            events.close()

    def read_sync(self, query: Callable[[Conn], T]) -> T:
        """Run ``query`` on a read connection (blocking)."""
        with self.db.read() as conn:
            return query(conn)

    async def read(self, query: Callable[[Conn], T]) -> T:
        """Run ``query`` on a read connection in the thread pool."""
        return await run_in_threadpool(self.read_sync, query)

    async def write(self, work: Callable[[Conn], T]) -> T:
        """Run ``work`` in the writer; returns after it is committed."""
        return await self.writer.run(work)

    async def share_quota(self) -> None:
        """Add this process's rate-limit counts to the shared ones, when it is time."""
        if self.quota.due():
            await self.write(self.quota.sync_work())

    def share_quota_sync(self) -> None:
        """:meth:`share_quota` from a worker thread (blocking)."""
        if self.quota.due():
            self.writer.run_sync(self.quota.sync_work())

    def _prepare_slots(self) -> asyncio.Semaphore:
        """The running event loop's semaphore of ``ingest_prepare_at_once`` slots (an
        asyncio semaphore belongs to one loop: the HTTP server's, and the OTLP gRPC
        receiver's own; tests run one app in several)."""
        loop = asyncio.get_running_loop()
        slots = self._prepare_slot_by_loop.get(loop)
        if slots is None:
            slots = asyncio.Semaphore(max(1, self.settings.ingest_prepare_at_once))
            self._prepare_slot_by_loop[loop] = slots
        return slots

    async def prepare_and_commit(
        self,
        prepare: Callable[[Conn], tuple[T, Callable[[Conn], Any] | None]],
        finish: Callable[[Callable[[Conn], Any]], Callable[[Conn], Any]] | None = None,
    ) -> T:
        """Run ``prepare`` on a read connection in the thread pool (the CPU work: parse,
        validate, pre-merge), then ``finish`` on its unit of work in the thread pool (I/O
        the unit needs done first, e.g. media blobs; it returns the unit to run), then
        the unit in the writer; return ``prepare``'s result once that unit is committed
        (at once when it is None)."""
        # One batch is prepared at a time per event loop (``ingest_prepare_at_once``):
        # the others wait here, without a thread, and the writer does not wait for them.
        # It holds its next commit briefly for the batch that is being prepared.
        expected = None
        committed = None
        try:
            async with self._prepare_slots():
                expected = self.writer.expect()
                result, work = await self.read(prepare)
            if work is not None and finish is not None:
                work = await run_in_threadpool(finish, work)
            if work is not None:
                committed = self.writer.submit(work)
        finally:
            if expected is not None:
                expected.done()
        if committed is not None:
            await asyncio.wrap_future(committed)
        return result


def store_for(settings: Settings) -> Store:
    """The SQLite/PostgreSQL store, or with ``events_url`` the one keeping traces,
    observations and scores in ClickHouse (imported only then). The server and
    ``lanterna worker`` read and write through it."""
    if not settings.events_url:
        return sql_store()
    from ..store.clickhouse import clickhouse_store

    return clickhouse_store(settings.events_url)


def migrate_events(db: Database, store: Store) -> None:
    """The ClickHouse event store's schema, migrated once across processes (under the
    metadata database's exclusive write lock); nothing for the SQL store."""
    events = getattr(store, "events", None)
    if events is not None:
        from ..store.clickhouse import migrate as migrate_clickhouse

        migrate_clickhouse(events, lambda: db.transaction(exclusive=True))


def runtime(request: Request) -> Runtime:
    """The runtime of the app serving ``request``."""
    rt: Runtime = request.app.state.runtime
    return rt
