"""Base64 data URIs in OTLP span attributes go to the media store: the stored input keeps
a reference token, the bytes are served by the media API once; both stores."""

from __future__ import annotations

import base64
import json

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otel_spans import trace_id
from test_otel_sdk_exporter import exporter

from media_files import media_id, png, token


def test_data_uris_in_span_attributes_become_media(live_server) -> None:
    image = png(rgb=(1, 2, 3))
    uri = "data:image/png;base64," + base64.b64encode(image).decode()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter(live_server)))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("vision-app")
    with tracer.start_as_current_span("describe") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute(
            "langfuse.observation.input",
            json.dumps([{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": uri}},
            ]}]),
        )  # fmt: skip
        span.set_attribute("langfuse.observation.output", "a dark square")
    with tracer.start_as_current_span("again") as span:  # the same image: stored once
        span.set_attribute("langfuse.observation.input", uri)
    provider.shutdown()

    auth = live_server.project.auth
    spans = memory.get_finished_spans()
    trace = httpx.get(
        f"{live_server.url}/api/public/traces/{trace_id(spans[:1])}", auth=auth
    ).json()
    (obs,) = trace["observations"]
    part = obs["input"][0]["content"][1]
    assert part == {"type": "image_url", "image_url": {"url": token(image, "image/png")}}
    assert uri not in json.dumps(trace)

    record = httpx.get(f"{live_server.url}/api/public/media/{media_id(image)}", auth=auth)
    assert record.status_code == 200, record.text
    assert record.json()["contentType"] == "image/png"
    assert httpx.get(record.json()["url"]).content == image

    other = httpx.get(
        f"{live_server.url}/api/public/traces/{trace_id(spans[1:])}", auth=auth
    ).json()
    assert other["observations"][0]["input"] == token(image, "image/png")
