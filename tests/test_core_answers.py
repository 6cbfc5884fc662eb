"""The core read answers (traces, observations v1 and v2, sessions, users, daily metrics,
the key's project) are what the OpenAPI document says, and, where Langfuse's spec has
the same answer, what its spec says (the official clients parse them): every route
asked with data of every kind (all observation types' fields, usage and cost, a prompt
link, scores of each data type, field groups left out), each answer validated against
our document's schema of its 200 and Langfuse's; and the official 2.x SDK parses them
(``tests/clients/lf2_reads.py``)."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest

from helpers import event, ingest, iso
from spec_schemas import conforms
from support import run_sdk_script


def _seed(api: Any) -> None:
    made = api.post(
        "/api/public/v2/prompts", json={"name": "greet", "prompt": "Hi", "labels": ["production"]}
    )
    assert made.status_code == 200, made.text
    ingest(
        api,
        event("trace-create", {
            "id": "t1", "name": "chat", "userId": "u1", "sessionId": "s1",
            "input": {"q": 1}, "output": "answer", "metadata": {"k": "v" * 300},
            "tags": ["b", "a"], "release": "r1", "version": "v1", "public": True,
            "environment": "production",
        }),
        event("span-create", {
            "id": "sp", "traceId": "t1", "name": "step", "startTime": iso(),
            "endTime": iso(seconds=2), "metadata": [1, 2], "level": "WARNING",
            "statusMessage": "slow",
        }),
        event("generation-create", {
            "id": "gen", "traceId": "t1", "parentObservationId": "sp", "model": "gpt-4o-mini",
            "startTime": iso(), "completionStartTime": iso(seconds=1), "endTime": iso(seconds=3),
            "usageDetails": {"input": 10, "output": 5}, "modelParameters": {"temperature": 0.5},
            "promptName": "greet", "promptVersion": 1, "input": [{"role": "user", "content": "x"}],
        }),
        event("event-create", {"id": "ev", "traceId": "t1", "name": "mark"}),
        event("score-create", {"id": "n", "traceId": "t1", "name": "q", "value": 0.5}),
        event("score-create", {"id": "c", "traceId": "t1", "name": "tone", "value": "kind"}),
        event("score-create", {
            "id": "b", "traceId": "t1", "observationId": "gen", "name": "ok", "value": 1,
            "dataType": "BOOLEAN",
        }),
        event("score-create", {
            "id": "x", "traceId": "t1", "name": "note", "value": "fine", "dataType": "TEXT",
        }),
        event("score-create", {
            "id": "fix", "traceId": "t1", "name": "fix", "value": "better",
            "dataType": "CORRECTION",
        }),
        event("trace-create", {"id": "t2"}),
    )  # fmt: skip


#: (path, query, Langfuse's schema of the answer or None where Langfuse has no such route)
CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("/api/public/projects", {}, "Projects"),
    ("/api/public/traces", {}, "Traces"),
    ("/api/public/traces", {"fields": "core", "orderBy": "name.ASC"}, "Traces"),
    ("/api/public/traces/t1", {}, "TraceWithFullDetails"),
    ("/api/public/traces/t2", {"fields": "core"}, "TraceWithFullDetails"),
    ("/api/public/observations", {}, "legacyObservationsViews"),
    ("/api/public/observations/gen", {}, "ObservationsViewSingle"),
    ("/api/public/observations/ev", {}, "ObservationsViewSingle"),
    ("/api/public/v2/observations", {}, "ObservationsV2Response"),
    (
        "/api/public/v2/observations",
        {
            "fields": "core,basic,time,io,metadata,model,usage,prompt,metrics,trace_context",
            "limit": 2,
        },
        "ObservationsV2Response",
    ),
    ("/api/public/sessions", {}, "PaginatedSessions"),
    ("/api/public/sessions/s1", {}, "SessionWithTraces"),
    ("/api/public/users", {}, None),
    ("/api/public/users/u1", {}, None),
    ("/api/public/metrics/daily", {}, None),
]


def _documented(spec: dict[str, Any], path: str) -> dict[str, Any]:
    """Our document's schema of the 200 of ``GET path`` (its route's template)."""
    for template, item in spec["paths"].items():
        head, _, _ = template.partition("{")
        if template == path or ("{" in template and path.startswith(head) and "/" not in
                                path[len(head):]):  # fmt: skip
            schema = item["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            return {**schema, "components": spec["components"]}
    raise AssertionError(f"{path} is not in the document")


def test_core_answers_match_our_document_and_langfuse_spec(api: Any) -> None:
    _seed(api)
    spec = api.get("/api/openapi.json").json()
    for path, query, langfuse in CASES:
        answer = api.get(path, params=query)
        assert answer.status_code == 200, (path, answer.text)
        body = answer.json()
        validator = jsonschema.Draft202012Validator(_documented(spec, path))
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
        assert not errors, (path, query, errors[:5])
        if langfuse is not None:
            conforms(langfuse, body)
    # The document is not vacuous: a wrong type in an answer would be caught.
    trace = api.get("/api/public/traces/t1").json()
    assert {o["type"] for o in trace["observations"]} == {"SPAN", "GENERATION", "EVENT"}
    # Langfuse's ScoreV1 (what its clients parse in a trace) has no CORRECTION: that
    # score is left out of the trace, and read through the scores API.
    assert {s["dataType"] for s in trace["scores"]} == {"NUMERIC", "CATEGORICAL", "BOOLEAN", "TEXT"}
    listed = {t["id"]: t for t in api.get("/api/public/traces").json()["data"]}
    assert "fix" in listed["t1"]["scores"]
    fix = api.get("/api/public/v3/scores", params={"fields": "core"}).json()["data"]
    assert "fix" in {s["id"] for s in fix}
    wrong = {**trace, "observations": [{**trace["observations"][0], "usage": None}]}
    validator = jsonschema.Draft202012Validator(_documented(spec, "/api/public/traces/t1"))
    assert not validator.is_valid(wrong)


@pytest.mark.slow
def test_the_2x_sdk_parses_a_trace_with_every_kind_of_score(live_server: Any) -> None:
    """A CORRECTION score on a trace broke the 2.x SDK's ``fetch_trace`` (its Score union
    has no such type, nor has Langfuse's ScoreV1): the trace leaves it out."""
    batch = [
        event("trace-create", {"id": "lf2-t", "sessionId": "lf2-s", "userId": "u"}),
        event("generation-create", {
            "id": "lf2-g", "traceId": "lf2-t", "model": "gpt-4o-mini", "startTime": iso(),
            "endTime": iso(seconds=1), "usageDetails": {"input": 3, "output": 2},
        }),
        event("span-create", {"id": "lf2-sp", "traceId": "lf2-t", "startTime": iso()}),
        event("score-create", {"id": "n", "traceId": "lf2-t", "name": "q", "value": 0.5}),
        event("score-create", {"id": "c", "traceId": "lf2-t", "name": "tone", "value": "kind"}),
        event("score-create", {
            "id": "b", "traceId": "lf2-t", "name": "ok", "value": 0, "dataType": "BOOLEAN",
        }),
        event("score-create", {
            "id": "fix", "traceId": "lf2-t", "name": "fix", "value": "better",
            "dataType": "CORRECTION",
        }),
    ]  # fmt: skip
    sent = httpx.post(
        f"{live_server.url}/api/public/ingestion",
        json={"batch": batch},
        auth=live_server.project.auth,
    )
    assert sent.status_code == 207 and not sent.json()["errors"], sent.text

    got = run_sdk_script("langfuse2", "lf2_reads.py", live_server, "lf2-t", "lf2-g", "lf2-s")
    assert got["trace"] == {
        "id": "lf2-t",
        "scores": ["BOOLEAN", "CATEGORICAL", "NUMERIC"],
        "observations": ["GENERATION", "SPAN"],
        "latency": 1.0,
    }
    assert got["traces"] == ["lf2-t"]
    assert got["observation"] == {"id": "lf2-g", "usage": 5}
    assert got["observations"] == ["lf2-g", "lf2-sp"]
    assert got["sessions"] == ["lf2-s"] and got["session"] == ["lf2-t"]
    assert got["projects"] == ["Test Project"]
    assert got["daily"] == [1]
    assert got["sdk_log"] == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/public/metrics/daily",
        "/api/public/traces",
        "/api/public/sessions",
        "/api/public/users",
        "/api/public/scores",
        "/api/public/v2/scores",
    ],
)
@pytest.mark.parametrize("param", ["fromTimestamp", "toTimestamp"])
def test_a_time_in_year_9999_is_a_400_naming_the_parameter_and_the_limit(
    api: Any, path: str, param: str
) -> None:
    _seed(api)
    response = api.get(path, params={param: "9999-12-31T23:59:59Z"})
    assert response.status_code == 400, response.text
    text = response.text
    assert param in text and "9999-01-01" in text
    last = api.get(path, params={param: "9998-12-31T23:59:59Z"})
    assert last.status_code == 200, last.text
