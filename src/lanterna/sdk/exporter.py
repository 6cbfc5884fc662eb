"""The exporter: a bounded queue drained by one daemon thread into ingestion batches.

Shape (after OpenTelemetry's BatchProcessor and sentry-python's worker): ``submit()`` is
a deque append that never blocks and never raises; the thread wakes when a batch is full
or the interval passes, turns records into events, encodes them, and POSTs batches
capped by count and bytes to ``/api/public/ingestion``.

Outages: connection errors, 429, 502, 503 and 504 are retried with exponential backoff,
jitter and ``Retry-After`` for as long as it takes (no per-batch deadline unless
``max_retry_seconds`` sets one); meanwhile new records wait in the queue, bounded by
count and by the bytes of large values. When it is full, the newest records are the
ones dropped (the queued ones are kept), counted in ``stats()["dropped"]`` and logged
once per overflow. 408, 425 and 500 are retried twice, then the batch fails; a 413
halves the batch; per-event errors in the 207 are logged and counted, not retried.
``flush(timeout)`` waits for what is queued; at interpreter exit a short flush says
what it could not deliver (or, with a spool directory, writes it to files that the next
exporter sends first: see ``spool.py``). After ``fork()`` the child starts with an empty queue, new
locks and its own thread.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from . import _errors
from .records import EventOptions, Observation, thaw
from .transport import (
    FAULT_RETRIES,
    INGESTION_PATH,
    OUTAGE_STATUSES,
    RETRY_STATUSES,
    SYSTEM_CLOCK,
    Clock,
    backoff,
    retry_after,
)
from .wire import OPTS, FastEncoder

if TYPE_CHECKING:
    from .spool import Spool
    from .transport import Transport

logger = _errors.logger
_OPTS = OPTS
_BIG_FIELDS = ("input", "output", "metadata")


class Response(Protocol):
    """What a sender returns for one POST."""

    status_code: int
    headers: Any

    def json(self) -> Any: ...


class Sender(Protocol):
    """Delivers one encoded batch; raises ``ConnectionError``/``OSError`` when the server
    cannot be reached (retried)."""

    def post(self, body: bytes) -> Response: ...

    def close(self) -> None: ...


class HttpSender:
    """POSTs batches to ``<base URL>/api/public/ingestion`` over one kept-alive connection
    of the client's :class:`~lanterna.sdk.transport.Transport` (auth, proxy, TLS and
    timeouts are the transport's)."""

    def __init__(self, transport: Transport) -> None:
        transport.prepare()
        self.url = transport.base_url + INGESTION_PATH
        self._session = transport.session()

    def post(self, body: bytes) -> Response:
        """One batch; raises ``LanternaConnectionError`` when no answer came."""
        return self._session.post(INGESTION_PATH, body)

    def close(self) -> None:
        """Close the connection."""
        self._session.close()

    def forget(self) -> None:
        """Drop the connection without closing it (in a forked child: it is the parent's)."""
        self._session.forget()


def encode(event: dict[str, Any]) -> bytes:
    """One event as JSON bytes; values orjson cannot encode fall back to the stdlib."""
    try:
        return orjson.dumps(event, default=str, option=_OPTS)
    except (TypeError, orjson.JSONEncodeError):
        # e.g. integers wider than 64 bits, which the stdlib writes exactly
        return json.dumps(event, default=str, ensure_ascii=False).encode()


def encode_large(event: dict[str, Any]) -> bytes:
    """:func:`encode` for events carrying large values: the stdlib encoder is slower but
    needs about one output's worth of memory, where orjson's buffer grows to ~8x."""
    try:
        return json.dumps(
            event, default=str, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()
    except ValueError:  # NaN/Infinity: orjson writes them as null
        return encode(event)


def shrink(event: dict[str, Any], encoded: bytes, limit: int) -> bytes:
    """Cut the largest of input/output/metadata until the event fits in ``limit`` bytes."""
    body = event["body"]
    while len(encoded) > limit:
        sizes = [
            (len(encode({"v": body[k]})), k)
            for k in _BIG_FIELDS
            if k in body
            and not (isinstance(body[k], str) and body[k].startswith("<lanterna: removed"))
        ]
        if not sizes:
            break
        size, key = max(sizes)
        body[key] = f"<lanterna: removed {size} bytes, the event exceeded {limit} bytes>"
        encoded = encode(event)
    return encoded


class BatchExporter:
    """Queue + daemon thread + batching + retries (see the module docstring)."""

    def __init__(
        self,
        sender: Sender,
        options: EventOptions,
        *,
        flush_at: int = 512,
        flush_interval: float = 1.0,
        max_queue_size: int = 100_000,
        max_queue_bytes: int = 64_000_000,
        max_batch_events: int = 1000,
        max_batch_bytes: int = 2_500_000,
        max_event_bytes: int = 4_000_000,
        max_retry_seconds: float | None = None,
        exit_timeout: float = 2.0,
        flush_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.25, 8.0),
        clock: Clock | None = None,
        spool: Spool | None = None,
    ) -> None:
        self._sender = sender
        self._spool = spool
        self._options = options
        # Templates for common records; with a mask callback every event takes the
        # reference path (the callback sees each event's values, as it always has).
        self._fast = FastEncoder(options) if options.mask is None else None
        self._clock = clock or SYSTEM_CLOCK
        self._flush_at = max(1, flush_at)
        self._interval = flush_interval
        self._max_queue = max_queue_size
        self._max_bytes = max_queue_bytes
        self._max_batch_events = max(1, max_batch_events)
        self._max_batch_bytes = max_batch_bytes
        self._max_event_bytes = max_event_bytes
        #: Per-batch retry limit; None (the default) or <= 0: retry while the queue has
        #: room, so an outage of any length loses nothing that fits in the queue.
        self._max_retry = max_retry_seconds if max_retry_seconds and max_retry_seconds > 0 else None
        self.exit_timeout = exit_timeout
        self._flush_timeout = flush_timeout
        self._backoff = backoff
        self._counts = {
            "sent": 0,
            "dropped": 0,
            "retried": 0,
            "failed": 0,
            "batches": 0,
            "spooled": 0,
        }
        self._last_error = ""
        self._closed = False
        #: Records dropped in the current overflow (logged when it starts and ends).
        self._overflow = 0
        self._init_runtime()
        _live.add(self)

    def _init_runtime(self) -> None:
        """Everything a forked child must not share with its parent."""
        self._queue: deque[Any] = deque()
        #: Characters of large captured values queued (see ``capture.LARGE``); bounds
        #: memory when values are big, where the record count alone would not.
        self._bytes = 0
        self._wakeup = threading.Event()
        self._stop = threading.Event()
        self._cv = threading.Condition(threading.Lock())
        self._start_lock = threading.Lock()
        self._busy = False
        self._in_flight = 0
        self._abort_at = float("inf")
        #: Set when the exit deadline starts or the thread must stop: ends a retry's
        #: backoff wait at once (the retry loop clears it), so a batch whose retries
        #: began before the exit still ends within the exit's deadline.
        self._nudge = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._start_needed = True

    # --- caller side (must stay cheap and never raise) ---------------------------------

    def submit(self, item: Any) -> bool:
        """Queue a record; False (and counted as dropped) when the queue is full."""
        queue = self._queue
        if len(queue) >= self._max_queue or self._closed:
            return self._drop()
        size = item.size
        if size:
            if self._bytes + size > self._max_bytes:
                return self._drop()
            self._bytes += size
        if type(item) is Observation and self._fast is not None:
            # records.freeze(item), inlined (this runs on every observed call): the
            # record as one tuple that the cyclic GC soon stops tracking.
            trace = item.trace
            top = item.top
            if not (top and trace.fields):
                item = (
                    trace.tid,
                    item.oid,
                    item.parent_id,
                    item.kind,
                    item.name,
                    item.start,
                    item.end,
                    top and trace.root_id == item.oid,
                    item.input,
                    item.output,
                    item.metadata,
                    item.level,
                    item.status,
                    item.extra,
                    size,
                )
        queue.append(item)
        if self._start_needed or len(queue) == self._flush_at:
            self._wake()
        return True

    def _drop(self) -> bool:
        """Count a record refused by a full (or closed) queue; log once per overflow."""
        self._counts["dropped"] += 1
        if not self._closed:
            self._overflow += 1
            if self._overflow == 1:
                logger.warning(
                    "lanterna: the queue is full (%d records, %d bytes of large values);"
                    " new records are dropped until it drains (see stats()['dropped'])%s",
                    len(self._queue),
                    self._bytes,
                    f"; last error: {self._last_error}" if self._last_error else "",
                )
        return False

    def _wake(self) -> None:
        try:
            if self._start_needed or self._pid != os.getpid():
                self._ensure_thread()
            self._wakeup.set()
        except Exception as exc:
            _errors.report("exporter.wake", exc)

    def _ensure_thread(self) -> None:
        if self._pid != os.getpid():  # a fork that bypassed os.register_at_fork
            self._after_fork_in_child()
        # Locked: callers on several threads at once must not start several workers
        # (flush() relies on the one worker's "busy" flag).
        with self._start_lock:
            thread = self._thread
            if thread is None or not thread.is_alive():
                self._start_needed = False
                self._thread = threading.Thread(
                    target=self._run, name="lanterna-exporter", daemon=True
                )
                self._thread.start()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is delivered (or given up on).

        Returns False, and logs how many events were still pending, when ``timeout``
        seconds (default: the client's ``flush_timeout``) pass first. Never raises.
        """
        try:
            return self._flush(self._flush_timeout if timeout is None else timeout)
        except Exception as exc:
            _errors.report("exporter.flush", exc)
            return False

    def _flush(self, timeout: float) -> bool:
        if threading.current_thread() is self._thread:
            return False  # called from a mask callback or similar: waiting would deadlock
        if self._queue or self._busy:
            self._ensure_thread()
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._queue or self._busy:
                self._wakeup.set()
                left = deadline - time.monotonic()
                if left <= 0:
                    logger.warning(
                        "lanterna: flush timed out after %.1f s with %d records pending",
                        timeout,
                        self.pending(),
                    )
                    return False
                self._cv.wait(min(left, 0.1))
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush within ``timeout`` (default ``exit_timeout``), then stop the thread.

        Logs what could not be delivered in time; returns True when everything was.
        """
        try:
            timeout = self.exit_timeout if timeout is None else timeout
            failed_before = self._counts["failed"]
            spooled_before = self._counts["spooled"]
            # Retries must not outlive the deadline; new records are no longer taken.
            ends = time.monotonic() + timeout
            self._abort_at = self._clock.monotonic() + timeout
            self._nudge.set()
            ok = self._flush(timeout) if (self._queue or self._busy) else True
            self._closed = True
            if self._spool is not None and not ok:
                self._spool_the_rest()
            lost = self._counts["failed"] - failed_before
            spooled = self._counts["spooled"] - spooled_before
            queued = self.pending()
            if spooled:
                logger.warning(
                    "lanterna: shutdown: %d undelivered events written to the spool %s;"
                    " the next client using it sends them%s",
                    spooled,
                    self._spool.directory if self._spool is not None else "",
                    f"; last error: {self._last_error}" if self._last_error else "",
                )
            if lost or queued:
                logger.warning(
                    "lanterna: shutdown: %d events undelivered%s within %.1f s (dropped)%s",
                    lost,
                    f" and {queued} records still queued" if queued else "",
                    timeout,
                    f"; last error: {self._last_error}" if self._last_error else "",
                )
            self._stop.set()
            self._nudge.set()
            self._wakeup.set()
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.0, min(1.0, ends - time.monotonic())))
            self._sender.close()
            return ok and not lost and not spooled
        except Exception as exc:
            _errors.report("exporter.shutdown", exc)
            return False

    def _spool_the_rest(self) -> None:
        """Let the thread write what is still queued to the spool (a local disk: quick)."""
        self._stop.set()
        self._nudge.set()
        self._wakeup.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

    def pending(self) -> int:
        """Records queued or being sent."""
        return len(self._queue) + self._in_flight

    def stats(self) -> dict[str, int]:
        """Counters: sent/failed are events; dropped/pending are records (one observed
        call is one record); retried counts retry attempts; batches counts POSTs."""
        out = dict(self._counts)
        out["pending"] = self.pending()
        out["queued"] = len(self._queue)
        return out

    # --- fork -------------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        # The parent's queued records are the parent's to send; its locks may be held by
        # a thread that does not exist here; its sockets must not be shared.
        forget = getattr(self._sender, "forget", None)
        if forget is not None:
            forget()
        self._counts = dict.fromkeys(self._counts, 0)
        self._init_runtime()

    # --- the exporter thread ----------------------------------------------------------

    def _run(self) -> None:
        if self._spool is not None:
            self._replay(self._spool)
        while True:
            self._wakeup.wait(self._interval)
            self._wakeup.clear()
            try:
                self._drain()
            except Exception as exc:  # a bug here must not kill the thread
                _errors.report("exporter.run", exc)
                with self._cv:
                    self._busy = False
                    self._in_flight = 0
                    self._cv.notify_all()
            if self._stop.is_set() and not self._queue:
                return

    def _drain(self) -> None:
        queue = self._queue
        self._busy = True  # before popping, so flush() never sees "empty and idle" early
        while queue:
            try:
                self._export()
            except Exception as exc:
                _errors.report("exporter.export", exc)
                self._counts["failed"] += self._in_flight
                if not self._in_flight:
                    break  # it failed before taking a record: no spinning (next wake-up)
            finally:
                self._in_flight = 0
            with self._cv:
                self._cv.notify_all()
        if self._overflow and len(queue) <= self._max_queue // 2:
            self._overflow_ended()
        with self._cv:
            self._busy = False
            self._cv.notify_all()

    def _replay(self, spool: Spool) -> None:
        """Send what an earlier exporter spooled, before anything else."""
        self._busy = True  # flush() waits for this too
        try:
            for path, body in spool.claim():
                try:
                    events = orjson.loads(body)["batch"]
                    self._send([orjson.dumps(e) for e in events], [1] * len(events))
                finally:
                    path.unlink(missing_ok=True)  # sent, failed, or spooled again
        except Exception as exc:
            _errors.report("exporter.replay", exc)

    def _save(self, body: bytes, n: int) -> None:
        assert self._spool is not None
        try:
            self._spool.save(body, n)
        except OSError as exc:
            self._counts["failed"] += n
            logger.warning("lanterna: could not spool %d events: %s", n, exc)
        else:
            self._counts["spooled"] += n

    def _overflow_ended(self) -> None:
        dropped, self._overflow = self._overflow, 0
        logger.warning(
            "lanterna: the queue has room again; %d records were dropped while it was full",
            dropped,
        )

    def _export(self) -> None:
        """Take queued records until there are none, encode each, and send the events
        in batches as they fill (``max_batch_events``, ``max_batch_bytes``), the last one
        when the queue is empty: records queued while a wake-up's worth is exported join
        the same batches, so a POST (~150 µs of CPU in ``http.client``) carries a full
        batch instead of a wake-up's worth and a remainder. ``_in_flight``: the records
        taken whose events are not sent yet."""
        queue = self._queue
        max_event = self._max_event_bytes
        chunk: list[bytes] = []  # each entry: one or more encoded events, comma-joined
        counts: list[int] = []  # events in each entry
        events_in_chunk = size = taken = 0
        fast = self._fast
        encode = None
        if fast is not None:
            fast.new_batch()
            encode = fast.record
        max_events, max_bytes = self._max_batch_events, self._max_batch_bytes
        groups: Sequence[tuple[bytes, int]] | None
        data: bytes | None
        pop = queue.popleft
        while queue:
            item = pop()
            taken += 1
            self._in_flight = taken
            try:
                frozen = type(item) is tuple
                large = item[-1] if frozen else item.size
                data = encode(item) if frozen and not large and encode is not None else None
                if data is not None and (length := len(data)) <= max_event:
                    n = 2 if item[7] else 1  # a root also writes its trace-create
                    groups = None
                else:
                    if large:
                        self._bytes = max(self._bytes - large, 0)
                    groups = self._reference(thaw(item) if frozen else item, large)
                del item  # let each record go as soon as it is encoded
            except Exception as exc:
                _errors.report("exporter.encode", exc)
                self._counts["failed"] += 1
                taken -= 1
                self._in_flight = taken
                continue
            if groups is None:
                # The common record, written out: no groups, no (data, n) pairs.
                if chunk and (events_in_chunk + n > max_events or size + length > max_bytes):
                    self._send(chunk, counts)
                    chunk, counts, events_in_chunk, size = [], [], 0, 0
                    self._in_flight = taken = 1  # this record's events are still to go
                    if self._overflow and len(queue) <= self._max_queue // 2:
                        self._overflow_ended()
                chunk.append(data)  # type: ignore[arg-type]  # not None: groups is None
                counts.append(n)
                events_in_chunk += n
                size += length + 1
                continue
            for data, n in groups:
                if chunk and (events_in_chunk + n > max_events or size + len(data) > max_bytes):
                    self._send(chunk, counts)
                    chunk, counts, events_in_chunk, size = [], [], 0, 0
                    self._in_flight = taken = 1  # this record's events are still to go
                    if self._overflow and len(queue) <= self._max_queue // 2:
                        self._overflow_ended()
                chunk.append(data)
                counts.append(n)
                events_in_chunk += n
                size += len(data) + 1
        if chunk:
            self._send(chunk, counts)

    def _reference(self, item: Any, large: int) -> list[tuple[bytes, int]]:
        """A record's events through ``to_events`` (dicts) and orjson, or one by one with
        the stdlib encoder when it carries large values (see :func:`encode_large`)."""
        events = item.to_events(self._options)
        if not large:
            # A record's events in one orjson call: "[e1,e2]" without the brackets.
            data = encode(events)[1:-1]
            if len(data) <= self._max_event_bytes:
                return [(data, len(events))]
        groups = []
        for event in events:
            data = encode_large(event)
            if len(data) > self._max_event_bytes:
                data = shrink(event, data, self._max_event_bytes)
            groups.append((data, 1))
        return groups

    def _send(self, chunk: list[bytes], counts: list[int]) -> None:
        # One join, so a large batch is copied once; the framing joins the end entries.
        if chunk:
            parts = chunk[:]  # the caller's list stays as it is (a 413 splits it)
            parts[0] = b'{"batch":[' + parts[0]
            parts[-1] += b"]}"
            body = b",".join(parts)
            del parts
        else:
            body = b'{"batch":[]}'
        n = sum(counts)
        if self._spool is not None and self._stop.is_set():
            self._save(body, n)  # stopping while the server is away: keep it for later
            return
        clock = self._clock
        deadline = float("inf")
        if self._max_retry is not None:
            deadline = clock.monotonic() + self._max_retry
        attempt = faults = 0
        while True:
            self._counts["batches"] += 1
            wait: float | None = None
            try:
                response = self._sender.post(body)
            except (ConnectionError, OSError) as exc:
                reason = str(exc) or type(exc).__name__
            else:
                status = response.status_code
                if 200 <= status < 300:
                    self._accepted(n, response)
                    return
                if status == 413 and len(chunk) > 1:
                    half = len(chunk) // 2
                    self._send(chunk[:half], counts[:half])
                    self._send(chunk[half:], counts[half:])
                    return
                if status not in OUTAGE_STATUSES:
                    faults += 1
                if status not in RETRY_STATUSES or faults > FAULT_RETRIES:
                    self._counts["failed"] += n
                    self._last_error = f"HTTP {status} {_short(response)}"
                    logger.warning(
                        "lanterna: the server refused a batch of %d events: %s", n, self._last_error
                    )
                    return
                reason = f"HTTP {status}"
                wait = retry_after(response.headers)
            attempt += 1
            self._last_error = reason
            delay = backoff(attempt, *self._backoff)
            if wait is not None:
                delay = max(delay, wait)
            # The exit's deadline is read on every attempt: it may have started since.
            if clock.monotonic() + delay > min(deadline, self._abort_at) or self._stop.is_set():
                aborted = self._stop.is_set() or clock.monotonic() + delay > self._abort_at
                self._give_up(body, n, attempt, reason, aborted)
                return
            self._counts["retried"] += 1
            if attempt == 1:
                logger.info("lanterna: the server is not taking events (%s); retrying", reason)
            logger.debug("lanterna: retrying %d events in %.2f s (%s)", n, delay, reason)
            clock.wait(delay, self._nudge)
            self._nudge.clear()
            if self._stop.is_set():  # stopped while waiting: no POST that could outlast it
                self._give_up(body, n, attempt, reason, aborted=True)
                return

    def _give_up(self, body: bytes, n: int, attempts: int, reason: str, aborted: bool) -> None:
        """A batch no longer retried: spooled when the exit cut it short and a spool is
        set, else counted as failed and logged."""
        if aborted and self._spool is not None:
            self._save(body, n)
            return
        self._counts["failed"] += n
        logger.warning("lanterna: gave up on %d events after %d attempts (%s)", n, attempts, reason)

    def _accepted(self, n: int, response: Response) -> None:
        errors: list[Any] = []
        if response.status_code == 207:
            try:
                payload = response.json()
                errors = payload.get("errors") or [] if isinstance(payload, dict) else []
            except Exception:
                errors = []
        self._counts["sent"] += n - len(errors)
        if errors:
            self._counts["failed"] += len(errors)
            for err in errors[:5]:
                logger.warning(
                    "lanterna: the server rejected event %s: %s %s %s",
                    err.get("id"),
                    err.get("status"),
                    err.get("message"),
                    err.get("error", ""),
                )
            if len(errors) > 5:
                logger.warning("lanterna: ... and %d more rejected events", len(errors) - 5)


def _short(response: Response) -> str:
    try:
        text = str(response.json())
    except Exception:
        text = ""
    return text[:300]


# --- process-wide hooks ----------------------------------------------------------------

_live: weakref.WeakSet[BatchExporter] = weakref.WeakSet()


def _after_fork() -> None:
    for exporter in list(_live):
        exporter._after_fork_in_child()


def _at_exit() -> None:
    for exporter in list(_live):
        if not exporter._closed:
            exporter.shutdown(exporter.exit_timeout)


os.register_at_fork(after_in_child=_after_fork)
atexit.register(_at_exit)

ExporterFactory = Callable[..., BatchExporter]
