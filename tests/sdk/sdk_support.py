"""Helpers for the SDK tests: read the live server back, a scriptable stand-in for the
ingestion endpoint (fault tests), and a virtual clock for the SDK's retry waits and
cache expiry."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from support import free_port, wait_until

__all__ = ["Reader", "Reply", "StandIn", "VirtualClock", "by_name", "free_port", "wait_until"]


class Reader:
    """Reads what the live server stored, through its public API."""

    def __init__(self, server: Any) -> None:
        self.http = httpx.Client(base_url=server.url, auth=server.project.auth, timeout=10)

    def trace(self, trace_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/public/traces/{trace_id}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def wait_trace(
        self, trace_id: str, observations: int = 1, timeout: float = 10
    ) -> dict[str, Any]:
        """The trace once it has at least ``observations`` observations."""
        found: list[dict[str, Any]] = []

        def arrived() -> bool:
            response = self.http.get(f"/api/public/traces/{trace_id}")
            if response.status_code == 200:
                body = response.json()
                if len(body["observations"]) >= observations:
                    found.append(body)
            return bool(found)

        wait_until(arrived, timeout, f"the arrival of trace {trace_id}")
        return found[0]


def by_name(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A trace's observations keyed by name."""
    return {o["name"]: o for o in trace["observations"]}


# --- a scriptable stand-in for the ingestion endpoint -----------------------------------


@dataclass
class Reply:
    """One scripted answer: status, JSON body (None: a 207 accepting everything),
    headers, and a gate: when given, the answer waits until the test sets it (a slow
    server whose slowness the test ends, instead of a delay in seconds)."""

    status: int = 207
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    gate: threading.Event | None = None


def _hold(reply: Reply) -> None:
    if reply.gate is not None:
        assert reply.gate.wait(30), "the test never opened the gate"


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up
            super().handle_error(request, client_address)


class StandIn:
    """A local HTTP server that records ingestion batches and answers from a script
    (a GET answers from the same script, by default 200 ``{}``)."""

    def __init__(self, port: int = 0, keep_alive: bool = False) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.script: list[Reply] = []
        self.requests = 0
        self.gets: list[str] = []
        self.lock = threading.Lock()
        stand_in = self

        #: open connections (``keep_alive``: HTTP/1.1, kept until the client closes them
        #: or :meth:`drop_connections`)
        self.connections: list[Any] = []

        class Handler(BaseHTTPRequestHandler):
            if keep_alive:
                protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with stand_in.lock:
                    stand_in.connections.append(self.connection)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                with stand_in.lock:
                    stand_in.requests += 1
                    reply = stand_in.script.pop(0) if stand_in.script else Reply()
                _hold(reply)
                batch = json.loads(raw)["batch"]
                if 200 <= reply.status < 300:
                    with stand_in.lock:
                        stand_in.batches.append(batch)
                body = reply.body
                if body is None and reply.status == 207:
                    body = {
                        "successes": [{"id": e["id"], "status": 201} for e in batch],
                        "errors": [],
                    }
                if callable(body):
                    body = body(batch)
                self._answer(reply, body)

            def do_GET(self) -> None:
                with stand_in.lock:
                    stand_in.requests += 1
                    stand_in.gets.append(self.path)
                    reply = stand_in.script.pop(0) if stand_in.script else Reply(200, {})
                _hold(reply)
                self._answer(reply, reply.body)

            def _answer(self, reply: Reply, body: Any) -> None:
                data = json.dumps(body if body is not None else {}).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for batch in self.batches for e in batch]

    def drop_connections(self) -> None:
        """Close every open connection from the server's side, as a server does with
        connections that were idle too long."""
        with self.lock:
            connections, self.connections = self.connections, []
        for conn in connections:
            with contextlib.suppress(OSError):  # closed already
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class VirtualClock:
    """Time that only the SDK's waits advance (a :class:`lanterna.sdk.transport.Clock`).

    Each retry wait moves virtual time on at once and is recorded in ``waited``;
    :meth:`advance` moves it by hand (a cache entry going stale). At each instant given to
    :meth:`at`, an action runs (on the waiting thread) and the clock then holds until
    :meth:`release` if the instant was given with ``hold=True``.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.waits = 0
        #: the seconds of each wait, in order
        self.waited: list[float] = []
        self._marks: list[tuple[float, Callable[[], Any] | None, bool]] = []
        self.reached: dict[float, threading.Event] = {}
        self._released: dict[float, threading.Event] = {}

    def at(self, when: float, action: Callable[[], Any] | None = None, hold: bool = False) -> None:
        self._marks.append((when, action, hold))
        self._marks.sort(key=lambda m: m[0])
        self.reached[when] = threading.Event()
        self._released[when] = threading.Event()

    def release(self, when: float) -> None:
        self._released[when].set()

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def monotonic(self) -> float:
        return self.now

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        self.waits += 1
        self.waited.append(seconds)
        target = self.now + seconds
        for when, action, hold in list(self._marks):
            if self.now < when <= target:
                self.now = when
                if action is not None:
                    action()
                self.reached[when].set()
                if hold:
                    assert self._released[when].wait(30), f"the test never released t={when}"
        self.now = max(self.now, target)
        return stop.is_set()
