"""Evaluation rules on observations (Langfuse's ``target: "observation"``): the filter
on observation columns (and tool calls), sampling, the mapping from the observation's
input, output, metadata and tool calls, the score on the observation, and the judge's
own generations never evaluated. Through the public API, the worker ticked with an
injected clock and the loopback OpenAI-compatible stub (tests/llm_stub.py)."""

from __future__ import annotations

from typing import Any

import pytest

from helpers import event, ingest
from lanterna.evaluation.worker import sampled
from support import Api
from test_evaluations import JUDGE, app_api, connect, runs, stub, tick

pytestmark = pytest.mark.clickhouse

__all__ = ["app_api", "stub"]  # the fixtures, used by name

RULES = "/api/public/unstable/evaluation-rules"


def rule(api: Api, evaluator: str, **body: Any) -> dict[str, Any]:
    made = api.post(
        RULES,
        json={"name": f"on {evaluator}", "evaluator": {"name": evaluator},
              "target": "observation", "enabled": True, **body},
    )  # fmt: skip
    assert made.status_code == 200, made.text
    assert made.json()["target"] == "observation"
    return made.json()


def observation(kind: str, obs_id: str, trace_id: str, **body: Any) -> dict[str, Any]:
    return event(f"{kind}-create", {"id": obs_id, "traceId": trace_id, **body})


def scores(api: Api, name: str) -> dict[str, dict[str, Any]]:
    """The scores named ``name``, by observation id."""
    found = api.get("/api/public/v2/scores", params={"name": name, "limit": 100}).json()
    return {s["observationId"]: s for s in found["data"]}


TOOL_OUTPUT = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {"id": "call-1", "type": "function",
         "function": {"name": "search", "arguments": '{"q": "weather"}'}},
        {"id": "call-2", "type": "function",
         "function": {"name": "lookup", "arguments": "{}"}},
    ],
}  # fmt: skip


def test_a_rule_scores_only_the_observations_its_filter_matches(app_api):
    made = app_api.post(
        "/api/public/unstable/evaluators",
        json={"name": "says-paris", "type": "contains", "config": {"value": "Paris"}},
    )
    assert made.status_code == 200, made.text
    shown = rule(
        app_api,
        "says-paris",
        filter=[
            {"type": "stringOptions", "column": "type", "operator": "any of",
             "value": ["GENERATION"]},
            {"type": "stringOptions", "column": "name", "operator": "none of",
             "value": ["rerank"]},
            {"type": "string", "column": "model", "operator": "starts with", "value": "gpt-4"},
            {"type": "stringObject", "column": "metadata", "key": "tier",
             "operator": "=", "value": "gold"},
            {"type": "arrayOptions", "column": "tags", "operator": "any of", "value": ["prod"]},
        ],
    )  # fmt: skip
    gold = {"tier": "gold"}
    ingest(
        app_api,
        event("trace-create", {"id": "t-prod", "name": "chat", "tags": ["prod"],
                               "environment": "production"}),
        event("trace-create", {"id": "t-dev", "name": "chat", "tags": ["dev"]}),
        observation("generation", "g-right", "t-prod", name="answer", model="gpt-4o",
                    metadata=gold, output="It is Paris.", environment="production"),
        observation("generation", "g-wrong", "t-prod", name="answer", model="gpt-4o-mini",
                    metadata=gold, output="Lyon", environment="production"),
        observation("span", "s-type", "t-prod", name="answer", metadata=gold,
                    output="Paris", environment="production"),
        observation("generation", "g-name", "t-prod", name="rerank", model="gpt-4o",
                    metadata=gold, output="Paris", environment="production"),
        observation("generation", "g-model", "t-prod", name="answer", model="claude-3",
                    metadata=gold, output="Paris", environment="production"),
        observation("generation", "g-meta", "t-prod", name="answer", model="gpt-4o",
                    metadata={"tier": "free"}, output="Paris", environment="production"),
        observation("generation", "g-tags", "t-dev", name="answer", model="gpt-4o",
                    metadata=gold, output="Paris"),
    )  # fmt: skip
    assert tick(app_api) == 2
    got = scores(app_api, "says-paris")
    assert {k: s["value"] for k, s in got.items()} == {"g-right": 1.0, "g-wrong": 0.0}
    right = got["g-right"]
    assert (right["traceId"], right["source"], right["environment"]) == (
        "t-prod", "EVAL", "production"
    )  # fmt: skip
    assert right["metadata"]["ruleId"] == shown["id"]
    assert {(r["object_type"], r["object_id"]) for r in runs(app_api)} == {
        ("OBSERVATION", "g-right"), ("OBSERVATION", "g-wrong")
    }  # fmt: skip
    # The observation's page shows its score; each observation is evaluated once, and an
    # update of an evaluated one (same id, later output) is not a new arrival.
    ingest(app_api, event("generation-update", {"id": "g-wrong", "traceId": "t-prod",
                                                "output": "Paris"}))  # fmt: skip
    assert tick(app_api) == 0
    trace = app_api.get("/api/public/traces/t-prod").json()
    assert {s["observationId"] for s in trace["scores"]} == {"g-right", "g-wrong"}


def test_sampling_picks_a_stable_share_of_the_matching_observations(app_api):
    app_api.post("/api/public/unstable/evaluators", json={"name": "valid", "type": "json_valid"})
    shown = rule(
        app_api,
        "valid",
        sampling=0.25,
        filter=[{"type": "string", "column": "name", "operator": "=", "value": "step"}],
    )
    ingest(app_api, event("trace-create", {"id": "t-many", "name": "batch"}))
    for start in range(0, 400, 200):
        ingest(
            app_api,
            *(observation("span", f"s-{i}", "t-many", name="step", output="{}")
              for i in range(start, start + 200)),
        )  # fmt: skip
    ingest(app_api, observation("span", "other", "t-many", name="other", output="{}"))
    scored = tick(app_api)
    print(f"\n400 observations at 25 % sampling: {scored} scored")
    assert 70 <= scored <= 130
    expected = {f"s-{i}" for i in range(400) if sampled(shown["id"], f"s-{i}", 0.25)}
    assert {r["object_id"] for r in runs(app_api)} == expected
    found = app_api.get("/api/public/v2/scores", params={"name": "valid"}).json()
    assert found["meta"]["totalItems"] == len(expected)
    assert all(s["observationId"] in expected for s in found["data"])


def test_a_judge_reads_the_observation_and_its_tool_calls_and_never_judges_itself(app_api, stub):
    connect(app_api, stub)
    judge = {
        **JUDGE,
        "name": "tool-use",
        "prompt": "Asked: {{question}}\nTools: {{tools}}\nFirst args: {{args}}\nUser: {{user}}",
    }
    assert app_api.post("/api/public/unstable/evaluators", json=judge).status_code == 200
    mapping = [
        {"variable": "question", "source": "input", "jsonPath": "$.messages[0].content"},
        {"variable": "tools", "source": "tool_calls", "jsonPath": "$[*].name"},
        {"variable": "args", "source": "tool_calls", "jsonPath": "$[0].arguments"},
        {"variable": "user", "source": "metadata", "jsonPath": "$.user"},
    ]
    # Every generation that called a tool: the judge's own generations are generations
    # too, and must still never be judged.
    rule(
        app_api,
        "tool-use",
        mapping=mapping,
        filter=[
            {"type": "stringOptions", "column": "type", "operator": "any of",
             "value": ["GENERATION"]},
            {"type": "arrayOptions", "column": "calledToolNames", "operator": "any of",
             "value": ["search"]},
            {"type": "number", "column": "toolCalls", "operator": ">=", "value": 2},
        ],
    )  # fmt: skip
    question = {"messages": [{"role": "user", "content": "Weather in Paris?"}]}
    ingest(
        app_api,
        event("trace-create", {"id": "t-agent", "name": "agent", "environment": "staging"}),
        observation("generation", "g-tools", "t-agent", name="plan", input=question,
                    output=TOOL_OUTPUT, metadata={"user": "ada"}, environment="staging"),
        observation("generation", "g-no-tools", "t-agent", name="answer", input=question,
                    output="Sunny.", environment="staging"),
        observation("generation", "g-one-tool", "t-agent", name="plan", input=question,
                    output={"tool_calls": TOOL_OUTPUT["tool_calls"][:1]},
                    environment="staging"),
    )  # fmt: skip
    assert tick(app_api) == 1
    (request,) = stub.requests
    assert request["messages"][1]["content"] == (
        'Asked: Weather in Paris?\nTools: ["search","lookup"]\n'
        'First args: {"q": "weather"}\nUser: ada'
    )
    (score,) = scores(app_api, "tool-use").values()
    assert (score["observationId"], score["traceId"], score["value"]) == ("g-tools", "t-agent", 0.8)
    assert (score["comment"], score["environment"]) == ("mostly right", "staging")
    # The judge's call is a generation of its own trace in lanterna-evaluation: it is
    # there, and later ticks never send it (nor anything else) to the judge.
    judged = app_api.get("/api/public/traces", params={"environment": "lanterna-evaluation"})
    (judge_trace,) = judged.json()["data"]
    detail = app_api.get(f"/api/public/traces/{judge_trace['id']}").json()
    (generation,) = detail["observations"]
    assert generation["type"] == "GENERATION" and generation["calculatedTotalCost"] > 0
    assert score["metadata"]["judgeTraceId"] == judge_trace["id"]
    assert tick(app_api) == 0 and len(stub.requests) == 1
    assert {r["object_id"] for r in runs(app_api)} == {"g-tools"}


def test_a_rule_without_a_filter_still_leaves_the_judges_generations_alone(app_api, stub):
    connect(app_api, stub)
    assert app_api.post("/api/public/unstable/evaluators", json=JUDGE).status_code == 200
    mapping = [
        {"variable": "question", "source": "input", "jsonPath": "$.question"},
        {"variable": "answer", "source": "output"},
    ]
    rule(app_api, "helpfulness", mapping=mapping)
    ingest(
        app_api,
        event("trace-create", {"id": "t-1", "name": "chat"}),
        observation("generation", "g-1", "t-1", input={"question": "2+2?"}, output="4"),
    )
    assert tick(app_api) == 1
    # The judge wrote a trace and a generation; ticking again judges neither.
    for _ in range(3):
        assert tick(app_api) == 0
    assert len(stub.requests) == 1
    assert [r["object_id"] for r in runs(app_api)] == ["g-1"]


@pytest.mark.parametrize(
    ("condition", "named"),
    [
        ({"type": "string", "column": "statusMessage", "operator": "=", "value": "x"},
         "filter[0].column: 'statusMessage'"),
        ({"type": "stringOptions", "column": "type", "operator": "any of", "value": ["WIDGET"]},
         "filter[0].value: WIDGET"),
        ({"type": "stringOptions", "column": "level", "operator": "any of", "value": ["FATAL"]},
         "FATAL not a valid level"),
        ({"type": "number", "column": "name", "operator": ">", "value": 1},
         "does not fit column 'name'"),
        ({"type": "stringObject", "column": "metadata", "operator": "=", "value": "x"},
         "needs a 'key'"),
        ({"type": "number", "column": "toolCalls", "operator": ">", "value": "two"},
         "filter[0]: column 'toolCalls'"),
        ({"type": "stringOptions", "column": "calledToolNames", "operator": "any of",
          "value": ["x"]}, "filter[0]: column 'calledToolNames'"),
        ({"type": "stringOptions", "column": "datasetId", "operator": "any of", "value": ["d"]},
         "filter[0].column: 'datasetId'"),
    ],
)  # fmt: skip
def test_bad_observation_filters_are_400_naming_the_field(app_api, condition, named):
    app_api.post("/api/public/unstable/evaluators", json={"name": "valid", "type": "json_valid"})
    body = {"name": "r", "evaluator": {"name": "valid"}, "target": "observation",
            "enabled": True, "filter": [condition]}  # fmt: skip
    refused = app_api.post(RULES, json=body)
    assert refused.status_code == 400, refused.text
    assert named in refused.json()["error"], refused.json()
    assert app_api.get(RULES).json()["data"] == []  # nothing stored


def test_observation_rules_check_their_mapping_and_can_be_moved(app_api):
    app_api.post("/api/public/unstable/evaluators", json={"name": "exact", "type": "exact_match"})
    expected = [{"variable": "expected", "source": "expected_output"}]
    body = {"name": "r", "evaluator": {"name": "exact"}, "target": "observation",
            "enabled": True, "mapping": expected}  # fmt: skip
    refused = app_api.post(RULES, json=body)
    assert refused.status_code == 400
    assert "only valid for target 'experiment'" in refused.json()["error"]
    legacy = [{"variable": "output", "source": "output", "langfuseObject": "generation",
               "objectName": "llm"}]  # fmt: skip
    named = app_api.post(RULES, json={**body, "target": "trace", "mapping": legacy})
    assert named.status_code == 400
    assert "mapping[0].langfuseObject" in named.json()["error"]
    assert "target 'observation'" in named.json()["error"]
    made = app_api.post(RULES, json={**body, "target": "trace", "mapping": None}).json()
    moved = app_api.patch(
        f"{RULES}/{made['id']}",
        json={"target": "observation",
              "filter": [{"type": "stringOptions", "column": "level", "operator": "any of",
                          "value": ["ERROR"]}]},
    )  # fmt: skip
    assert moved.status_code == 200, moved.text
    assert moved.json()["target"] == "observation"
    assert app_api.get(f"{RULES}/{made['id']}").json()["filter"][0]["column"] == "level"


@pytest.mark.parametrize(
    ("output", "calls"),
    [
        (TOOL_OUTPUT, [("call-1", "search", '{"q": "weather"}'), ("call-2", "lookup", "{}")]),
        (  # a chat completion, as a JSON text
            '{"choices": [{"message": {"role": "assistant", "tool_calls": [{"id": "c",'
            ' "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}]}',
            [("c", "f", "{}")],
        ),
        (  # Anthropic content blocks
            {"role": "assistant", "content": [{"type": "text", "text": "Let me look."},
                                              {"type": "tool_use", "id": "tu-1", "name": "web",
                                               "input": {"q": "x"}}]},
            [("tu-1", "web", {"q": "x"})],
        ),
        (  # the Vercel AI SDK's calls in a list of messages
            [{"role": "user", "content": "hi"},
             {"role": "assistant", "toolCalls": [{"toolCallId": "v1", "toolName": "calc",
                                                  "args": {"a": 1}}]}],
            [("v1", "calc", {"a": 1})],
        ),
        ({"role": "assistant", "function_call": {"name": "old", "arguments": "{}"}},
         [(None, "old", "{}")]),
        ("just text", []),
        ({"content": "no calls", "metadata": {"name": "x", "arguments": 1}}, []),
    ],
)  # fmt: skip
def test_tool_calls_are_read_from_the_output_shapes_sdks_write(output, calls):
    from lanterna.evaluation.tool_calls import tool_calls_of

    found = tool_calls_of(output)
    assert [(c["id"], c["name"], c["arguments"]) for c in found] == calls
    assert [c["index"] for c in found] == list(range(len(calls)))


def test_the_rule_routes_document_their_body_and_answer(app_api):
    doc = app_api.get("/api/openapi.json").json()
    routes = doc["paths"][RULES]
    body = routes["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "observation" in body["properties"]["target"]["enum"]  # null is refused
    assert set(body["required"]) == {"name", "enabled"}
    assert "$defs" not in str(routes)  # nested models inlined, no dangling reference
    mapping = body["properties"]["mapping"]["anyOf"][0]["items"]
    assert "tool_calls" in mapping["properties"]["source"]["enum"]
    answer = routes["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    rule_schema = doc["components"]["schemas"][answer["$ref"].split("/")[-1]]
    assert rule_schema["properties"]["target"]["enum"] == ["observation", "trace", "experiment"]
    one = doc["paths"][RULES + "/{rule_id}"]
    assert set(one) == {"get", "patch", "delete"}
    change = one["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert change["minProperties"] == 1 and "required" not in change
