"""The stock ``opentelemetry-sdk`` with ``OTLPSpanExporter`` (HTTP protobuf) against a live
server, spans carrying GenAI semantic-convention attributes; both stores."""

from __future__ import annotations

import base64

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from otel_spans import by_name, record, span_id, trace_id


def exporter(live_server, compression=Compression.NoCompression, **kwargs):
    token = base64.b64encode(":".join(live_server.project.auth).encode()).decode()
    return OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces",
        headers={"Authorization": f"Basic {token}"},
        compression=compression,
        timeout=10,
        **kwargs,
    )


def get_trace(live_server, trace: str) -> dict:
    response = httpx.get(
        f"{live_server.url}/api/public/traces/{trace}", auth=live_server.project.auth, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()


def rag_app(tracer):
    """A retrieval step, an embedding and a chat completion with old-style semconv keys."""
    with tracer.start_as_current_span("answer-question") as root:
        root.set_attribute("session.id", "chat-9")
        root.set_attribute("user.id", "alice")
        with tracer.start_as_current_span("embeddings text-embedding-3-small") as emb:
            emb.set_attribute("gen_ai.operation.name", "embeddings")
            emb.set_attribute("gen_ai.request.model", "text-embedding-3-small")
            emb.set_attribute("gen_ai.usage.input_tokens", 8)
        with tracer.start_as_current_span("chat claude-3-5-sonnet") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.system", "anthropic")
            chat.set_attribute("gen_ai.request.model", "claude-3-5-sonnet")
            chat.set_attribute("gen_ai.request.top_p", 0.9)
            chat.set_attribute("gen_ai.usage.prompt_tokens", 200)
            chat.set_attribute("gen_ai.usage.completion_tokens", 40)
            chat.set_attribute("gen_ai.usage.cache_read_input_tokens", 150)
            chat.set_attribute("gen_ai.usage.cost", 0.0042)
            chat.add_event("gen_ai.system.message", {"content": "Answer briefly."})
            chat.add_event("gen_ai.user.message", {"content": "What is OTLP?"})
            chat.add_event(
                "gen_ai.choice",
                {"index": 0, "finish_reason": "stop", "message": '{"content": "A protocol."}'},
            )
        root.set_status(Status(StatusCode.ERROR, "downstream failed"))


#: What the chat span's ``gen_ai.*`` message events read as.
CHAT_INPUT = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is OTLP?"},
]
CHAT_OUTPUT = {"index": 0, "finish_reason": "stop", "message": {"content": "A protocol."}}


def check_rag_trace(live_server, spans) -> None:
    trace = get_trace(live_server, trace_id(spans))
    assert trace["name"] == "answer-question"
    assert (trace["userId"], trace["sessionId"]) == ("alice", "chat-9")
    assert trace["environment"] == "production"
    obs = {o["name"]: o for o in trace["observations"]}
    root = obs["answer-question"]
    assert root["level"] == "ERROR" and root["statusMessage"] == "downstream failed"
    emb = obs["embeddings text-embedding-3-small"]
    assert emb["type"] == "EMBEDDING"
    assert emb["usageDetails"] == {"input": 8, "total": 8}
    chat = obs["chat claude-3-5-sonnet"]
    assert chat["type"] == "GENERATION"
    assert chat["parentObservationId"] == span_id(by_name(spans, "answer-question"))
    assert chat["model"] == "claude-3-5-sonnet"
    assert chat["modelParameters"] == {"top_p": 0.9}
    assert chat["usageDetails"] == {
        "input": 50,
        "input_cached_tokens": 150,
        "output": 40,
        "total": 240,
    }
    assert chat["costDetails"] == {"total": 0.0042}
    assert chat["calculatedTotalCost"] == pytest.approx(0.0042)
    assert (chat["input"], chat["output"]) == (CHAT_INPUT, CHAT_OUTPUT)
    # Attributes not read into a field are kept in metadata, as Langfuse does.
    assert chat["metadata"]["attributes"]["gen_ai.system"] == "anthropic"
    assert chat["metadata"]["scope"]["name"] == "rag-app"


RESOURCE = {"service.name": "rag", "deployment.environment.name": "production"}


def test_batch_processor_export(live_server):
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    provider.add_span_processor(BatchSpanProcessor(exporter(live_server)))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    rag_app(provider.get_tracer("rag-app", "1.2.3"))
    assert provider.force_flush(10_000)
    provider.shutdown()
    check_rag_trace(live_server, memory.get_finished_spans())


@pytest.mark.parametrize("compression", [Compression.Gzip, Compression.Deflate])
def test_span_by_span_export_with_compression(live_server, compression):
    spans = record(rag_app, RESOURCE, scope="rag-app")
    otlp = exporter(live_server, compression)
    # One export per span, children first: the root arrives last.
    for span in spans:
        assert otlp.export([span]) == SpanExportResult.SUCCESS
    otlp.shutdown()
    check_rag_trace(live_server, spans)


def test_exporter_sees_a_failure_for_bad_keys(live_server):
    spans = record(rag_app, RESOURCE, scope="rag-app")
    otlp = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces",
        headers={"Authorization": "Basic " + base64.b64encode(b"pk-x:sk-x").decode()},
        timeout=5,
    )
    assert otlp.export(spans) == SpanExportResult.FAILURE
    otlp.shutdown()
    response = httpx.get(
        f"{live_server.url}/api/public/traces/{trace_id(spans)}",
        auth=live_server.project.auth,
        timeout=10,
    )
    assert response.status_code == 404
