"""The exporter: a bounded queue drained by one daemon thread into ingestion batches.

Shape (after OpenTelemetry's BatchProcessor and sentry-python's worker): ``submit()`` is
a deque append that never blocks and never raises; the thread wakes when a batch is full
or the interval passes, turns records into events, encodes them, and POSTs batches
capped by count and bytes to ``/api/public/ingestion``. 429/5xx/connection errors are
retried with exponential backoff, jitter and ``Retry-After`` until a deadline; a 413
halves the batch; per-event errors in the 207 are logged and counted, not retried. When
the queue is full new records are dropped and counted. ``flush(timeout)`` waits for
what is queued; at interpreter exit a short flush says what it could not deliver. After
``fork()`` the child starts with an empty queue, new locks and its own thread.
"""

from __future__ import annotations

import atexit
import json
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from . import _errors
from .records import EventOptions

if TYPE_CHECKING:
    import http.client
    import ssl

logger = _errors.logger
_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
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


class _Reply:
    """A response: status, headers (case-insensitive ``get``) and the body as JSON."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: Any, content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        return orjson.loads(self.content)


class HttpSender:
    """POSTs batches to ``<host>/api/public/ingestion`` with Basic auth over one kept-alive
    connection (the standard library's ``http.client``).

    Why not httpx here: a plain connection has no reference cycles holding sent bodies
    until the cyclic GC runs (httpx responses do), costs less CPU per request, and
    imports nothing a fork could catch half-initialised. Proxies from the usual
    environment variables (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``) are honoured.
    """

    def __init__(
        self, host: str, public_key: str, secret_key: str, timeout: float, version: str
    ) -> None:
        # Imported here, when a client is made, not when lanterna is imported (they cost
        # tens of milliseconds) and not on the exporter thread (a fork() during an
        # import there would leave the child a half-initialised module).
        import base64
        import http.client
        import urllib.parse
        import urllib.request

        self._http = http.client
        self.url = host.rstrip("/") + "/api/public/ingestion"
        parts = urllib.parse.urlsplit(self.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path
        self._timeout = timeout
        token = base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()
        self._headers = {
            "Content-Type": "application/json",
            "Authorization": f"Basic {token}",
            "User-Agent": f"lanterna-python/{version}",
            "x-langfuse-sdk-name": "lanterna-python",
            "x-langfuse-sdk-version": version,
            "x-langfuse-public-key": public_key,
        }
        proxy = urllib.request.getproxies().get(parts.scheme)
        self._proxy = None if not proxy or urllib.request.proxy_bypass(self._host) else proxy
        self._conn: http.client.HTTPConnection | None = None
        self._target = self._path

    def _connect(self) -> tuple[http.client.HTTPConnection, str]:
        import urllib.parse

        hc = self._http
        target = self._path
        context = _tls_context() if self._https else None
        if self._proxy is None:
            host, port = self._host, self._port
        else:
            proxy = urllib.parse.urlsplit(self._proxy)
            host, port = proxy.hostname or "localhost", proxy.port or 8080
        conn: http.client.HTTPConnection
        if self._https:
            conn = hc.HTTPSConnection(host, port, timeout=self._timeout, context=context)
            if self._proxy is not None:
                conn.set_tunnel(self._host, self._port, headers=_proxy_auth(self._proxy))
        else:
            conn = hc.HTTPConnection(host, port, timeout=self._timeout)
            if self._proxy is not None:
                target = self.url  # a plain-HTTP proxy takes the absolute URL
        return conn, target

    def post(self, body: bytes) -> Response:
        for attempt in (0, 1):
            reused = self._conn is not None
            conn, target = (self._conn, self._target) if self._conn else self._connect()
            headers = self._headers
            if self._proxy is not None and not self._https:
                headers = {**headers, **_proxy_auth(self._proxy)}
            try:
                conn.request("POST", target, body=body, headers=headers)
                response = conn.getresponse()
                content = response.read()
            except (self._http.HTTPException, OSError) as exc:
                conn.close()
                self._conn = None
                stale = isinstance(
                    exc, (self._http.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
                )
                if reused and stale and attempt == 0:
                    continue  # the server closed an idle kept-alive connection: once more
                raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
            if response.will_close:
                conn.close()
                self._conn = None
            else:
                self._conn, self._target = conn, target
            return _Reply(response.status, response.headers, content)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def forget(self) -> None:
        """Drop the connection without closing it (in a forked child: it is the parent's)."""
        self._conn = None


def _tls_context() -> ssl.SSLContext:
    import ssl

    try:  # the CA bundle httpx uses, when present; else the system's
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover
        return ssl.create_default_context()


def _proxy_auth(proxy: str) -> dict[str, str]:
    import base64
    import urllib.parse

    parts = urllib.parse.urlsplit(proxy)
    if not parts.username:
        return {}
    raw = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
    return {"Proxy-Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


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


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


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
        max_retry_seconds: float = 60.0,
        exit_timeout: float = 2.0,
        flush_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.25, 8.0),
    ) -> None:
        self._sender = sender
        self._options = options
        self._flush_at = max(1, flush_at)
        self._interval = flush_interval
        self._max_queue = max_queue_size
        self._max_bytes = max_queue_bytes
        self._max_batch_events = max(1, max_batch_events)
        self._max_batch_bytes = max_batch_bytes
        self._max_event_bytes = max_event_bytes
        self._max_retry = max_retry_seconds
        self.exit_timeout = exit_timeout
        self._flush_timeout = flush_timeout
        self._backoff = backoff
        self._counts = {"sent": 0, "dropped": 0, "retried": 0, "failed": 0, "batches": 0}
        self._last_error = ""
        self._closed = False
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
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._start_needed = True

    # --- caller side (must stay cheap and never raise) ---------------------------------

    def submit(self, item: Any) -> bool:
        """Queue a record; False (and counted as dropped) when the queue is full."""
        queue = self._queue
        if len(queue) >= self._max_queue or self._closed:
            self._counts["dropped"] += 1
            return False
        size = item.size
        if size:
            if self._bytes + size > self._max_bytes:
                self._counts["dropped"] += 1
                return False
            self._bytes += size
        queue.append(item)
        if self._start_needed or len(queue) == self._flush_at:
            self._wake()
        return True

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
            # Retries must not outlive the deadline; new records are no longer taken.
            self._abort_at = time.monotonic() + timeout
            ok = self._flush(timeout) if (self._queue or self._busy) else True
            self._closed = True
            lost = self._counts["failed"] - failed_before
            queued = self.pending()
            if lost or queued:
                logger.warning(
                    "lanterna: shutdown: %d events undelivered%s within %.1f s (dropped)%s",
                    lost,
                    f" and {queued} records still queued" if queued else "",
                    timeout,
                    f"; last error: {self._last_error}" if self._last_error else "",
                )
            self._stop.set()
            self._wakeup.set()
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.0, min(1.0, self._abort_at - time.monotonic())))
            self._sender.close()
            return ok and not lost
        except Exception as exc:
            _errors.report("exporter.shutdown", exc)
            return False

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
        while True:
            self._busy = True  # before popping, so flush() never sees "empty and idle" early
            items = []
            try:
                for _ in range(self._flush_at):
                    items.append(queue.popleft())
            except IndexError:
                pass
            if not items:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()
                return
            self._in_flight = len(items)
            try:
                self._export(items)
            except Exception as exc:
                _errors.report("exporter.export", exc)
                self._counts["failed"] += len(items)
            finally:
                self._in_flight = 0
            with self._cv:
                self._cv.notify_all()

    def _export(self, items: list[Any]) -> None:
        opts = self._options
        max_event = self._max_event_bytes
        chunk: list[bytes] = []  # each entry: one or more encoded events, comma-joined
        counts: list[int] = []  # events in each entry
        events_in_chunk = size = 0
        for i, item in enumerate(items):
            items[i] = None  # let each record go as soon as it is encoded
            large = item.size
            if large:
                self._bytes = max(self._bytes - large, 0)
            try:
                events = item.to_events(opts)
                del item
                groups = None
                if not large:
                    # A record's events in one orjson call: "[e1,e2]" without the brackets.
                    data = encode(events)[1:-1]
                    if len(data) <= max_event:
                        groups = [(data, len(events))]
                if groups is None:
                    groups = []
                    for event in events:
                        data = encode_large(event)
                        if len(data) > max_event:
                            data = shrink(event, data, max_event)
                        groups.append((data, 1))
            except Exception as exc:
                _errors.report("exporter.encode", exc)
                self._counts["failed"] += 1
                continue
            for data, n in groups:
                if chunk and (
                    events_in_chunk + n > self._max_batch_events
                    or size + len(data) > self._max_batch_bytes
                ):
                    self._send(chunk, counts)
                    chunk, counts, events_in_chunk, size = [], [], 0, 0
                chunk.append(data)
                counts.append(n)
                events_in_chunk += n
                size += len(data) + 1
        if chunk:
            self._send(chunk, counts)

    def _send(self, chunk: list[bytes], counts: list[int]) -> None:
        # One join, so a large batch is copied once.
        parts = [b'{"batch":[']
        for i, data in enumerate(chunk):
            if i:
                parts.append(b",")
            parts.append(data)
        parts.append(b"]}")
        body = b"".join(parts)
        del parts
        n = sum(counts)
        deadline = min(time.monotonic() + self._max_retry, self._abort_at)
        attempt = 0
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
                if status not in _RETRY_STATUS:
                    self._counts["failed"] += n
                    self._last_error = f"HTTP {status} {_short(response)}"
                    logger.warning(
                        "lanterna: the server refused a batch of %d events: %s", n, self._last_error
                    )
                    return
                reason = f"HTTP {status}"
                wait = _retry_after(response.headers)
            attempt += 1
            self._last_error = reason
            base, cap = self._backoff
            delay = min(cap, base * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            if wait is not None:
                delay = max(delay, wait)
            if time.monotonic() + delay > deadline or self._stop.is_set():
                self._counts["failed"] += n
                logger.warning(
                    "lanterna: gave up on %d events after %d attempts (%s)", n, attempt, reason
                )
                return
            self._counts["retried"] += 1
            logger.debug("lanterna: retrying %d events in %.2f s (%s)", n, delay, reason)
            self._stop.wait(delay)

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
