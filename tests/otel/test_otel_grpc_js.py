"""OTLP over gRPC from a second, non-Python client: the OpenTelemetry JS SDK with
``@opentelemetry/exporter-trace-otlp-grpc`` (installed by ``scripts/test`` from
tests/clients/otel-js into ``.venvs/otel-js``). The script records an application's spans
once and exports the same spans over gRPC (gzip, as collectors send by default; the key
pair in the ``authorization`` metadata) to one project and over OTLP/HTTP
(``@opentelemetry/exporter-trace-otlp-proto``) to another: the read API answers the same
for both. The bytes on the wire are checked to be gzip-compressed gRPC messages. A span
carrying a data-URI image lands as media. Both stores."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from test_otel_sdk_exporter import CHAT_INPUT, CHAT_OUTPUT

from media_files import media_id, png, token
from support import LiveServer, Project, free_port, new_project, run_node_script, serve

pytestmark = pytest.mark.slow

#: What differs between the same spans stored in two projects.
PER_PROJECT = {"projectId", "htmlPath", "createdAt", "updatedAt"}


class WireTap:
    """A loopback TCP relay in front of the gRPC port that keeps a copy of every byte the
    client sent (the exporter connects to :attr:`port`)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.sent = bytearray()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._start(self._accept)

    def _start(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed by close()
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self._sockets += [client, upstream]
            self._start(self._pump, client, upstream, True)
            self._start(self._pump, upstream, client, False)

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while chunk := src.recv(65536):
                if record:
                    with self._lock:
                        self.sent += chunk
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            sock.close()
        for thread in self._threads:
            thread.join(5)

    def grpc_messages(self) -> list[tuple[int, bytes]]:
        """The gRPC messages the client sent: (compressed flag, payload) each, read from
        the HTTP/2 DATA frames of every stream."""
        with self._lock:
            data = bytes(self.sent)
        preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        assert data.startswith(preface)
        streams: dict[int, bytearray] = {}
        at = len(preface)
        while at + 9 <= len(data):
            length = int.from_bytes(data[at : at + 3], "big")
            kind, flags = data[at + 3], data[at + 4]
            stream = int.from_bytes(data[at + 5 : at + 9], "big") & 0x7FFFFFFF
            payload = data[at + 9 : at + 9 + length]
            at += 9 + length
            if kind == 0:  # DATA
                if flags & 0x8:  # PADDED
                    payload = payload[1 : len(payload) - payload[0]]
                streams.setdefault(stream, bytearray()).extend(payload)
        messages = []
        for body in streams.values():
            pos = 0
            while pos + 5 <= len(body):
                size = int.from_bytes(body[pos + 1 : pos + 5], "big")
                messages.append((body[pos], bytes(body[pos + 5 : pos + 5 + size])))
                pos += 5 + size
        return messages


@pytest.fixture
def grpc_server(db_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, int]]:
    """A live server with the gRPC receiver on; its gRPC port."""
    port = free_port()
    with serve(db_url, tmp_path, otlp_grpc_port=port) as server:
        yield server, port


def _basic(project: Project) -> str:
    return "Basic " + base64.b64encode(":".join(project.auth).encode()).decode()


def run_js(
    scenario: str, server: LiveServer, grpc_port: int, twin: Project, **env: str
) -> list[dict[str, Any]]:
    """Run the JS exporter script; the spans it recorded. Both exports must succeed."""
    env.update(
        LANTERNA_GRPC_URL=f"http://127.0.0.1:{grpc_port}",
        LANTERNA_GRPC_AUTH=_basic(server.project),
        LANTERNA_HTTP_URL=f"{server.url}/api/public/otel/v1/traces",
        LANTERNA_HTTP_AUTH=_basic(twin),
    )
    out = run_node_script("otel-js", "otel-js/export.cjs", env, scenario)
    success = {"code": 0, "error": None}
    assert out["results"] == {"grpc": success, "http": success}
    spans: list[dict[str, Any]] = out["spans"]
    return spans


def get_trace(server: LiveServer, project: Project, trace_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{server.url}/api/public/traces/{trace_id}", auth=project.auth, timeout=10
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _without_project(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_project(v) for k, v in value.items() if k not in PER_PROJECT}
    if isinstance(value, list):
        return [_without_project(v) for v in value]
    return value


def assert_same_answers(
    server: LiveServer, twin: Project, trace_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The trace as exported over gRPC and as exported over HTTP: equal but for the
    project; both answers."""
    over_grpc = get_trace(server, server.project, trace_id)
    over_http = get_trace(server, twin, trace_id)
    assert over_grpc["projectId"] == server.project.id and over_http["projectId"] == twin.id
    assert _without_project(over_grpc) == _without_project(over_http)
    return over_grpc, over_http


def test_js_sdk_exports_over_grpc_with_gzip_as_over_http(grpc_server) -> None:
    server, port = grpc_server
    twin = new_project(server.db_url, "HTTP twin")
    tap = WireTap(port)
    try:
        spans = run_js("rag", server, tap.port, twin)
    finally:
        tap.close()

    # What went over the wire: gzip-compressed gRPC messages holding these spans.
    messages = tap.grpc_messages()
    assert messages and all(flag == 1 for flag, _ in messages)
    sent = [ExportTraceServiceRequest.FromString(gzip.decompress(m)) for _, m in messages]
    names = [
        span.name
        for request in sent
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert sorted(names) == sorted(s["name"] for s in spans)

    (trace_id,) = {s["traceId"] for s in spans}
    trace, _ = assert_same_answers(server, twin, trace_id)
    ids = {s["name"]: s["spanId"] for s in spans}
    assert trace["name"] == "answer-question"
    assert (trace["userId"], trace["sessionId"]) == ("alice", "chat-9")
    assert trace["environment"] == "production"
    obs = {o["id"]: o for o in trace["observations"]}
    assert set(obs) == set(ids.values())
    root = obs[ids["answer-question"]]
    assert root["level"] == "ERROR" and root["statusMessage"] == "downstream failed"
    tool = obs[ids["execute_tool web-search"]]
    assert (tool["type"], tool["name"]) == ("TOOL", "web-search")
    assert tool["level"] == "ERROR" and tool["statusMessage"] == "search index offline"
    assert tool["parentObservationId"] == ids["answer-question"]
    chat = obs[ids["chat claude-3-5-sonnet"]]
    assert chat["name"] == "chat claude-3-5-sonnet"
    assert chat["parentObservationId"] == ids["answer-question"]
    assert chat["type"] == "GENERATION"
    assert chat["model"] == "claude-3-5-sonnet"
    assert chat["modelParameters"] == {"temperature": 0.2, "max_tokens": 256}
    assert chat["usageDetails"] == {"input": 200, "output": 40, "total": 240}
    assert (chat["input"], chat["output"]) == (CHAT_INPUT, CHAT_OUTPUT)
    assert chat["metadata"]["attributes"]["gen_ai.system"] == "anthropic"
    scope = chat["metadata"]["scope"]
    assert (scope["name"], scope["version"]) == ("rag-app-js", "2.0.0")


def test_a_data_uri_image_exported_over_grpc_lands_as_media(grpc_server) -> None:
    server, port = grpc_server
    twin = new_project(server.db_url, "HTTP twin")
    image = png(rgb=(5, 100, 200))
    uri = "data:image/png;base64," + base64.b64encode(image).decode()
    spans = run_js("vision", server, port, twin, LANTERNA_IMAGE_URI=uri)

    (span,) = spans
    trace, _ = assert_same_answers(server, twin, span["traceId"])
    (obs,) = trace["observations"]
    assert obs["input"][0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": token(image, "image/png")},
    }
    assert uri not in json.dumps(trace)  # the trace stays small
    for project in (server.project, twin):
        media = httpx.get(
            f"{server.url}/api/public/media/{media_id(image)}", auth=project.auth, timeout=10
        )
        assert media.status_code == 200, media.text
        assert (media.json()["contentType"], media.json()["contentLength"]) == (
            "image/png",
            len(image),
        )
        assert httpx.get(media.json()["url"], timeout=10).content == image
