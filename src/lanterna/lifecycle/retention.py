"""Retention: each project's ``retention_days`` enforced by a background job.

:meth:`RetentionJob.tick` runs once across every process sharing the database (a lease
in ``job_leases``, taken with one conditional update): for each project with a
retention it deletes, in batches of :data:`~lanterna.store.lifecycle.BATCH` trace ids
per write transaction, the traces older than the retention with their observations and
scores (the hourly rollups corrected by the same path as every trace delete), then the
older scores without a trace (session scores expire by their own time), then the
sessions no trace or score names any more, and logs the counts. The job
is due again ``interval`` later. :class:`RetentionLoop` ticks in a daemon thread inside
``lanterna serve`` and ``lanterna worker``.

Time comes from an injected clock, never from sleeping: tests call ``tick(now)``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from ..store.db import Conn, Database
from ..store.interface import Deleted, Store
from ..timeutil import Ticker
from ..timeutil import now as utc_now

log = logging.getLogger("lanterna.retention")

T = TypeVar("T")
#: Runs a unit of work in a write transaction, returns its result once committed.
Write = Callable[[Callable[[Conn], T]], T]
JOB = "retention"
#: An upload no trace refers to is kept this long (its trace may still be on its way).
MEDIA_GRACE = timedelta(days=1)


@dataclass
class RetentionRun:
    """What one run deleted, per project."""

    at: datetime
    deleted: dict[str, Deleted] = field(default_factory=dict)

    @property
    def total(self) -> Deleted:
        """The counts over every project."""
        out = Deleted()
        for d in self.deleted.values():
            out.add(d)
        return out


class RetentionJob:
    """Deletes what is older than each project's retention; one per process."""

    def __init__(
        self,
        db: Database,
        store: Store,
        write: Write[Any],
        *,
        clock: Callable[[], datetime] = utc_now,
        interval: timedelta = timedelta(hours=1),
        lease: timedelta = timedelta(minutes=30),
        batch: int = 500,
        owner: str | None = None,
        purge_media: Callable[[], int] | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.write = write
        self.clock = clock
        self.interval = interval
        self.lease = lease
        self.batch = batch
        self.owner = owner or f"retention-{uuid.uuid4()}"
        #: Deletes the media blobs no record holds any more (``Runtime.purge_media_sync``).
        self.purge_media = purge_media

    def tick(self, now: datetime | None = None) -> RetentionRun | None:
        """Run the job if some project has a retention, it is due at ``now`` (the
        clock's time by default) and this process wins its lease; None when it did not
        run. Without any retention it writes nothing (not even the lease)."""
        at = now or self.clock()
        life = self.store.lifecycle
        with self.db.read() as conn:
            projects = life.projects_with_retention(conn)
        if not projects:
            return None  # nothing to do: no write transaction at all
        owner, until = self.owner, at + self.lease
        if not self.write(lambda c: life.claim_job(c, JOB, owner, at, until)):
            return None
        run = RetentionRun(at)
        try:
            for project_id, days in projects:
                try:
                    run.deleted[project_id] = self.apply(project_id, at - timedelta(days=days))
                except Exception:  # one project's failure must not stop the others
                    log.exception("retention of project %s failed", project_id)
            self._media(at)
        finally:
            self.write(lambda c: life.finish_job(c, JOB, owner, at + self.interval))
        return run

    def _media(self, at: datetime) -> None:
        """Media: records no trace refers to (their traces expired, or uploads whose
        trace never came, older than :data:`MEDIA_GRACE`) go, then their blobs."""
        media = self.store.media
        try:
            self.write(lambda c: media.delete_unreferenced(c, at - MEDIA_GRACE))
            if self.purge_media is not None:
                gone = self.purge_media()
                if gone:
                    log.info("retention: deleted %d media blob(s) no trace refers to", gone)
        except Exception:
            log.exception("retention of media failed")

    def _batches(
        self,
        find: Callable[[Conn], list[str]],
        delete: Callable[[Conn, list[str]], Deleted],
        out: Deleted,
    ) -> None:
        while True:
            with self.db.read() as conn:
                ids = find(conn)
            if not ids:
                return
            gone = self.write(lambda c, ids=ids: delete(c, ids))  # type: ignore[misc]
            out.add(gone)
            if len(ids) < self.batch or not gone.total:
                return

    def apply(self, project_id: str, cutoff: datetime) -> Deleted:
        """Delete the project's data older than ``cutoff``; return and log the counts."""
        life, n = self.store.lifecycle, self.batch
        out = Deleted()
        self._batches(
            lambda c: life.expired_trace_ids(c, project_id, cutoff, limit=n),
            # A session's own scores expire by their own time, not with its traces.
            lambda c, ids: life.delete_trace_data(c, project_id, ids, empty_sessions=False),
            out,
        )
        self._batches(
            lambda c: life.expired_score_ids(c, project_id, cutoff, limit=n),
            lambda c, ids: Deleted(scores=life.delete_scores(c, project_id, ids)),
            out,
        )

        def sessions(c: Conn, ids: list[str]) -> Deleted:
            gone = Deleted()
            for session_id in ids:
                gone.add(life.delete_empty_session(c, project_id, session_id))
            return gone

        self._batches(lambda c: life.orphan_session_ids(c, project_id, limit=n), sessions, out)
        if out.total:
            log.info(
                "retention: project %s: deleted %d trace(s), %d observation(s), %d score(s),"
                " %d session(s) older than %s",
                project_id,
                out.traces,
                out.observations,
                out.scores,
                out.sessions,
                cutoff.isoformat(),
            )
        return out


class RetentionLoop(Ticker):
    """Calls :meth:`RetentionJob.tick` every ``poll`` seconds in a daemon thread until
    :meth:`stop` (the job's lease decides when it really runs)."""

    def __init__(self, job: RetentionJob, poll: float) -> None:
        super().__init__(
            job.tick, poll, name="lanterna-retention", log=log, failure="retention tick failed"
        )
        self.job = job
