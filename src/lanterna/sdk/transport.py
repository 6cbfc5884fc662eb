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
not traced by instrumentations of httpx or requests. The exporter's :class:`Session`
uses it to open its connection and then writes requests and reads answers on the socket
itself (see there). Modules are imported on first use, not when ``lanterna`` is
imported.
"""

from __future__ import annotations

import contextlib
import random
import sys
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
    """POSTs over one kept-alive connection (the exporter's ingestion batches); a
    connection the server closed while idle is reopened once without counting as a
    failure. Not thread-safe.

    ``http.client`` opens the connection (proxy tunnel, TLS, timeout) and the request
    and its answer then go over its socket directly: ``http.client`` spends about
    100 µs of Python on each request and answer (header checks, the ``email`` parser),
    a fifth of a noop call's delivery cost at 500 calls a batch. The head is built once;
    a plain socket sends head and body in one ``sendmsg`` (no copy of the body), a TLS
    socket one concatenation (as ``http.client`` does: one write, so Nagle's algorithm
    and delayed ACKs never hold the body back). Answers may carry ``Content-Length``, be
    chunked, or end with the connection; informational (1xx) answers are skipped.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._conn: http.client.HTTPConnection | None = None
        self._sock: Any = None
        self._plain = True
        self._head: bytes | None = None  # per path: the request head, ``%d`` for the length
        self._path = ""
        self._prefix = ""
        # Received and not yet read; a bytearray, whose front ``del`` is O(1) in CPython.
        self._buffer = bytearray()
        self._heard = False  # has any byte of the current answer arrived?

    def post(self, path: str, body: bytes) -> Reply:
        """POST a JSON body; raises :class:`LanternaConnectionError` when no answer came."""
        for attempt in (0, 1):
            reused = self._sock is not None
            self._heard = False
            try:
                if self._sock is None:
                    self._open()
                if self._head is None or self._path != path:
                    self._head, self._path = self._request_head(path), path
                try:
                    self._send(self._head % len(body), body)
                except (BrokenPipeError, ConnectionResetError) as failed:
                    # The server may have answered before it stopped reading (a 413 for
                    # a body over its limit) and closed: read that answer if it came.
                    try:
                        status, headers, content, _ = self._answer()
                    except (OSError, _BadAnswer):
                        raise failed from None
                    self.close()
                    return Reply(status, headers, content)
                status, headers, content, close = self._answer()
            except (OSError, _BadAnswer) as exc:
                self.close()
                if reused and attempt == 0 and not self._heard and _stale(exc):
                    continue  # the server closed an idle kept-alive connection: once more
                raise no_answer(exc, self.transport.timeout) from exc
            if close:
                self.close()
            return Reply(status, headers, content)
        raise AssertionError("unreachable")  # pragma: no cover

    def _open(self) -> None:
        import http.client
        import socket

        conn, prefix = self.transport.connect()
        try:
            conn.connect()  # the proxy's tunnel and TLS, when there are
            sock = conn.sock
            if sock is None:  # pragma: no cover - connect() always sets it
                raise _BadAnswer("no socket")
            with contextlib.suppress(OSError):  # a Unix socket or a test double has none
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except http.client.HTTPException as exc:  # a proxy's answer to CONNECT unreadable
            conn.close()
            raise _BadAnswer(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._conn, self._sock, self._prefix = conn, sock, prefix
        self._plain = not hasattr(sock, "getpeercert")  # an SSLSocket has no sendmsg
        self._head = None
        self._buffer = bytearray()

    def _request_head(self, path: str) -> bytes:
        """The head of a POST to ``path``, with ``%d`` where the body's length goes."""
        transport = self.transport
        host = transport._host
        if ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        default = 443 if transport._https else 80
        netloc = host if transport._port == default else f"{host}:{transport._port}"
        lines = [f"POST {self._prefix + path} HTTP/1.1", f"Host: {netloc}"]
        lines.append("Accept-Encoding: identity")
        for name, value in transport.request_headers("application/json").items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"header {name!r} holds a line break")
            lines.append(f"{name}: {value}")
        head = ("\r\n".join(lines) + "\r\n").encode("latin-1").replace(b"%", b"%%")
        return head + b"Content-Length: %d\r\n\r\n"

    def _send(self, head: bytes, body: bytes) -> None:
        sock = self._sock
        if not self._plain:
            sock.sendall(head + body)
            return
        sent = sock.sendmsg([head, body])
        if sent < len(head):
            sock.sendall(head[sent:])
            sock.sendall(body)
        elif sent < len(head) + len(body):
            sock.sendall(memoryview(body)[sent - len(head) :])

    def _fill(self) -> None:
        data = self._sock.recv(65536)
        if not data:
            raise _BadAnswer("the server closed the connection in the middle of its answer")
        self._buffer += data

    def _answer(self) -> tuple[int, _Headers, bytes, bool]:
        """Status, headers, body and whether the connection ends with this answer.

        Read as leniently as ``http.client`` reads: line ends CRLF or LF, empty lines
        before a status line skipped, repeated headers joined with commas (a repeated
        ``Content-Length`` of one value is that value), a chunked body whose connection
        ends after the last chunk."""
        buffer = self._buffer
        while True:
            _skip_line_ends(buffer)
            while not buffer:
                data = self._sock.recv(65536)
                if not data:  # no answer at all: an idle connection the server had closed
                    raise _Closed("the server closed the connection without answering")
                buffer += data
                _skip_line_ends(buffer)
            self._heard = True
            while (end := _head_end(buffer)) < 0:
                if len(buffer) > _MAX_HEAD:
                    raise _BadAnswer("the answer's head is too long")
                self._fill()
            lines = bytes(buffer[:end]).decode("latin-1").split("\n")
            del buffer[: end + (3 if buffer[end + 1] == 13 else 2)]
            parts = lines[0].split(None, 2)
            version = parts[0] if parts else ""
            code = parts[1] if len(parts) > 1 else ""
            if not (version.startswith("HTTP/1.") and len(code) == 3 and _digits(code)):
                raise _BadAnswer(f"not an HTTP answer: {lines[0][:60]!r}")
            status = int(code)
            headers = _Headers()
            for line in lines[1:]:
                name, colon, value = line.partition(":")
                if colon:
                    name, value = name.strip().lower(), value.strip()
                    seen = headers.get(name)
                    headers[name] = value if seen is None else f"{seen}, {value}"
            if not 100 <= status < 200:
                break
        connection = headers.get("connection", "").lower()
        close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
        if status in (204, 304):
            return status, headers, b"", close
        if "chunked" in headers.get("transfer-encoding", "").lower():
            content, ended = self._chunked()
            return status, headers, content, close or ended
        length = headers.get("content-length")
        if length is None:  # the body ends with the connection
            pieces = [bytes(buffer)]
            while data := self._sock.recv(65536):
                pieces.append(data)
            buffer.clear()
            return status, headers, b"".join(pieces), True
        values = {value.strip() for value in length.split(",")}
        size = values.pop() if len(values) == 1 else ""
        if not _digits(size):
            raise _BadAnswer(f"bad Content-Length {length[:30]!r}")
        return status, headers, self._take(int(size)), close

    def _take(self, n: int) -> bytes:
        buffer = self._buffer
        while len(buffer) < n:
            data = self._sock.recv(max(65536, min(n - len(buffer), 1 << 20)))
            if not data:
                raise _BadAnswer("the server closed the connection in the middle of its answer")
            buffer += data
        data = bytes(buffer[:n])
        del buffer[:n]
        return data

    def _line(self) -> bytes | None:
        """The next line without its line end; None: the connection ended first."""
        buffer = self._buffer
        while (end := buffer.find(b"\n")) < 0:
            if len(buffer) > _MAX_HEAD:
                raise _BadAnswer("a chunk's size line is too long")
            data = self._sock.recv(65536)
            if not data:
                return None
            buffer += data
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        return line[:-1] if line.endswith(b"\r") else line

    def _chunked(self) -> tuple[bytes, bool]:
        """A chunked body, and whether the connection ended right after its last chunk."""
        parts: list[bytes] = []
        while True:
            line = self._line()
            if line is None:
                raise _BadAnswer("the server closed the connection in the middle of its answer")
            size = line.split(b";", 1)[0].strip()
            try:
                n = int(size, 16)
            except ValueError:
                n = -1
            if n < 0:
                raise _BadAnswer(f"bad chunk size {size[:30]!r}")
            if n == 0:
                while line := self._line():  # trailer fields, up to the empty line
                    pass
                return b"".join(parts), line is None
            parts.append(self._take(n))
            if self._line() != b"":
                raise _BadAnswer("a chunk does not end with a line end")

    def close(self) -> None:
        """Close the connection (a later request opens another)."""
        conn, self._conn, self._sock = self._conn, None, None
        self._buffer = bytearray()
        if conn is not None:
            conn.close()

    def forget(self) -> None:
        """Drop the connection without closing it (in a forked child: it is the parent's)."""
        self._conn = self._sock = None
        self._buffer = bytearray()


_MAX_HEAD = 65536


def _skip_line_ends(buffer: bytearray) -> None:
    """Drop the CR and LF bytes at the front (between answers, some servers send one)."""
    n = 0
    while n < len(buffer) and buffer[n] in (10, 13):
        n += 1
    if n:
        del buffer[:n]


def _head_end(buffer: bytearray) -> int:
    """Where an answer's head ends: the index of the LF ending its last line (the empty
    line after it follows, ``\\r\\n`` or ``\\n``), or -1 when it is not all here."""
    crlf, lf = buffer.find(b"\n\r\n"), buffer.find(b"\n\n")
    if crlf < 0:
        return lf
    return crlf if lf < 0 or crlf < lf else lf


def _digits(text: str) -> bool:
    """Only ASCII digits (``isdigit`` alone takes superscripts, which ``int`` refuses)."""
    return text.isascii() and text.isdigit()


def _stale(exc: BaseException) -> bool:
    """Did sending or the first read fail as on a connection the server had closed?"""
    if isinstance(exc, (_Closed, ConnectionResetError, BrokenPipeError)):
        return True
    ssl = sys.modules.get("ssl")  # a TLS peer gone without close_notify
    return ssl is not None and isinstance(exc, ssl.SSLEOFError)


class _BadAnswer(Exception):
    """What came back is not an HTTP answer we can read."""


class _Closed(_BadAnswer):
    """The server closed the connection before (or while) answering."""


class _Headers(dict[str, str]):
    """An answer's headers, names in lower case; ``get`` takes any case."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())


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
