"""Real OpenTelemetry SDK spans, encoded as the OTLP exporters encode them.

Spans are recorded with the SDK's in-memory exporter and encoded with the same
``opentelemetry-proto`` encoder the OTLP/HTTP exporter uses. The JSON form is built from
those messages with hex ids, as OTLP/JSON (and the JS exporter) writes them.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

PROTOBUF = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}


def record(
    work: Callable[[Tracer], None],
    resource: dict[str, Any] | None = None,
    scope: str = "test-app",
) -> list[ReadableSpan]:
    """Run ``work`` with a tracer; return the finished spans (children first)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource or {}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        work(provider.get_tracer(scope, "0.1.0"))
    finally:
        provider.shutdown()
    return list(exporter.get_finished_spans())


def trace_id(spans: Sequence[ReadableSpan]) -> str:
    """The hex trace id shared by ``spans``."""
    return format(spans[0].context.trace_id, "032x")


def span_id(span: ReadableSpan) -> str:
    """The hex span id."""
    return format(span.context.span_id, "016x")


def by_name(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    """The span called ``name``."""
    [found] = [s for s in spans if s.name == name]
    return found


def protobuf(spans: Sequence[ReadableSpan]) -> bytes:
    """A binary ``ExportTraceServiceRequest``."""
    return encode_spans(spans).SerializeToString()


def otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """An OTLP/JSON export: protobuf's JSON mapping with the ids rewritten as hex."""
    request = encode_spans(spans)
    doc = json_format.MessageToDict(request)
    for r, resource_spans in enumerate(request.resource_spans):
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            for i, span in enumerate(scope_spans.spans):
                out = doc["resourceSpans"][r]["scopeSpans"][s]["spans"][i]
                out["traceId"] = span.trace_id.hex()
                out["spanId"] = span.span_id.hex()
                if span.parent_span_id:
                    out["parentSpanId"] = span.parent_span_id.hex()
                out.pop("links", None)
    return doc


def gzipped(body: bytes) -> bytes:
    """``body`` gzip-compressed."""
    return gzip.compress(body)
