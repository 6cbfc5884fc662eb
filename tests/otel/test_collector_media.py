"""An OpenTelemetry Collector forwarding spans: its ``otlphttp`` exporter POSTs
``/v1/traces`` under the configured endpoint with gzip ``Content-Encoding`` (its
default), protobuf or (``encoding: json``) OTLP/JSON, the ``Authorization`` header
from its ``headers`` setting and its own User-Agent. A span carrying a data-URI image
arrives either way; the image is stored once as media and the span keeps a reference
(both backends, a real server on loopback)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from otel_spans import gzipped, otlp_json, protobuf, record, trace_id

from media_files import media_id, png, token

COLLECTOR_UA = "OpenTelemetry Collector Contrib/0.115.0 (linux/amd64)"


def collector_post(server: Any, body: bytes, content_type: str) -> httpx.Response:
    """What the Collector's otlphttp exporter sends (``compression: gzip``)."""
    basic = base64.b64encode(":".join(server.project.auth).encode()).decode()
    return httpx.post(
        f"{server.url}/api/public/otel/v1/traces",
        content=gzipped(body),
        headers={
            "Content-Type": content_type,
            "Content-Encoding": "gzip",
            "Authorization": f"Basic {basic}",
            "User-Agent": COLLECTOR_UA,
        },
        timeout=30,
    )


@pytest.mark.parametrize("encoding", ["proto", "json"])
def test_a_collector_forwards_a_span_with_a_data_uri_image(live_server, encoding) -> None:
    image = png(rgb=(5, 100, 200) if encoding == "proto" else (200, 100, 5))
    uri = "data:image/png;base64," + base64.b64encode(image).decode()
    message = [{"role": "user", "content": [
        {"type": "text", "text": "What is in the picture?"},
        {"type": "image_url", "image_url": {"url": uri}},
    ]}]  # fmt: skip

    def work(tracer: Any) -> None:
        with tracer.start_as_current_span("vision call") as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.request.model", "gpt-4o")
            span.set_attribute("langfuse.observation.input", json.dumps(message))
            span.set_attribute("langfuse.observation.output", "a blue square")

    spans = record(work, resource={"service.name": "collected-app"})
    if encoding == "proto":
        response = collector_post(live_server, protobuf(spans), "application/x-protobuf")
    else:
        body = json.dumps(otlp_json(spans)).encode()
        response = collector_post(live_server, body, "application/json")
    assert response.status_code == 200, response.text

    auth = live_server.project.auth
    trace = httpx.get(f"{live_server.url}/api/public/traces/{trace_id(spans)}", auth=auth).json()
    (obs,) = trace["observations"]
    assert obs["input"][0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": token(image, "image/png")},
    }
    assert uri not in json.dumps(trace)  # the trace stays small
    media = httpx.get(f"{live_server.url}/api/public/media/{media_id(image)}", auth=auth)
    assert media.status_code == 200, media.text
    assert (media.json()["contentType"], media.json()["contentLength"]) == (
        "image/png",
        len(image),
    )
    assert httpx.get(media.json()["url"]).content == image
