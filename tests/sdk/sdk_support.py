"""Helpers for the SDK tests: read the live server back, and a scriptable stand-in for the
ingestion endpoint (fault tests)."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


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
        deadline = time.monotonic() + timeout
        while True:
            response = self.http.get(f"/api/public/traces/{trace_id}")
            if response.status_code == 200:
                body = response.json()
                if len(body["observations"]) >= observations:
                    return body  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, f"trace {trace_id} did not arrive"
            time.sleep(0.05)


def by_name(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A trace's observations keyed by name."""
    return {o["name"]: o for o in trace["observations"]}


# --- a scriptable stand-in for the ingestion endpoint -----------------------------------


@dataclass
class Reply:
    """One scripted answer: status, JSON body (None: a 207 accepting everything),
    headers, and a delay before answering."""

    status: int = 207
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up
            super().handle_error(request, client_address)


class StandIn:
    """A local HTTP server that records ingestion batches and answers from a script
    (a GET answers from the same script, by default 200 ``{}``)."""

    def __init__(self, port: int = 0) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.script: list[Reply] = []
        self.requests = 0
        self.times: list[float] = []
        self.gets: list[str] = []
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                with stand_in.lock:
                    stand_in.requests += 1
                    stand_in.times.append(time.monotonic())
                    reply = stand_in.script.pop(0) if stand_in.script else Reply()
                time.sleep(reply.delay)
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
                time.sleep(reply.delay)
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

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A TCP port nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
