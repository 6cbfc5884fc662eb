"""``POST /api/public/otel/v1/traces`` and ``/v1/traces`` through the real app, both stores."""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.trace import Status, StatusCode
from otel_spans import (
    JSON,
    PROTOBUF,
    by_name,
    gzipped,
    otlp_json,
    protobuf,
    record,
    span_id,
    trace_id,
)

PATHS = ["/api/public/otel/v1/traces", "/v1/traces"]
RESOURCE = {
    "service.name": "support",
    "service.version": "2.1.0",
    "langfuse.environment": "staging",
}


def support_bot(tracer):
    """An agent with a chat generation and a failing tool call, GenAI semconv style."""
    with tracer.start_as_current_span("agent") as root:
        root.set_attribute("langfuse.trace.name", "support-bot")
        root.set_attribute("user.id", "user-7")
        root.set_attribute("session.id", "sess-1")
        root.set_attribute("langfuse.trace.tags", ["prod", "chat"])
        root.set_attribute("langfuse.trace.metadata.plan", "pro")
        root.set_attribute("input.value", '{"question": "where is my order?"}')
        root.set_attribute("output.value", "It ships tomorrow.")
        with tracer.start_as_current_span("chat gpt-4o-mini") as gen:
            gen.set_attribute("gen_ai.operation.name", "chat")
            gen.set_attribute("gen_ai.system", "openai")
            gen.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            gen.set_attribute("gen_ai.response.model", "gpt-4o-mini-2024-07-18")
            gen.set_attribute("gen_ai.request.temperature", 0.2)
            gen.set_attribute("gen_ai.request.max_tokens", 256)
            gen.set_attribute("gen_ai.usage.input_tokens", 120)
            gen.set_attribute("gen_ai.usage.output_tokens", 30)
            gen.set_attribute("gen_ai.usage.cache_read.input_tokens", 20)
            gen.set_attribute(
                "gen_ai.input.messages", '[{"role": "user", "content": "where is my order?"}]'
            )
            gen.set_attribute(
                "gen_ai.output.messages", '[{"role": "assistant", "content": "tomorrow"}]'
            )
        with tracer.start_as_current_span("execute_tool lookup") as tool:
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tool.set_attribute("gen_ai.tool.name", "lookup_order")
            tool.set_attribute("gen_ai.tool.call.arguments", '{"id": 42}')
            tool.set_status(Status(StatusCode.ERROR, "order service timed out"))


@pytest.fixture
def bot_spans():
    return record(support_bot, RESOURCE)


def post(api, body, headers, path="/api/public/otel/v1/traces", **kwargs):
    return api.post(path, content=body, headers=headers, **kwargs)


def assert_support_bot(api, spans):
    trace = api.get(f"/api/public/traces/{trace_id(spans)}").json()
    assert trace["name"] == "support-bot"
    assert (trace["userId"], trace["sessionId"]) == ("user-7", "sess-1")
    assert trace["tags"] == ["chat", "prod"]
    assert trace["environment"] == "staging"
    assert trace["version"] == "2.1.0"
    assert trace["input"] == {"question": "where is my order?"}
    assert trace["output"] == "It ships tomorrow."
    assert trace["metadata"]["plan"] == "pro"
    assert trace["metadata"]["resourceAttributes"]["service.name"] == "support"
    obs = {o["name"]: o for o in trace["observations"]}
    assert set(obs) == {"agent", "chat gpt-4o-mini", "lookup_order"}
    root_id = span_id(by_name(spans, "agent"))
    assert obs["agent"]["id"] == root_id
    assert obs["agent"]["parentObservationId"] is None
    assert obs["agent"]["type"] == "SPAN"
    gen = obs["chat gpt-4o-mini"]
    assert gen["type"] == "GENERATION"
    assert gen["parentObservationId"] == root_id
    assert gen["model"] == "gpt-4o-mini-2024-07-18"
    assert gen["modelParameters"] == {"temperature": 0.2, "max_tokens": 256}
    assert gen["usageDetails"] == {
        "input": 100,
        "input_cached_tokens": 20,
        "output": 30,
        "total": 150,
    }
    assert gen["input"] == [{"role": "user", "content": "where is my order?"}]
    assert gen["output"] == [{"role": "assistant", "content": "tomorrow"}]
    assert gen["environment"] == "staging"
    tool = obs["lookup_order"]
    assert tool["type"] == "TOOL"
    assert tool["level"] == "ERROR"
    assert tool["statusMessage"] == "order service timed out"
    assert tool["input"] == {"id": 42}
    assert tool["startTime"] <= tool["endTime"]
    return trace


@pytest.mark.parametrize("path", PATHS)
def test_protobuf_export(api, bot_spans, path):
    response = post(api, protobuf(bot_spans), PROTOBUF, path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-protobuf"
    assert_support_bot(api, bot_spans)


@pytest.mark.parametrize("path", PATHS)
def test_json_export_with_hex_ids(api, bot_spans, path):
    response = post(api, json.dumps(otlp_json(bot_spans)), JSON, path)
    assert response.status_code == 200, response.text
    assert response.json() == {}
    assert_support_bot(api, bot_spans)


@pytest.mark.parametrize("kind", ["protobuf", "json"])
def test_gzip_bodies(api, bot_spans, kind):
    body = protobuf(bot_spans) if kind == "protobuf" else json.dumps(otlp_json(bot_spans)).encode()
    headers = {**(PROTOBUF if kind == "protobuf" else JSON), "content-encoding": "gzip"}
    assert post(api, gzipped(body), headers).status_code == 200
    assert_support_bot(api, bot_spans)


def test_json_with_base64_ids_and_long_objects(api, bot_spans):
    # protobuf's own JSON mapping writes ids as base64; JS exporters may send {low, high}.
    doc = json_format.MessageToDict(encode_spans(bot_spans))
    for span in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        nanos = int(span["startTimeUnixNano"])
        span["startTimeUnixNano"] = {"low": nanos & 0xFFFFFFFF, "high": nanos >> 32}
    assert post(api, json.dumps(doc), JSON).status_code == 200
    assert_support_bot(api, bot_spans)


def test_resent_export_creates_no_duplicates(api, bot_spans):
    body = protobuf(bot_spans)
    assert post(api, body, PROTOBUF).status_code == 200
    first = api.get(f"/api/public/traces/{trace_id(bot_spans)}").json()
    assert post(api, body, PROTOBUF).status_code == 200
    assert post(api, json.dumps(otlp_json(bot_spans)), JSON).status_code == 200
    again = api.get(f"/api/public/traces/{trace_id(bot_spans)}").json()
    assert len(again["observations"]) == 3
    assert again == first  # nothing changed, not even updatedAt


def test_root_arriving_last_completes_the_trace(api, bot_spans):
    root = by_name(bot_spans, "agent")
    children = [s for s in bot_spans if s is not root]
    assert post(api, protobuf(children), PROTOBUF).status_code == 200
    early = api.get(f"/api/public/traces/{trace_id(bot_spans)}").json()
    assert early["name"] is None  # listed already, before the root is known
    assert early["environment"] == "staging"
    assert len(early["observations"]) == 2
    assert post(api, protobuf([root]), PROTOBUF).status_code == 200
    assert_support_bot(api, bot_spans)


def test_child_spans_update_trace_attributes(api):
    def work(tracer):
        with tracer.start_as_current_span("root"), tracer.start_as_current_span("step") as step:
            step.set_attribute("langfuse.trace.output", '{"answer": 42}')
            step.set_attribute("langfuse.trace.metadata.stage", "final")
            step.set_attribute("user.id", "late-user")

    spans = record(work)
    assert post(api, protobuf(spans), PROTOBUF).status_code == 200
    trace = api.get(f"/api/public/traces/{trace_id(spans)}").json()
    assert trace["name"] == "root"
    assert trace["output"] == {"answer": 42}
    assert trace["userId"] == "late-user"
    assert trace["metadata"]["stage"] == "final"


def test_empty_export_is_accepted(api):
    assert post(api, b"", PROTOBUF).status_code == 200
    assert post(api, b'{"resourceSpans": []}', JSON).json() == {}


def test_content_type_with_charset_is_accepted(api, bot_spans):
    headers = {"content-type": "application/json; charset=utf-8"}
    assert post(api, json.dumps(otlp_json(bot_spans)), headers).status_code == 200


# --- refusals --------------------------------------------------------------------------


def test_needs_a_project_key(api, bot_spans):
    assert post(api, protobuf(bot_spans), PROTOBUF, auth=None).status_code == 401
    wrong = ("pk-lf-nope", "sk-lf-nope")
    assert post(api, protobuf(bot_spans), PROTOBUF, auth=wrong).status_code == 401
    bearer = {**PROTOBUF, "authorization": f"Bearer {api.project.public_key}"}
    assert post(api, protobuf(bot_spans), bearer, auth=None).status_code == 403


def test_project_isolation(api, bot_spans):
    other = api.new_project()
    assert post(api, protobuf(bot_spans), PROTOBUF, auth=other.auth).status_code == 200
    assert api.get(f"/api/public/traces/{trace_id(bot_spans)}").status_code == 404
    found = api.get(f"/api/public/traces/{trace_id(bot_spans)}", auth=other.auth)
    assert found.status_code == 200


BAD_BODIES = [
    ({"content-type": "text/plain"}, b"hello", "Invalid content type"),
    ({}, b"hello", "Invalid content type"),
    (PROTOBUF, b"\xff\xff\xff\xff not protobuf", "Failed to parse OTel Protobuf Trace"),
    (JSON, b"{not json", "Failed to parse OTel JSON Trace"),
    (JSON, b'{"resourceSpans": {"oops": 1}}', "resourceSpans must be an array"),
    (
        JSON,
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x", "spanId": "'
        b'b7ad6b7169203331"}]}]}]}',
        "has no traceId",
    ),
    (
        JSON,
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x", "traceId": "'
        b'0af7651916cd43dd8448eb211c80319c"}]}]}]}',
        "has no spanId",
    ),
    (
        JSON,
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 5, "spanId": "ab"}]}]}]}',
        "must be a hex string",
    ),
    (
        JSON,
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "0af7", "spanId": "ab",'
        b' "attributes": {"k": "v"}}]}]}]}',
        "attributes must be an array",
    ),
    (
        JSON,
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "0af7", "spanId": "ab",'
        b' "attributes": [{"key": "k", "value": {"intValue": "many"}}]}]}]}]}',
        "Failed to parse OTel JSON Trace",
    ),
    ({**JSON, "content-encoding": "gzip"}, b"not gzip", "Failed to decompress"),
]


@pytest.mark.parametrize(("headers", "body", "reason"), BAD_BODIES)
def test_bad_exports_get_400_with_a_reason(api, headers, body, reason):
    response = post(api, body, headers)
    assert response.status_code == 400, response.text
    assert reason in response.json()["message"]


def test_span_without_ids_rejects_the_whole_export(api, bot_spans):
    request = encode_spans(bot_spans)
    request.resource_spans[0].scope_spans[0].spans[0].span_id = b""
    response = post(api, request.SerializeToString(), PROTOBUF)
    assert response.status_code == 400
    assert "has no spanId" in response.json()["message"]
    # Nothing of the export was written, not even the spans that had ids.
    assert api.get(f"/api/public/traces/{trace_id(bot_spans)}").status_code == 404


def test_unknown_content_encoding(api, bot_spans):
    headers = {**PROTOBUF, "content-encoding": "br"}
    assert post(api, protobuf(bot_spans), headers).status_code == 415


def test_gzip_bomb_is_refused(api):
    limit = api.app.state.runtime.settings.max_request_bytes
    bomb = gzipped(b"0" * (limit + 1))
    response = post(api, bomb, {**PROTOBUF, "content-encoding": "gzip"})
    assert response.status_code == 413


def test_base64_is_never_taken_for_a_hex_id(api):
    # A hex id is also valid base64 (it decodes to 24 bytes): it must still be read as hex.
    hex_trace = "0af7651916cd43dd8448eb211c80319c"
    doc = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": hex_trace,
                                "spanId": "b7ad6b7169203331",
                                "name": "hexy",
                                "startTimeUnixNano": "1714557600000000000",
                                "endTimeUnixNano": 1714557601000000000,
                            }
                        ]
                    }
                ]
            }
        ]
    }
    assert post(api, json.dumps(doc), JSON).status_code == 200
    trace = api.get(f"/api/public/traces/{hex_trace}").json()
    assert trace["observations"][0]["id"] == "b7ad6b7169203331"
    assert trace["timestamp"].startswith("2024-05-01T10:00:00")


# --- odd but well-formed input: stored, never a 5xx -------------------------------------


def test_nul_characters_long_names_and_odd_values_are_stored(api):
    def work(tracer):
        with tracer.start_as_current_span("nul\x00name") as s:
            s.set_attribute("langfuse.trace.name", "é" * 2000)
            s.set_attribute("user.id", "u" * 5000)
            s.set_attribute("input.value", '{"text": "a\\u0000b"}')
            s.set_attribute("note", "x\x00y")
            s.set_attribute("langfuse.observation.type", "generation")
            s.set_attribute("langfuse.observation.prompt.name", "p")
            s.set_attribute("langfuse.observation.prompt.version", 2**40)
            s.set_attribute("gen_ai.usage.cost", float("inf"))

    spans = record(work)
    response = post(api, protobuf(spans), PROTOBUF)
    assert response.status_code == 200, response.text
    trace = api.get(f"/api/public/traces/{trace_id(spans)}").json()
    # Cut to the limits the JSON path refuses above (the field table's): 2,000 UTF-8
    # bytes for a name, 1,000 characters for a user id.
    assert trace["name"] == "é" * 1000
    assert trace["userId"] == "u" * 1000
    [obs] = trace["observations"]
    assert obs["name"] == "nulname"
    assert obs["input"] == {"text": "ab"}
    assert obs["metadata"]["attributes"]["note"] == "xy"
    assert obs["promptVersion"] is None  # out of range: no link rather than a failure
    assert obs["costDetails"] == {}


def test_token_counts_past_what_a_database_sums_are_skipped_not_a_failure(api):
    """A count over a trillion (up to int64's maximum, or past it inside a JSON string)
    is skipped like an unreadable one; the span, its other counts and cost are stored."""

    def work(tracer):
        with tracer.start_as_current_span("llm") as s:
            s.set_attribute("langfuse.observation.type", "generation")
            s.set_attribute("gen_ai.request.model", "gpt-4o")
            s.set_attribute("gen_ai.usage.input_tokens", 2**63 - 1)
            s.set_attribute("gen_ai.usage.output_tokens", 5)
        with tracer.start_as_current_span("llm2") as s:
            s.set_attribute("langfuse.observation.type", "generation")
            s.set_attribute("langfuse.observation.usage_details", '{"input": 99999999999999999999}')

    spans = record(work)
    response = post(api, protobuf(spans), PROTOBUF)
    assert response.status_code == 200, response.text
    for span in spans:
        trace = api.get(f"/api/public/traces/{span.context.trace_id:032x}").json()
        [obs] = trace["observations"]
        if obs["name"] == "llm":
            assert obs["usageDetails"] == {"output": 5, "total": 5}
        else:
            assert obs["usageDetails"] == {}


def test_deeply_nested_attribute_json_is_refused(api):
    deep = "[" * 300 + "]" * 300

    def work(tracer):
        with tracer.start_as_current_span("deep") as s:
            s.set_attribute("input.value", deep)

    spans = record(work)
    response = post(api, protobuf(spans), PROTOBUF)
    assert response.status_code == 400
    assert "nested more than" in response.json()["message"]


@pytest.mark.parametrize(
    "key", ["langfuse.trace.tags", "langfuse.tags", "tag.tags", "ai.telemetry.metadata.tags"]
)
@pytest.mark.parametrize("depth", [201, 300])
def test_tags_json_nested_too_deep_is_refused(api, key, depth):
    deep = "[" * depth + "]" * depth

    def work(tracer):
        with tracer.start_as_current_span("root") as s:
            s.set_attribute(key, deep)

    spans = record(work)
    for body, kind in ((protobuf(spans), PROTOBUF), (json.dumps(otlp_json(spans)), JSON)):
        response = post(api, body, kind)
        assert response.status_code == 400, response.text
        assert "nested more than 200 levels deep" in response.json()["message"]
        assert key in response.json()["message"]
    assert api.get("/api/public/traces").json()["data"] == []


def test_tags_json_within_the_limit_is_kept(api):
    def work(tracer):
        with tracer.start_as_current_span("root") as s:
            s.set_attribute("langfuse.trace.tags", '["a", [["b"]]]')

    spans = record(work)
    assert post(api, protobuf(spans), PROTOBUF).status_code == 200
    [trace] = api.get("/api/public/traces").json()["data"]
    assert trace["tags"] == ['[["b"]]', "a"]


def test_unusable_ids_are_refused(api, bot_spans):
    request = encode_spans(bot_spans)
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = b"\x01" * 500
    response = post(api, request.SerializeToString(), PROTOBUF)
    assert response.status_code == 400
    assert "traceId is longer than" in response.json()["message"]
    doc = otlp_json(bot_spans)
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] = "ab\u0000cd"
    response = post(api, json.dumps(doc), JSON)
    assert response.status_code == 400
    assert "control characters" in response.json()["message"]
