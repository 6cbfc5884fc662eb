"""``openinference-instrumentation-openai`` wrapping the real ``openai`` client.

The LLM provider is outside our system, so the test stands it in: a small HTTP server
on loopback answers like the OpenAI chat completions API. The instrumented client's
spans go to a live Lanterna server through the stock OTLP exporter; both stores.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import openai
import pytest
from openinference.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

COMPLETION = {
    "id": "chatcmpl-standin-1",
    "object": "chat.completion",
    "created": 1714557600,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris.", "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ],
    "usage": {
        "prompt_tokens": 25,
        "completion_tokens": 3,
        "total_tokens": 28,
        "prompt_tokens_details": {"cached_tokens": 5},
    },
}


class StandIn(BaseHTTPRequestHandler):
    """Answers ``POST /v1/chat/completions`` with a fixed completion."""

    requests: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        StandIn.requests.append(json.loads(body))
        payload = json.dumps(COMPLETION).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def openai_stand_in() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def instrumented(live_server) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    token = base64.b64encode(":".join(live_server.project.auth).encode()).decode()
    provider = TracerProvider(resource=Resource.create({"service.name": "geo-bot"}))
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces",
        headers={"Authorization": f"Basic {token}"},
        timeout=10,
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield provider, memory
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


def test_openai_chat_completion_becomes_a_generation(live_server, openai_stand_in, instrumented):
    provider, memory = instrumented
    client = openai.OpenAI(base_url=openai_stand_in, api_key="sk-test", max_retries=0)
    tracer = provider.get_tracer("geo-app")
    with tracer.start_as_current_span("ask-capital") as root:
        root.set_attribute("user.id", "u-geo")
        answer = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "Answer with one word."},
                {"role": "user", "content": "Capital of France?"},
            ],
            temperature=0.1,
            max_tokens=5,
        )
    assert answer.choices[0].message.content == "Paris."
    assert StandIn.requests[-1]["model"] == "gpt-4o-mini"
    assert provider.force_flush(10_000)

    spans = memory.get_finished_spans()
    trace_id = format(spans[0].context.trace_id, "032x")
    response = httpx.get(
        f"{live_server.url}/api/public/traces/{trace_id}", auth=live_server.project.auth
    )
    assert response.status_code == 200, response.text
    trace = response.json()
    assert trace["name"] == "ask-capital"
    assert trace["userId"] == "u-geo"
    [gen] = [o for o in trace["observations"] if o["type"] == "GENERATION"]
    [root_obs] = [o for o in trace["observations"] if o["name"] == "ask-capital"]
    assert gen["parentObservationId"] == root_obs["id"]
    assert gen["model"] == "gpt-4o-mini-2024-07-18"
    assert gen["modelParameters"]["temperature"] == 0.1
    assert gen["modelParameters"]["max_tokens"] == 5
    assert gen["usageDetails"] == {
        "input": 20,
        "input_cached_tokens": 5,
        "output": 3,
        "total": 28,
    }
    # OpenInference's input.value / output.value carry the request and the response.
    assert gen["input"]["messages"][1] == {"role": "user", "content": "Capital of France?"}
    assert gen["output"]["choices"][0]["message"]["content"] == "Paris."
    assert gen["metadata"]["scope"]["name"].startswith("openinference.instrumentation.openai")
