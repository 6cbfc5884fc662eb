"""Mapping rules of contract section 3, one table per rule, from small span fixtures."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from lanterna.ingest.otlp_mapping import SpanData, events_of_spans
from lanterna.ingest.usage import normalize_usage_details

T0_NS = 1_714_557_600_000_000_000  # 2024-05-01T10:00:00Z
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)
TRACE = "0af7651916cd43dd8448eb211c80319c"


def span(
    attrs: dict[str, Any] | None = None,
    *,
    span_id: str = "b7ad6b7169203331",
    parent: str | None = None,
    name: str = "work",
    scope: str = "my-lib",
    scope_version: str = "1.0",
    resource: dict[str, Any] | None = None,
    events: list[tuple[str, dict[str, Any]]] | None = None,
    status: int = 0,
    status_message: str = "",
    start_ms: int = 0,
    end_ms: int = 1000,
) -> SpanData:
    return SpanData(
        trace_id=TRACE,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        start_ns=T0_NS + start_ms * 1_000_000,
        end_ns=T0_NS + end_ms * 1_000_000,
        attributes=attrs or {},
        events=events or [],
        status_code=status,
        status_message=status_message,
        resource=resource or {},
        scope_name=scope,
        scope_version=scope_version,
    )


def observation(s: SpanData) -> dict[str, Any]:
    [obs] = [e for e in events_of_spans([s]) if e.kind == "observation"]
    return obs.fields


def trace_events(*spans: SpanData) -> list[Any]:
    return [e for e in events_of_spans(list(spans)) if e.kind == "trace"]


# --- observation type (3.5) --------------------------------------------------------------

TYPE_CASES = [
    ({}, "SPAN"),
    ({"langfuse.observation.type": "generation"}, "GENERATION"),
    ({"langfuse.observation.type": "agent", "gen_ai.request.model": "m"}, "AGENT"),
    ({"langfuse.observation.type": "guardrail"}, "GUARDRAIL"),
    ({"openinference.span.kind": "LLM"}, "GENERATION"),
    ({"openinference.span.kind": "CHAIN"}, "CHAIN"),
    ({"openinference.span.kind": "RETRIEVER"}, "RETRIEVER"),
    ({"openinference.span.kind": "TOOL"}, "TOOL"),
    ({"openinference.span.kind": "EMBEDDING"}, "EMBEDDING"),
    ({"gen_ai.operation.name": "chat"}, "GENERATION"),
    ({"gen_ai.operation.name": "text_completion"}, "GENERATION"),
    ({"gen_ai.operation.name": "embeddings"}, "EMBEDDING"),
    ({"gen_ai.operation.name": "invoke_agent"}, "AGENT"),
    ({"gen_ai.operation.name": "execute_tool"}, "TOOL"),
    ({"genkit:metadata:subtype": "tool"}, "TOOL"),
    ({"ai.operationId": "ai.generateText.doGenerate", "ai.model.id": "gpt-4o"}, "GENERATION"),
    ({"ai.operationId": "ai.generateText.doGenerate"}, "SPAN"),  # no model: not a generation
    ({"ai.operationId": "ai.embedMany.doEmbed", "ai.model.id": "e"}, "EMBEDDING"),
    ({"ai.operationId": "ai.toolCall"}, "TOOL"),
    ({"gen_ai.tool.name": "search"}, "TOOL"),
    ({"gen_ai.tool.call.id": "call_1"}, "TOOL"),
    ({"flue.task.id": "t"}, "AGENT"),
    ({"llm.model_name": "claude-3"}, "GENERATION"),
    ({"gen_ai.response.model": "gpt-4o-2024"}, "GENERATION"),
    ({"model": "gpt-4o"}, "GENERATION"),
    # Priority: the Langfuse attribute beats OpenInference, which beats GenAI.
    ({"langfuse.observation.type": "tool", "openinference.span.kind": "LLM"}, "TOOL"),
    ({"openinference.span.kind": "AGENT", "gen_ai.operation.name": "chat"}, "AGENT"),
]


@pytest.mark.parametrize(("attrs", "expected"), TYPE_CASES)
def test_observation_type(attrs, expected):
    assert observation(span(attrs))["type"] == expected


def test_old_python_sdk_generation_quirk():
    attrs = {"langfuse.observation.type": "span", "langfuse.observation.model.name": "gpt-4"}
    resource = {"telemetry.sdk.language": "python"}
    old = span(attrs, scope="langfuse-sdk", scope_version="3.2.1", resource=resource)
    new = span(attrs, scope="langfuse-sdk", scope_version="3.4.0", resource=resource)
    assert observation(old)["type"] == "GENERATION"
    assert observation(new)["type"] == "SPAN"


def test_livekit_span_names():
    assert observation(span(name="agent_turn", scope="livekit-agents"))["type"] == "AGENT"
    assert observation(span(name="function_tool", scope="livekit-agents"))["type"] == "TOOL"
    assert observation(span(name="agent_turn", scope="other"))["type"] == "SPAN"


# --- name ----------------------------------------------------------------------------------

NAME_CASES = [
    ({}, "work"),
    ({"gen_ai.tool.name": "search", "logfire.msg": "x"}, "search"),
    ({"logfire.msg": "running agent"}, "running agent"),
    ({"ai.toolCall.name": "weather"}, "weather"),
    (
        {"ai.operationId": "ai.generateText", "ai.telemetry.functionId": "chat"},
        "chat:ai.generateText",
    ),
    ({"ai.operationId": "ai.generateText"}, "ai.generateText"),
]


@pytest.mark.parametrize(("attrs", "expected"), NAME_CASES)
def test_observation_name(attrs, expected):
    assert observation(span(attrs))["name"] == expected


# --- level, status, environment, version ---------------------------------------------------

LEVEL_CASES = [
    ({}, 0, "DEFAULT"),
    ({}, 2, "ERROR"),
    ({}, 1, "DEFAULT"),
    ({"langfuse.observation.level": "WARNING"}, 2, "WARNING"),
    ({"langfuse.observation.level": "warn"}, 0, "WARNING"),
    ({"langfuse.observation.level": "fatal"}, 0, "ERROR"),
    ({"langfuse.observation.level": "verbose"}, 0, "DEBUG"),
    ({"langfuse.observation.level": "info"}, 0, "DEFAULT"),
    ({"langfuse.observation.level": "nonsense"}, 2, "ERROR"),
]


@pytest.mark.parametrize(("attrs", "status", "expected"), LEVEL_CASES)
def test_level(attrs, status, expected):
    assert observation(span(attrs, status=status))["level"] == expected


def test_status_message_prefers_the_langfuse_key():
    plain = observation(span(status=2, status_message="boom"))
    assert plain["status_message"] == "boom"
    keyed = span({"langfuse.observation.status_message": "mine"}, status=2, status_message="x")
    assert observation(keyed)["status_message"] == "mine"
    assert "status_message" not in observation(span())


ENV_CASES = [
    ({}, {}, "default"),
    ({"langfuse.environment": "Staging"}, {}, "staging"),
    ({}, {"langfuse.environment": "prod"}, "prod"),
    ({"langfuse.environment": "span-env"}, {"langfuse.environment": "res-env"}, "span-env"),
    ({}, {"deployment.environment.name": "qa"}, "qa"),
    ({}, {"deployment.environment": "dev"}, "dev"),
    ({"deployment.environment": "dev"}, {"langfuse.environment": "prod"}, "prod"),
    ({"langfuse.environment": "has spaces"}, {}, "default"),
]


@pytest.mark.parametrize(("attrs", "resource", "expected"), ENV_CASES)
def test_environment_from_span_then_resource(attrs, resource, expected):
    s = span(attrs, resource=resource)
    assert observation(s)["environment"] == expected
    [trace] = trace_events(s)
    assert trace.fields["environment"] == expected


def test_version_and_release():
    s = span({"langfuse.version": "v2"}, resource={"service.version": "1.0"})
    [trace] = trace_events(s)
    assert observation(s)["version"] == "v2"
    assert trace.fields["version"] == "v2"
    s = span(resource={"service.version": "1.0", "langfuse.release": "r9"})
    [trace] = trace_events(s)
    assert trace.fields["version"] == "1.0"
    assert trace.fields["release"] == "r9"
    [trace] = trace_events(span({"langfuse.release": "r1"}, resource={"langfuse.release": "r9"}))
    assert trace.fields["release"] == "r1"


# --- model, parameters, usage, cost (3.6) --------------------------------------------------

MODEL_CASES = [
    ({"langfuse.observation.model.name": "a", "gen_ai.response.model": "b"}, "a"),
    ({"gen_ai.response.model": "b", "gen_ai.request.model": "c"}, "b"),
    ({"gen_ai.request.model": "c", "llm.model_name": "d"}, "c"),
    ({"llm.model_name": "d"}, "d"),
    ({"ai.model.id": "e", "gen_ai.request.model": "c"}, "e"),
    ({"genkit:metadata:subtype": "model", "genkit:name": "googleai/gemini"}, "googleai/gemini"),
]


@pytest.mark.parametrize(("attrs", "expected"), MODEL_CASES)
def test_model_name(attrs, expected):
    assert observation(span(attrs))["model"] == expected


def test_agent_rollups_carry_no_model_usage_or_cost():
    attrs = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.cost": 0.5,
    }
    fields = observation(span(attrs))
    assert fields["type"] == "AGENT"
    assert not {"model", "usage_details", "cost_details"} & fields.keys()


PARAM_CASES = [
    (
        {"langfuse.observation.model.parameters": '{"temperature": 0.1, "stop": ["x"]}'},
        "lib",
        {"temperature": 0.1, "stop": '["x"]'},
    ),
    (
        {"llm.invocation_parameters": '{"max_tokens": 50, "temperature": 0}'},
        "lib",
        {"max_tokens": 50, "temperature": 0},
    ),
    (
        {
            "gen_ai.request.temperature": 0.7,
            "gen_ai.request.max_tokens": 20,
            "gen_ai.request.model": "m",
        },
        "lib",
        {"temperature": 0.7, "max_tokens": 20},
    ),
    (
        {
            "ai.settings.maxRetries": 2,
            "gen_ai.request.temperature": 0.3,
            "ai.model.provider": "openai",
        },
        "ai",
        {"maxRetries": 2, "temperature": 0.3, "system": "openai"},
    ),
]


@pytest.mark.parametrize(("attrs", "scope", "expected"), PARAM_CASES)
def test_model_parameters(attrs, scope, expected):
    attrs = {"langfuse.observation.type": "generation", **attrs}
    assert observation(span(attrs, scope=scope))["model_parameters"] == expected


USAGE_CASES = [
    # Langfuse key: a free map gets a total.
    (
        {"langfuse.observation.usage_details": '{"input": 10, "output": 4}'},
        "lib",
        {"input": 10, "output": 4, "total": 14},
    ),
    # GenAI semconv, new names.
    (
        {"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 4},
        "lib",
        {"input": 10, "output": 4, "total": 14},
    ),
    # GenAI semconv, old names; cost is not a usage key.
    (
        {
            "gen_ai.usage.prompt_tokens": 10,
            "gen_ai.usage.completion_tokens": 4,
            "gen_ai.usage.cost": 0.1,
        },
        "lib",
        {"input": 10, "output": 4, "total": 14},
    ),
    # Cache read and creation come out of input; reasoning out of output.
    (
        {
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 50,
            "gen_ai.usage.cache_read.input_tokens": 30,
            "gen_ai.usage.cache_creation.input_tokens": 20,
            "gen_ai.usage.reasoning.output_tokens": 10,
        },
        "lib",
        {
            "input": 50,
            "input_cached_tokens": 30,
            "input_cache_creation": 20,
            "output": 40,
            "output_reasoning_tokens": 10,
            "total": 150,
        },
    ),
    # OpenInference token counts, with details and a reported total.
    (
        {
            "llm.token_count.prompt": 12,
            "llm.token_count.completion": 8,
            "llm.token_count.total": 20,
            "llm.token_count.prompt_details.cache_read": 2,
            "llm.token_count.completion_details.reasoning": 3,
            "llm.token_count.completion_details.audio": 1,
        },
        "lib",
        {
            "input": 10,
            "input_cached_tokens": 2,
            "output": 4,
            "output_reasoning_tokens": 3,
            "output_audio_tokens": 1,
            "total": 20,
        },
    ),
    # Detail counts larger than the total floor at zero; unknown keys pass through.
    (
        {
            "gen_ai.usage.input_tokens": 5,
            "gen_ai.usage.cache_read_input_tokens": 9,
            "gen_ai.usage.details.web_search": 2,
        },
        "lib",
        {"input": 0, "input_cached_tokens": 9, "web_search": 2, "total": 11},
    ),
    # Vercel AI SDK.
    (
        {
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 20,
            "ai.usage.tokens": 120,
            "ai.usage.cachedInputTokens": 40,
            "ai.usage.reasoningTokens": 5,
        },
        "ai",
        {
            "input": 60,
            "input_cached_tokens": 40,
            "output": 15,
            "output_reasoning_tokens": 5,
            "total": 120,
        },
    ),
    (
        {
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 20,
            "ai.response.providerMetadata": json.dumps(
                {"anthropic": {"usage": {"cache_read_input_tokens": 30}}}
            ),
        },
        "ai",
        {"input": 70, "input_cached_tokens": 30, "output": 20, "total": 120},
    ),
]


@pytest.mark.parametrize(("attrs", "scope", "expected"), USAGE_CASES)
def test_usage(attrs, scope, expected):
    attrs = {"langfuse.observation.type": "generation", **attrs}
    fields = observation(span(attrs, scope=scope))
    assert fields["usage_details"] == expected
    assert fields["provided_usage_details"] == expected


def test_langfuse_usage_details_are_read_like_ingestion_usage_details():
    # The OpenAI shape is split into detail keys exactly as /api/public/ingestion does.
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 4,
        "total_tokens": 14,
        "prompt_tokens_details": {"cached_tokens": 3},
    }
    attrs = {
        "langfuse.observation.type": "generation",
        "langfuse.observation.usage_details": json.dumps(usage),
    }
    got = observation(span(attrs))["usage_details"]
    assert got == normalize_usage_details(usage)
    assert got["total"] == 14 and got["input"] == 7 and got["output"] == 4


def test_langfuse_usage_that_is_not_an_object_gives_no_usage():
    attrs = {
        "langfuse.observation.type": "generation",
        "langfuse.observation.usage_details": "[1, 2]",
        "gen_ai.usage.input_tokens": 3,
    }
    assert "usage_details" not in observation(span(attrs))


COST_CASES = [
    (
        {"langfuse.observation.cost_details": '{"input": 0.1, "output": 0.2}'},
        {"input": 0.1, "output": 0.2, "total": pytest.approx(0.3)},
    ),
    (
        {"langfuse.observation.cost_details": '{"total": 1.5}', "gen_ai.usage.cost": 9},
        {"total": 1.5},
    ),
    ({"gen_ai.usage.cost": 0.25}, {"total": 0.25}),
    ({"llm.cost.total": "0.5"}, {"total": 0.5}),
]


@pytest.mark.parametrize(("attrs", "expected"), COST_CASES)
def test_cost(attrs, expected):
    attrs = {"langfuse.observation.type": "generation", **attrs}
    fields = observation(span(attrs))
    assert fields["cost_details"] == expected
    assert fields["total_cost"] == expected["total"]


def test_span_and_event_types_carry_no_generation_fields():
    attrs = {"langfuse.observation.type": "span", "gen_ai.usage.input_tokens": 3}
    assert "usage_details" not in observation(span(attrs))


COMPLETION_START_CASES = [
    ({"langfuse.observation.completion_start_time": "2024-05-01T10:00:00.250Z"}, 250),
    ({"langfuse.observation.completion_start_time": '"2024-05-01T10:00:00.300000+00:00"'}, 300),
    ({"langfuse.observation.completion_start_time": "2024-05-01T10:00:00.400"}, 400),
    ({"ai.response.msToFirstChunk": 120.0}, 120),
    ({"ai.stream.msToFirstChunk": 80}, 80),
]


@pytest.mark.parametrize(("attrs", "ms"), COMPLETION_START_CASES)
def test_completion_start_time(attrs, ms):
    attrs = {"langfuse.observation.type": "generation", **attrs}
    fields = observation(span(attrs))
    assert fields["completion_start_time"] == T0 + timedelta(milliseconds=ms)


PROMPT_CASES = [
    ({"langfuse.observation.prompt.name": "p", "langfuse.observation.prompt.version": 3}, ("p", 3)),
    ({"langfuse.prompt.name": "old", "langfuse.prompt.version": "2"}, ("old", 2)),
    ({"ai.telemetry.metadata.langfusePrompt": '{"name": "v", "version": 1}'}, ("v", 1)),
    ({"langfuse.observation.prompt.name": "p"}, None),
]


@pytest.mark.parametrize(("attrs", "expected"), PROMPT_CASES)
def test_prompt_link_on_generations(attrs, expected):
    gen = observation(span({"langfuse.observation.type": "generation", **attrs}))
    got = (gen["prompt_name"], gen["prompt_version"]) if "prompt_name" in gen else None
    assert got == expected
    # Only generations are linked.
    assert "prompt_name" not in observation(span({"langfuse.observation.type": "agent", **attrs}))


# --- input / output (3.6) -------------------------------------------------------------------

MSGS = '[{"role": "user", "content": "hi"}]'
IO_CASES = [
    (
        {
            "langfuse.observation.input": '{"q": 1}',
            "langfuse.observation.output": "plain text",
            "input.value": "ignored",
        },
        [],
        "lib",
        {"q": 1},
        "plain text",
    ),
    (
        {"input.value": '{"messages": []}', "output.value": "done"},
        [],
        "lib",
        {"messages": []},
        "done",
    ),
    (
        {"traceloop.entity.input": '{"a": 1}', "traceloop.entity.output": '{"b": 2}'},
        [],
        "lib",
        {"a": 1},
        {"b": 2},
    ),
    ({"mlflow.spanInputs": '"x"', "mlflow.spanOutputs": '"y"'}, [], "lib", "x", "y"),
    (
        {
            "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": "be brief",
            "gen_ai.prompt.1.role": "user",
            "gen_ai.prompt.1.content": "hi",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "hello",
        },
        [],
        "lib",
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        [{"role": "assistant", "content": "hello"}],
    ),
    (
        {
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "hi",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "f",
        },
        [],
        "lib",
        [{"message": {"role": "user", "content": "hi"}}],
        [
            {
                "message": {
                    "role": "assistant",
                    "tool_calls": [{"tool_call": {"function": {"name": "f"}}}],
                }
            }
        ],
    ),
    (
        {
            "gen_ai.input.messages": MSGS,
            "gen_ai.output.messages": '[{"role": "assistant"}]',
            "gen_ai.system_instructions": "be kind",
        },
        [],
        "lib",
        [{"role": "system", "content": "be kind"}, {"role": "user", "content": "hi"}],
        [{"role": "assistant"}],
    ),
    (
        {"gen_ai.tool.call.arguments": '{"city": "Rome"}', "gen_ai.tool.call.result": "sunny"},
        [],
        "lib",
        {"city": "Rome"},
        "sunny",
    ),
    (
        {},
        [
            ("gen_ai.system.message", {"content": "sys"}),
            ("gen_ai.user.message", {"content": "hi"}),
            ("gen_ai.choice", {"index": 0, "message": '{"content": "yo"}'}),
        ],
        "lib",
        [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}],
        {"index": 0, "message": {"content": "yo"}},
    ),
    (
        {},
        [
            (
                "gen_ai.client.inference.operation.details",
                {
                    "gen_ai.input.messages": MSGS,
                    "gen_ai.output.messages": '[{"role": "assistant"}]',
                },
            )
        ],
        "lib",
        [{"role": "user", "content": "hi"}],
        [{"role": "assistant"}],
    ),
    (
        {},
        [
            ("gen_ai.content.prompt", {"gen_ai.prompt": MSGS}),
            ("gen_ai.content.completion", {"gen_ai.completion": "ok"}),
        ],
        "lib",
        [{"role": "user", "content": "hi"}],
        "ok",
    ),
    (
        {"ai.prompt.messages": MSGS, "ai.response.text": "hello"},
        [],
        "ai",
        [{"role": "user", "content": "hi"}],
        "hello",
    ),
    (
        {
            "ai.prompt": '{"prompt": "hi"}',
            "ai.response.text": "t",
            "ai.response.toolCalls": '[{"id": 1}]',
        },
        [],
        "ai",
        {"prompt": "hi"},
        {"role": "assistant", "content": "t", "tool_calls": [{"id": 1}]},
    ),
    (
        {"ai.prompt.messages": MSGS, "gen_ai.output.messages": '["from genai"]'},
        [],
        "ai",
        [{"role": "user", "content": "hi"}],
        ["from genai"],
    ),
    (
        {"pydantic_ai.all_messages": MSGS, "final_result": "42", "gen_ai.system_instructions": "s"},
        [],
        "pydantic-ai",
        [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}],
        "42",  # text stays text: only objects, arrays and quoted strings are decoded
    ),
    ({"input.value": "true", "output.value": '"quoted"'}, [], "lib", "true", "quoted"),
    ({"prompt": "what?", "all_messages_events": "[]"}, [], "logfire", "what?", []),
    (
        {
            "gcp.vertex.agent.llm_request": "{}",
            "gcp.vertex.agent.tool_call_args": '{"a": 1}',
            "gcp.vertex.agent.llm_response": '{"r": 2}',
        },
        [],
        "gcp.vertex.agent",
        {"a": 1},
        {"r": 2},
    ),
    ({"flue.turn.input": "in", "flue.turn.output": "out"}, [], "@flue/opentelemetry", "in", "out"),
    (
        {"lk.user_transcript": "hello", "lk.response.text": "hi there"},
        [],
        "livekit-agents",
        "hello",
        "hi there",
    ),
    ({}, [], "lib", None, None),
]


@pytest.mark.parametrize(("attrs", "events", "scope", "expected_in", "expected_out"), IO_CASES)
def test_input_output(attrs, events, scope, expected_in, expected_out):
    fields = observation(span(attrs, events=events, scope=scope))
    assert fields.get("input") == expected_in
    assert fields.get("output") == expected_out


def test_consumed_keys_are_not_repeated_in_metadata_attributes():
    attrs = {
        "input.value": "q",
        "output.value": "a",
        "llm.input_messages.0.message.content": "q",
        "langfuse.observation.metadata.k": "v",
        "http.method": "POST",
    }
    metadata = observation(span(attrs))["metadata"]
    assert metadata["attributes"] == {"http.method": "POST"}
    assert metadata["k"] == "v"


# --- metadata ------------------------------------------------------------------------------


def test_observation_metadata_layers():
    attrs = {
        "langfuse.observation.metadata": '{"a": 1, "b": 1}',
        "langfuse.observation.metadata.b": "2",
        "langfuse.observation.metadata.c": '"text"',
        "langfuse.observation.metadata.d.e": '{"x": [1]}',
        "langfuse.metadata.legacy": "yes",
        "ai.telemetry.metadata.userId": "u",
        "ai.telemetry.metadata.feature": "f",
    }
    resource = {"langfuse.trace.metadata.team": '"core"', "service.name": "svc"}
    md = observation(span(attrs, resource=resource))["metadata"]
    assert {k: md[k] for k in ("a", "b", "c", "d.e", "legacy", "feature", "team")} == {
        "a": 1,
        "b": 2,
        "c": "text",
        "d.e": {"x": [1]},
        "legacy": "yes",
        "feature": "f",
        "team": "core",
    }
    assert "userId" not in md
    assert md["resourceAttributes"] == resource
    assert md["scope"] == {"name": "my-lib", "version": "1.0", "attributes": {}}


def test_langfuse_sdk_spans_keep_no_raw_attribute_copy():
    md = observation(span({"x": 1}, scope="langfuse-sdk"))["metadata"]
    assert "attributes" not in md
    assert md["scope"]["name"] == "langfuse-sdk"


# --- trace derivation (3.3, 3.4) ------------------------------------------------------------


def test_root_span_makes_the_full_trace():
    root = span(
        {
            "langfuse.trace.name": "checkout",
            "user.id": "u1",
            "session.id": "s1",
            "langfuse.trace.tags": ["b", "a", "b"],
            "langfuse.trace.public": True,
            "langfuse.trace.metadata.plan": '"pro"',
            "langfuse.observation.input": '{"q": "hi"}',
            "langfuse.observation.output": '"bye"',
        },
        name="handler",
    )
    [trace] = trace_events(root)
    f = trace.fields
    assert not trace.is_update
    assert trace.entity_id == TRACE
    assert f["timestamp"] == T0
    assert (f["name"], f["user_id"], f["session_id"]) == ("checkout", "u1", "s1")
    assert f["tags"] == ["a", "b"]
    assert f["public"] is True
    assert f["input"] == {"q": "hi"} and f["output"] == "bye"
    assert f["metadata"]["plan"] == "pro"


def test_root_trace_name_falls_back_to_the_observation_name():
    [trace] = trace_events(span({"gen_ai.tool.name": "search"}, name="raw"))
    assert trace.fields["name"] == "search"


def test_explicit_trace_io_wins_over_the_root_observation_io():
    root = span({"input.value": "obs in", "langfuse.trace.output": '{"final": true}'})
    [trace] = trace_events(root)
    assert trace.fields["input"] == "obs in"
    assert trace.fields["output"] == {"final": True}


def test_child_with_trace_keys_updates_the_trace():
    child = span(
        {"user.id": "u2", "langfuse.trace.metadata.k": "1", "input.value": "not for the trace"},
        parent="1111111111111111",
        start_ms=10,
    )
    [update] = trace_events(child)
    assert update.is_update
    assert update.fields["user_id"] == "u2"
    assert update.fields["metadata"] == {"k": 1}
    assert "input" not in update.fields and "name" not in update.fields


def test_child_without_trace_keys_gives_one_shallow_trace():
    a = span(parent="1111111111111111", span_id="a" * 16, start_ms=20)
    b = span(parent="1111111111111111", span_id="b" * 16, start_ms=5)
    [shallow] = trace_events(a, b)
    assert shallow.fields == {"timestamp": T0 + timedelta(milliseconds=5), "environment": "default"}


def test_no_shallow_trace_when_the_root_is_in_the_same_export():
    root = span(span_id="1111111111111111")
    child = span(parent="1111111111111111", span_id="a" * 16, start_ms=5)
    traces = trace_events(child, root)
    assert len(traces) == 1 and not traces[0].is_update


def test_as_root_makes_a_root_without_a_dangling_parent():
    s = span({"langfuse.internal.as_root": "true"}, parent="9999999999999999")
    assert "parent_observation_id" not in observation(s)
    [trace] = trace_events(s)
    assert not trace.is_update
    child = observation(span(parent="9999999999999999"))
    assert child["parent_observation_id"] == "9999999999999999"


USER_SESSION_CASES = [
    ({"langfuse.user.id": "a", "user.id": "b"}, "a", None),
    ({"user.id": 42}, "42", None),
    ({"langfuse.trace.metadata.langfuse_user_id": '"meta-user"'}, "meta-user", None),
    (
        {"ai.telemetry.metadata.userId": "vercel", "ai.telemetry.metadata.sessionId": "vs"},
        "vercel",
        "vs",
    ),
    ({"gen_ai.conversation.id": "conv"}, None, "conv"),
    ({"langfuse.session.id": "x", "session.id": "y"}, None, "x"),
]


@pytest.mark.parametrize(("attrs", "user", "session"), USER_SESSION_CASES)
def test_user_and_session(attrs, user, session):
    [trace] = trace_events(span(attrs))
    assert trace.fields.get("user_id") == user
    assert trace.fields.get("session_id") == session


TAG_CASES = [
    ({"langfuse.trace.tags": ["x", "y"]}, ["x", "y"]),
    ({"langfuse.trace.tags": '["j1", "j2"]'}, ["j1", "j2"]),
    ({"langfuse.trace.tags": "a, b,c"}, ["a", "b", "c"]),
    ({"langfuse.trace.tags": "single"}, ["single"]),
    ({"langfuse.tags": ["legacy"]}, ["legacy"]),
    ({"langfuse.observation.metadata.langfuse_tags": '["m"]'}, ["m"]),
    ({"ai.telemetry.metadata.tags": ["v"]}, ["v"]),
    ({"tag.tags": "t1,t2"}, ["t1", "t2"]),
    ({}, None),
]


@pytest.mark.parametrize(("attrs", "expected"), TAG_CASES)
def test_tags(attrs, expected):
    [trace] = trace_events(span(attrs))
    assert trace.fields.get("tags") == expected


def test_timestamps_keep_microseconds():
    s = span()
    s.start_ns = T0_NS + 123_456_789
    assert observation(s)["start_time"] == T0 + timedelta(microseconds=123_456)


def test_repeated_propagated_updates_collapse_but_order_dependent_ones_stay():
    same = {"user.id": "u1", "session.id": "s"}
    a = span(same, parent="1111111111111111", span_id="a" * 16, start_ms=30)
    b = span(same, parent="1111111111111111", span_id="b" * 16, start_ms=10)
    [update] = trace_events(a, b)
    assert update.fields["user_id"] == "u1"
    assert update.timestamp == T0 + timedelta(milliseconds=10)  # the earliest start kept
    c = span({"user.id": "u2"}, parent="1111111111111111", span_id="c" * 16, start_ms=20)
    d = span({"user.id": "u1"}, parent="1111111111111111", span_id="d" * 16, start_ms=40)
    users = [e.fields["user_id"] for e in trace_events(a, c, d)]
    assert users == ["u1", "u2", "u1"]
