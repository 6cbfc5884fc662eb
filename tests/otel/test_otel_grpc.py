"""OTLP over gRPC (``--otlp-grpc-port``): the stock ``opentelemetry-sdk`` with
``opentelemetry-exporter-otlp-proto-grpc`` exports to the receiver; the spans land exactly
as over HTTP (the same application, the same checks of the read API); credentials go in
the ``authorization`` metadata; both stores."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_otel_sdk_exporter import RESOURCE, check_rag_trace, rag_app

from lanterna.store import projects
from support import SECRETS, LiveServer, _in_transaction, serve


def _free_port() -> int:
    # gRPC binds its own socket (it cannot be handed one), so a free port is picked here.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def grpc_server(db_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, int]]:
    """A live server with the gRPC receiver on; its gRPC port."""
    port = _free_port()
    with serve(db_url, tmp_path, otlp_grpc_port=port) as server:
        yield server, port


def _basic(secret_pair: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(":".join(secret_pair).encode()).decode()


@pytest.mark.parametrize("compression", [grpc.Compression.NoCompression, grpc.Compression.Gzip])
def test_spans_exported_over_grpc_land_as_over_http(grpc_server, compression) -> None:
    server, port = grpc_server
    exporter = OTLPSpanExporter(
        endpoint=f"127.0.0.1:{port}",
        insecure=True,
        headers={"authorization": _basic(server.project.auth)},
        timeout=10,
        compression=compression,
    )
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    rag_app(provider.get_tracer("rag-app", "1.2.3"))
    provider.shutdown()
    # The same checks as the HTTP exporter's test: the answer came after the commit.
    check_rag_trace(server, memory.get_finished_spans())


def test_wrong_credentials_are_refused(grpc_server) -> None:
    server, port = grpc_server
    exporter = OTLPSpanExporter(
        endpoint=f"127.0.0.1:{port}",
        insecure=True,
        headers={"authorization": _basic((server.project.public_key, "sk-lf-wrong"))},
        timeout=5,
    )
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("lost"):
        pass
    assert exporter.export(memory.get_finished_spans()) == SpanExportResult.FAILURE
    exporter.shutdown()

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as missing:
            stub.Export(ExportTraceServiceRequest(), timeout=5)
        assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as wrong:
            stub.Export(
                ExportTraceServiceRequest(),
                metadata=(("authorization", _basic((server.project.public_key, "nope"))),),
                timeout=5,
            )
        assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # A viewer key reads only: its spans are refused, as over HTTP.
        viewer = _in_transaction(
            server.db_url, lambda c: projects.create_key(c, server.project.id, role="viewer")
        )
        SECRETS.add(viewer.secret_key)
        with pytest.raises(grpc.RpcError) as read_only:
            stub.Export(
                ExportTraceServiceRequest(),
                metadata=(("authorization", _basic((viewer.public_key, viewer.secret_key))),),
                timeout=5,
            )
        assert read_only.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "may only read" in (read_only.value.details() or "")
        ok = stub.Export(
            ExportTraceServiceRequest(),
            metadata=(("authorization", _basic(server.project.auth)),),
            timeout=5,
        )
        assert not ok.HasField("partial_success")


def test_a_gzip_message_that_inflates_past_the_limit_is_refused(db_url, tmp_path) -> None:
    # 1 MB of one letter gzips to about 1 kB: the limit is on what it inflates to.
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\x01" * 16, b"\x02" * 8, "bomb"
    span.attributes.add(key="input.value").value.string_value = "a" * 1_000_000
    port = _free_port()
    with serve(db_url, tmp_path, otlp_grpc_port=port, max_request_bytes=200_000) as server:
        with grpc.insecure_channel(
            f"127.0.0.1:{port}", compression=grpc.Compression.Gzip
        ) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.Export(
                    request,
                    metadata=(("authorization", _basic(server.project.auth)),),
                    timeout=10,
                )
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        response = httpx.get(
            f"{server.url}/api/public/traces/{'01' * 16}", auth=server.project.auth, timeout=10
        )
        assert response.status_code == 404


def test_the_flag_alone_means_4317_and_bad_settings_are_refused(tmp_path: Path) -> None:
    from lanterna.cli import _settings, build_parser
    from lanterna.server.settings import Settings, SettingsError

    parser = build_parser()
    on = parser.parse_args(["serve", "--otlp-grpc-port", "--data-dir", str(tmp_path)])
    assert _settings(on).otlp_grpc_port == 4317
    other = parser.parse_args(["serve", "--otlp-grpc-port", "14317", "--data-dir", str(tmp_path)])
    assert _settings(other).otlp_grpc_port == 14317
    off = parser.parse_args(["serve", "--data-dir", str(tmp_path)])
    assert _settings(off).otlp_grpc_port == 0
    for bad in ({"otlp_grpc_port": 70000}, {"media_storage": "ftp"}, {"media_storage": "s3"},
                {"media_max_bytes": 0}):  # fmt: skip
        with pytest.raises(SettingsError):
            Settings(data_dir=str(tmp_path), **bad)
