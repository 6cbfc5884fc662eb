"""Gzip on the ingestion route, OTLP id checks per span, CORS on the public API only."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from helpers import event

TRACE = "0af7651916cd43dd8448eb211c80319c"


def _batch(*ids: str) -> bytes:
    return json.dumps(
        {"batch": [event("trace-create", {"id": i, "name": "gz"}) for i in ids]}
    ).encode()


def test_gzip_ingestion_is_accepted(api):
    response = api.post(
        "/api/public/ingestion",
        content=gzip.compress(_batch("gz-1", "gz-2")),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 207, response.text
    assert len(response.json()["successes"]) == 2
    assert api.get("/api/public/traces/gz-2").json()["name"] == "gz"
    deflated = api.post(
        "/api/public/ingestion",
        content=zlib.compress(_batch("gz-3")),
        headers={"Content-Type": "application/json", "Content-Encoding": "deflate"},
    )
    assert deflated.status_code == 207 and deflated.json()["successes"]


@pytest.mark.parametrize(
    ("encoding", "body", "status", "reason"),
    [
        ("gzip", b"not gzip at all", 400, "Failed to decompress gzip body"),
        ("br", b"whatever", 415, "Unsupported content encoding 'br'"),
        # 21 MiB of zeros squeezed into about 20 KiB: the decompressed size is capped.
        ("gzip", gzip.compress(b"0" * (21 * 1024 * 1024)), 413, "Decompressed body is larger"),
    ],
)
def test_bad_compressed_ingestion_gets_a_clear_error(api, encoding, body, status, reason):
    response = api.post(
        "/api/public/ingestion",
        content=body,
        headers={"Content-Type": "application/json", "Content-Encoding": encoding},
    )
    assert response.status_code == status, response.text
    assert reason in response.json()["message"]


def _json_span(name: str, trace_id: str, span_id: str) -> dict:
    return {
        "name": name,
        "traceId": trace_id,
        "spanId": span_id,
        "startTimeUnixNano": "1714557600000000000",
        "endTimeUnixNano": "1714557601000000000",
    }


def test_otlp_spans_with_bad_ids_are_rejected_one_by_one(api):
    spans = [
        _json_span("good", TRACE, "b7ad6b7169203331"),
        _json_span("not hex", "zz" * 16, "b7ad6b7169203332"),
        _json_span("short", "0af7", "b7ad6b7169203333"),
        _json_span("zero", "0" * 32, "b7ad6b7169203334"),
    ]
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
    response = api.post(
        "/api/public/otel/v1/traces", content=json.dumps(doc),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "3"
    assert "'not hex': traceId must be 32 hex digits" in partial["errorMessage"]
    assert "'short'" in partial["errorMessage"] and "'zero'" in partial["errorMessage"]
    assert api.get(f"/api/public/traces/{TRACE}").status_code == 200
    assert api.get(f"/api/public/observations/{'b7ad6b7169203331'}").status_code == 200


def test_otlp_protobuf_spans_with_bad_ids_are_rejected_one_by_one(api):
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for name, trace_id, span_id in [
        ("good", bytes.fromhex(TRACE), bytes.fromhex("c7ad6b7169203331")),
        ("short", b"\x01\x02\x03\x04", bytes.fromhex("c7ad6b7169203332")),
    ]:
        span = scope.spans.add(name=name, trace_id=trace_id, span_id=span_id)
        span.start_time_unix_nano = 1714557600000000000
        span.end_time_unix_nano = 1714557601000000000
    response = api.post(
        "/v1/traces", content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "'short': traceId must be 32 hex digits" in answer.partial_success.error_message
    assert api.get("/api/public/observations/c7ad6b7169203331").status_code == 200


ORIGIN = {"Origin": "https://evil.example"}


@pytest.mark.parametrize("path", ["/login", "/account", "/projects", "/static/app.css"])
def test_no_cors_on_dashboard_routes(api, path):
    response = api.get(path, headers=ORIGIN, follow_redirects=False)
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers
    preflight = api.options(path, headers={**ORIGIN, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


@pytest.mark.parametrize("path", ["/api/public/health", "/api/public/scores", "/v1/traces"])
def test_cors_on_public_api_routes_without_credentials(api, path):
    response = api.get(path, headers=ORIGIN)
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    preflight = api.options(
        path,
        headers={
            **ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in preflight.headers
