"""Per-project rate limits: events ingested and API reads per minute, shared by every
server process through the database.

Each process counts what its requests use in fixed one-minute windows and, at most once
a second (:meth:`RateLimits.due`), adds its count to the shared counter in
``rate_counters`` and reads back every process's total (:meth:`RateLimits.sync_work`,
run in the writer). A request is refused when the last known total plus this process's
use since would pass the limit, so processes overshoot it by at most what they admit in
one second between syncs. A request alone larger than the limit (a big batch in an empty
window) is let through, so no batch is refused forever. The clock is injected (tests).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping

from ..errors import RateLimited
from ..store.db import Conn
from ..store.interface import Quotas

WINDOW_SECONDS = 60
#: What each kind of limit counts, for the 429's message.
UNITS = {"ingest": "events", "read": "API reads"}

CounterKey = tuple[str, str, int]


class RateLimits:
    """The limits of one server process (``Runtime.quota``)."""

    def __init__(
        self,
        limits: Mapping[str, int],
        store: Quotas,
        clock: Callable[[], float] = time.time,
        sync_seconds: float = 1.0,
    ) -> None:
        #: Per kind (``ingest``, ``read``): the most a project may use in a minute.
        self.limits = {kind: n for kind, n in limits.items() if n > 0}
        self.clock = clock
        self._store = store
        self._sync_seconds = sync_seconds
        self._lock = threading.Lock()
        self._shared: dict[CounterKey, int] = {}  # every process's totals at the last sync
        self._pending: dict[CounterKey, int] = {}  # this process's use since then
        self._synced_at = -math.inf

    def take(self, project_id: str, kind: str, amount: int = 1) -> None:
        """Count ``amount`` against the project's ``kind`` limit, or raise
        :class:`~lanterna.errors.RateLimited` (429 with ``Retry-After``) when it is used up."""
        limit = self.limits.get(kind)
        if limit is None:
            return
        now = self.clock()
        window = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        key = (project_id, kind, window)
        with self._lock:
            used = self._shared.get(key, 0) + self._pending.get(key, 0)
            if used > 0 and used + amount > limit:
                retry = max(1, math.ceil(window + WINDOW_SECONDS - now))
                raise RateLimited(
                    f"Rate limit exceeded: this project may make {limit:,}"
                    f" {UNITS.get(kind, kind)} a minute; retry in {retry} s",
                    retry,
                )
            self._pending[key] = self._pending.get(key, 0) + amount

    def due(self) -> bool:
        """Whether it is time to share this process's counts (at most once a second)."""
        return bool(self.limits) and self.clock() - self._synced_at >= self._sync_seconds

    def sync_work(self) -> Callable[[Conn], None]:
        """A unit of work for the writer: add this process's counts to the shared ones
        and learn every process's totals for the current window."""
        now = self.clock()
        window = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        with self._lock:
            self._synced_at = now
            deltas, self._pending = self._pending, {}
            keys = {k for k in self._shared if k[2] == window} | set(deltas)

        def work(conn: Conn) -> None:
            totals = self._store.add_usage(conn, [(k, deltas.get(k, 0)) for k in keys])
            self._store.forget_before(conn, window - WINDOW_SECONDS)
            with self._lock:
                self._shared = {k: v for k, v in totals.items() if k[2] >= window}

        return work
