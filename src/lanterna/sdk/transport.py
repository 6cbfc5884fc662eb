"""The SDK's one HTTP transport: base URL, auth, headers, proxy, TLS, timeouts, retry rules.

Every request the SDK makes goes through :class:`Transport`: the exporter's ingestion
batches (over one kept-alive :class:`Session`), the prompt cache's fetches and the
client's read helpers (a connection per request, so any thread may call them).

- **Auth and headers**: Basic ``public_key:secret_key``; ``User-Agent:
  lanterna-python/<version>`` and Langfuse's ``x-langfuse-sdk-*`` and
  ``x-langfuse-public-key`` headers. The secret is never logged or shown in a repr.
- **Proxy**: ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` from the environment (an HTTPS
  target is tunnelled with ``CONNECT``; credentials in the proxy URL are sent as
  ``Proxy-Authorization``).
- **TLS**: verified against certifi's CA bundle when installed, else the system's;
  ``verify`` may name another CA bundle file, or be False to turn verification off.
- **Errors**: no answer raises :class:`~lanterna.sdk.errors.LanternaConnectionError`
  (:class:`~lanterna.sdk.errors.LanternaTimeoutError` when the timeout passed); no
  ``http.client``, ``ssl`` or socket exception leaves this module.
- **Retry rules** (:data:`OUTAGE_STATUSES`, :data:`RETRY_STATUSES`, :func:`backoff`,
  :func:`retry_after`): connection errors, 429, 502, 503 and 504 say the server is
  away or overloaded and are worth waiting out; 408, 425 and 500 may be a fault of
  the request itself and are retried only a few times. Waits grow exponentially with
  jitter and are at least what ``Retry-After`` asks.

It uses the standard library's ``http.client``: a plain connection holds no reference
cycles (sent bodies are freed at once), costs less CPU per request than httpx, and is
not traced by instrumentations of httpx or requests. Modules are imported on first
use, not when ``lanterna`` is imported.
"""

from __future__ import annotations

import random
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from .errors import LanternaConnectionError, LanternaTimeoutError

if TYPE_CHECKING:
    import http.client
    import ssl

#: The server is unreachable or overloaded: the exporter retries these (and connection
#: errors) for as long as its queue has room.
OUTAGE_STATUSES = frozenset({429, 502, 503, 504})
#: Every status worth another attempt; those not in :data:`OUTAGE_STATUSES` may be a
#: fault of the request and are retried at most :data:`FAULT_RETRIES` times.
RETRY_STATUSES = OUTAGE_STATUSES | {408, 425, 500}
FAULT_RETRIES = 2
#: Backoff of explicit (blocking) calls: 0.1 s doubling to 1 s, with jitter; a
#: ``Retry-After`` longer than :data:`MAX_CALL_WAIT` ends the retries instead.
CALL_BACKOFF = (0.1, 1.0)
MAX_CALL_WAIT = 5.0
INGESTION_PATH = "/api/public/ingestion"

#: The retry jitter's own generator: the exporter thread never moves the global
#: ``random`` state that the application (or its tests) may rely on.
_jitter = random.Random()


class Clock(Protocol):
    """What retries wait on; tests inject one whose time they control."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Wait ``seconds`` or until ``stop`` is set; True when it was set."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """``stop.wait(seconds)``."""
        return stop.wait(seconds)


SYSTEM_CLOCK = SystemClock()
_NEVER = threading.Event()  # never set: a plain sleep through Clock.wait


def backoff(attempt: int, base: float, cap: float) -> float:
    """The wait before retry ``attempt`` (1, 2, ...): ``base`` doubling up to ``cap``,
    times a random factor in [0.5, 1) so that many clients do not retry in step."""
    return min(cap, base * 2 ** (attempt - 1)) * (0.5 + _jitter.random() / 2)


def retry_after(headers: Any) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (seconds or an HTTP date), or None."""
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


class Reply:
    """One answer: status, headers (case-insensitive ``get``) and the raw body."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: Any, content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        """The body parsed as JSON (raises ``orjson.JSONDecodeError`` if it is not)."""
        return orjson.loads(self.content)

    def data(self) -> Any:
        """The body parsed as JSON, or None when it is empty or not JSON."""
        try:
            return orjson.loads(self.content) if self.content else None
        except orjson.JSONDecodeError:
            return None


class Transport:
    """Requests to one Lanterna (or Langfuse) server; see the module docstring."""

    def __init__(
        self,
        base_url: str,
        public_key: str,
        secret_key: str,
        *,
        timeout: float = 20.0,
        verify: bool | str = True,
        version: str = "",
    ) -> None:
        import base64

        self.base_url = base_url.rstrip("/")
        #: Seconds to wait for a connection and for each read of an answer.
        self.timeout = timeout
        self.verify = verify
        parts = urllib.parse.urlsplit(self.base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path
        self._origin = f"{parts.scheme}://{parts.netloc}"
        token = base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()
        version = version or _version()
        self.headers: dict[str, str] = {
            "Authorization": f"Basic {token}",
            "Accept": "application/json",
            "User-Agent": f"lanterna-python/{version}",
            "x-langfuse-sdk-name": "lanterna-python",
            "x-langfuse-sdk-version": version,
            "x-langfuse-public-key": public_key,
        }
        self._route: tuple[str | None, dict[str, str]] | None = None  # resolved on first use
        self._tls: ssl.SSLContext | None = None

    def __repr__(self) -> str:
        return f"<Transport {self.base_url}>"

    # --- connections -------------------------------------------------------------------

    def prepare(self) -> None:
        """Import what requests need and resolve the proxy now, on the calling thread.

        The exporter calls it when a client is made: imports cost tens of milliseconds
        (too much for ``import lanterna``), and one running on the exporter thread when
        the app calls ``fork()`` would leave the child a half-initialised module.
        """
        import encodings.idna  # noqa: F401  (socket.create_connection encodes host names)
        import http.client  # noqa: F401  (imports ssl too)

        self._proxy()
        if self._https:
            self._tls_context()

    def _proxy(self) -> tuple[str | None, dict[str, str]]:
        """The proxy URL for the server (None: direct) and its ``Proxy-Authorization``."""
        if self._route is None:
            import urllib.request

            scheme = "https" if self._https else "http"
            proxy = urllib.request.getproxies().get(scheme)
            if not proxy or urllib.request.proxy_bypass(self._host):
                self._route = (None, {})
            else:
                self._route = (proxy, _proxy_auth(proxy))
        return self._route

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            import ssl

            if self.verify is False:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            elif isinstance(self.verify, str):
                context = ssl.create_default_context(cafile=self.verify)
            else:
                try:  # the CA bundle httpx and requests use, when present
                    import certifi

                    context = ssl.create_default_context(cafile=certifi.where())
                except ImportError:  # pragma: no cover
                    context = ssl.create_default_context()
            self._tls = context
        return self._tls

    def connect(self, timeout: float | None = None) -> tuple[http.client.HTTPConnection, str]:
        """A new (not yet opened) connection, and what to put before a path in requests
        on it (an absolute URL through a plain-HTTP proxy)."""
        import http.client

        timeout = self.timeout if timeout is None else timeout
        proxy, auth = self._proxy()
        host, port = self._host, self._port
        if proxy is not None:
            parts = urllib.parse.urlsplit(proxy)
            host, port = parts.hostname or "localhost", parts.port or 8080
        target = self._prefix
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(
                host, port, timeout=timeout, context=self._tls_context()
            )
            if proxy is not None:
                conn.set_tunnel(self._host, self._port, headers=auth)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            if proxy is not None:
                target = self._origin + self._prefix
        return conn, target

    def request_headers(self, content_type: str | None = None) -> dict[str, str]:
        """Headers of one request: auth, SDK, proxy auth (plain HTTP proxy), content type."""
        headers = dict(self.headers)
        if content_type:
            headers["Content-Type"] = content_type
        proxy, auth = self._proxy()
        if proxy is not None and not self._https:
            headers.update(auth)
        return headers

    # --- requests ----------------------------------------------------------------------

    def send(
        self, method: str, path: str, body: Any = None, *, timeout: float | None = None
    ) -> Reply:
        """One request on a connection of its own; ``body`` (JSON-encoded unless bytes).

        Raises :class:`LanternaConnectionError` (or :class:`LanternaTimeoutError`) when
        no answer came; any status is returned.
        """
        import http.client

        data = body if body is None or isinstance(body, bytes) else orjson.dumps(body)
        headers = self.request_headers("application/json" if data is not None else None)
        timeout = self.timeout if timeout is None else timeout
        conn, prefix = self.connect(timeout)
        try:
            conn.request(method, prefix + path, body=data, headers=headers)
            response = conn.getresponse()
            return Reply(response.status, response.headers, response.read())
        except (http.client.HTTPException, OSError) as exc:
            raise no_answer(exc, timeout) from exc
        finally:
            conn.close()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        timeout: float | None = None,
        retries: int = 0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> Reply:
        """:meth:`send`, retried up to ``retries`` times on connection errors and
        :data:`RETRY_STATUSES` (:data:`CALL_BACKOFF`; ``Retry-After`` honoured up to
        :data:`MAX_CALL_WAIT`). Returns the last answer; raises the last
        :class:`LanternaConnectionError` when none came. Only for idempotent requests.
        """
        attempt = 0
        while True:
            wait: float | None = None
            try:
                reply = self.send(method, path, body, timeout=timeout)
            except LanternaConnectionError:
                if attempt >= retries:
                    raise
            else:
                if reply.status_code not in RETRY_STATUSES or attempt >= retries:
                    return reply
                wait = retry_after(reply.headers)
                if wait is not None and wait > MAX_CALL_WAIT:
                    return reply
            attempt += 1
            clock.wait(max(backoff(attempt, *CALL_BACKOFF), wait or 0.0), _NEVER)

    def session(self) -> Session:
        """One kept-alive connection for one thread at a time (the exporter's)."""
        return Session(self)


class Session:
    """Requests over one kept-alive connection; a connection the server closed while
    idle is reopened once without counting as a failure. Not thread-safe."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._conn: http.client.HTTPConnection | None = None
        self._prefix = ""
        self._headers: dict[str, str] | None = None

    def post(self, path: str, body: bytes) -> Reply:
        """POST a JSON body; raises :class:`LanternaConnectionError` when no answer came."""
        import http.client

        if self._headers is None:
            self._headers = self.transport.request_headers("application/json")
        for attempt in (0, 1):
            reused = self._conn is not None
            if self._conn is None:
                self._conn, self._prefix = self.transport.connect()
            conn = self._conn
            try:
                conn.request("POST", self._prefix + path, body=body, headers=self._headers)
                response = conn.getresponse()
                content = response.read()
            except (http.client.HTTPException, OSError) as exc:
                conn.close()
                self._conn = None
                stale = isinstance(
                    exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
                )
                if reused and stale and attempt == 0:
                    continue  # the server closed an idle kept-alive connection: once more
                raise no_answer(exc, self.transport.timeout) from exc
            if response.will_close:
                conn.close()
                self._conn = None
            return Reply(response.status, response.headers, content)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close the connection (a later request opens another)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def forget(self) -> None:
        """Drop the connection without closing it (in a forked child: it is the parent's)."""
        self._conn = None


def no_answer(exc: BaseException, timeout: float) -> LanternaConnectionError:
    """The SDK's exception for a request that got no answer because of ``exc``."""
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError
        return LanternaTimeoutError(f"no answer within {timeout:g} s ({exc or 'timed out'})")
    return LanternaConnectionError(f"{type(exc).__name__}: {exc}")


def _proxy_auth(proxy: str) -> dict[str, str]:
    import base64

    parts = urllib.parse.urlsplit(proxy)
    if not parts.username:
        return {}
    raw = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
    return {"Proxy-Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


def _version() -> str:
    from .. import __version__

    return __version__
