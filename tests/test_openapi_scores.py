"""The OpenAPI document describes what the scores, score-config, models and OTLP routes
really answer: every kind of answer they give (each score data type and target, each
``fields`` choice, custom and built-in models, an OTLP partial success) is valid against
the schema our document gives for it, and, where Langfuse's spec documents the same
answer, against Langfuse's schema too (what the official clients parse).

The fuzz test (tests/test_openapi_fuzz.py) checks the same on generated requests; this
one makes sure each variant of the unions is seen, on both backends.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from helpers import event, ingest, iso
from spec_schemas import SPEC, conforms

pytestmark = pytest.mark.clickhouse

TRACE, OBSERVATION = "oa-trace", "oa-span"
HEX_TRACE, HEX_SPAN = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"


_DOCUMENT: dict[str, Any] = {}


def document(api: Any) -> dict[str, Any]:
    """Our OpenAPI document (the same for every app: built once, it takes seconds)."""
    if not _DOCUMENT:
        _DOCUMENT.update(api.app.openapi())
    return _DOCUMENT


def documented(api: Any, method: str, path: str, status: int, body: Any) -> None:
    """Fail unless ``body`` is valid against our document's schema of that answer."""
    spec = document(api)
    answer = spec["paths"][path][method]["responses"][str(status)]
    schema = answer["content"]["application/json"]["schema"]
    assert schema, f"{method.upper()} {path} {status}: no schema"
    rooted = {**schema, "components": spec["components"]}
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    jsonschema.Draft202012Validator(rooted, format_checker=checker).validate(body)


def read(api: Any, path: str, documented_path: str, **params: Any) -> Any:
    """GET ``path``; assert 200 and that the answer is as documented."""
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    documented(api, "get", documented_path, 200, response.json())
    return response.json()


def created(api: Any, path: str, body: Any, status: int = 200, method: str = "post") -> Any:
    response = api.request(method.upper(), path, json=body)
    assert response.status_code == status, response.text
    return response.json()


# --- scores ---------------------------------------------------------------------------


def seed_scores(api: Any) -> dict[str, str]:
    """One score of each data type and target; their ids by a label."""
    ingest(
        api,
        event("trace-create", {"id": TRACE, "name": "t", "userId": "u", "tags": ["a"]}),
        event("span-create", {"id": OBSERVATION, "traceId": TRACE, "startTime": iso()}),
    )
    config = created(
        api,
        "/api/public/score-configs",
        {"name": "tone", "dataType": "CATEGORICAL", "categories": [{"label": "kind", "value": 2}]},
    )
    bodies = {
        "numeric": {"traceId": TRACE, "name": "n", "value": 0.5, "comment": "ok"},
        "boolean": {"traceId": TRACE, "name": "b", "value": 1, "dataType": "BOOLEAN"},
        "categorical": {
            "traceId": TRACE,
            "name": "tone",
            "value": "kind",
            "configId": config["id"],
        },
        "text": {"traceId": TRACE, "name": "t", "value": "fine", "dataType": "TEXT"},
        "correction": {
            "traceId": TRACE,
            "observationId": OBSERVATION,
            "name": "c",
            "value": "better",
            "dataType": "CORRECTION",
            "metadata": {"k": [1]},
        },
        "session": {"sessionId": "oa-session", "name": "s", "value": 3},
        "run": {"datasetRunId": "oa-run", "name": "r", "value": "x", "dataType": "CATEGORICAL"},
    }
    ids = {}
    for label, body in bodies.items():
        answer = created(api, "/api/public/scores", body)
        documented(api, "post", "/api/public/scores", 200, answer)
        conforms("CreateScoreResponse", answer)
        ids[label] = answer["id"]
    return ids


def test_every_kind_of_score_answers_as_documented(api):
    ids = seed_scores(api)
    trace_scores = {"numeric", "boolean", "categorical", "text"}  # v1: no corrections

    listed = read(api, "/api/public/v2/scores", "/api/public/v2/scores")
    conforms("GetScoresResponse", listed)
    assert {s["id"] for s in listed["data"]} == set(ids.values())
    assert {s["dataType"] for s in listed["data"]} == {
        "NUMERIC", "BOOLEAN", "CATEGORICAL", "TEXT", "CORRECTION",
    }  # fmt: skip
    bare = read(api, "/api/public/v2/scores", "/api/public/v2/scores", fields="score")
    assert all("trace" not in s for s in bare["data"])
    for score_id in ids.values():
        one = read(api, f"/api/public/v2/scores/{score_id}", "/api/public/v2/scores/{score_id}")
        conforms("Score", one)

    legacy = read(api, "/api/public/scores", "/api/public/scores")
    assert {s["id"] for s in legacy["data"]} == {ids[k] for k in trace_scores}
    for label in trace_scores:
        read(api, f"/api/public/scores/{ids[label]}", "/api/public/scores/{score_id}")

    for fields in ("", "details,subject,annotation"):
        page = read(api, "/api/public/v3/scores", "/api/public/v3/scores", fields=fields)
        conforms("GetScoresV3Response", page)
        assert len(page["data"]) == len(ids)
    paged = read(api, "/api/public/v3/scores", "/api/public/v3/scores", limit=2)
    assert paged["meta"]["cursor"]


def test_score_lists_answer_as_documented(api):
    ingest(api, event("trace-create", {"id": TRACE, "name": "t"}))
    good = {"traceId": TRACE, "name": "n", "value": 1}
    accepted = created(api, "/api/public/scores", [good], status=202)
    documented(api, "post", "/api/public/scores", 202, accepted)
    partly = created(api, "/api/public/scores", [good, {"id": "bad", "name": "x"}], status=207)
    documented(api, "post", "/api/public/scores", 207, partly)
    assert (partly["accepted"], partly["rejected"], partly["errors"][0]["id"]) == (1, 1, "bad")
    score = read(api, "/api/public/v2/scores", "/api/public/v2/scores")["data"][0]
    deleted = api.delete(f"/api/public/scores/{score['id']}")
    assert deleted.status_code == 202, deleted.text
    documented(api, "delete", "/api/public/scores/{score_id}", 202, deleted.json())


# --- score configs --------------------------------------------------------------------


def test_score_configs_answer_as_documented(api):
    path = "/api/public/score-configs"
    bodies = [
        {"name": "acc", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1},
        {"name": "open", "dataType": "NUMERIC"},
        {"name": "ok", "dataType": "BOOLEAN", "description": "yes or no"},
        {"name": "tone", "dataType": "CATEGORICAL", "categories": [{"label": "a", "value": 1}]},
        {"name": "notes", "dataType": "TEXT"},
    ]
    for body in bodies:
        config = created(api, path, body)
        documented(api, "post", path, 200, config)
        conforms("ScoreConfig", config)
        one = read(api, f"{path}/{config['id']}", path + "/{config_id}")
        patched = created(api, f"{path}/{one['id']}", {"isArchived": True}, method="patch")
        documented(api, "patch", path + "/{config_id}", 200, patched)
        conforms("ScoreConfig", patched)
    page = read(api, path, path)
    conforms("ScoreConfigs", page)
    assert page["meta"]["totalItems"] == len(bodies)


# --- models ---------------------------------------------------------------------------

TIERED = {
    "modelName": "tiered",
    "matchPattern": "(?i)^tiered$",
    "startDate": "2024-01-01T00:00:00Z",
    "unit": "TOKENS",
    "tokenizerId": "openai",
    "tokenizerConfig": {"tokensPerMessage": 3},
    "pricingTiers": [
        {"name": "Standard", "isDefault": True, "priority": 0, "conditions": [],
         "prices": {"input": 1e-6, "output": 2e-6}},
        {"name": "Large", "isDefault": False, "priority": 1,
         "conditions": [{"usageDetailPattern": "input", "operator": "gt", "value": 200000}],
         "prices": {"input": 2e-6}},
        {"name": "Fast", "isDefault": False, "priority": 2,
         "conditions": [{"source": "model_parameters", "key": "tier", "values": ["fast"]}],
         "prices": {"input": 3e-6}},
    ],
}  # fmt: skip


def test_models_answer_as_documented(api):
    path = "/api/public/models"
    for body in (TIERED, {"modelName": "flat", "matchPattern": "flat", "totalPrice": 1}):
        model = created(api, path, body)
        documented(api, "post", path, 200, model)
        conforms("Model", model)
        read(api, f"{path}/{model['id']}", path + "/{model_id}")
    # Every page, so every built-in model (and its tiers) is checked.
    page, seen = 1, 0
    while True:
        answer = read(api, path, path, page=page, limit=100)
        conforms("PaginatedModels", answer)
        seen += len(answer["data"])
        if page >= answer["meta"]["totalPages"]:
            break
        page += 1
    assert seen == answer["meta"]["totalItems"] > 100
    builtin = answer["data"][-1]
    assert builtin["isLangfuseManaged"] and builtin["provider"]
    read(api, f"{path}/{builtin['id']}", path + "/{model_id}")
    assert read(api, path, path, match="tiered")["data"][0]["modelName"] == "tiered"
    assert read(api, path, path, match="no such model")["message"]
    deleted = api.delete(f"{path}/{model['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert "204" in document(api)["paths"][path + "/{model_id}"]["delete"]["responses"]


# --- OTLP -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/public/otel/v1/traces", "/v1/traces"])
def test_otlp_answers_are_documented_in_both_media_types(api, path):
    span = {
        "traceId": HEX_TRACE,
        "spanId": HEX_SPAN,
        "name": "root",
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001000000000",
    }
    zero = {**span, "traceId": "0" * 32, "name": "no trace"}
    export = {"resourceSpans": [{"scopeSpans": [{"spans": [span, zero]}]}]}
    answer = api.post(path, json=export)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body["partialSuccess"]["rejectedSpans"] == "1"
    documented(api, "post", path, 200, body)
    documented(api, "post", path, 200, api.post(path, json={"resourceSpans": []}).json())
    content = document(api)["paths"][path]["post"]["responses"]["200"]["content"]
    assert content["application/x-protobuf"]["schema"]["format"] == "binary"
    request = document(api)["paths"][path]["post"]["requestBody"]["content"]
    assert set(request) == {"application/json", "application/x-protobuf"}
    empty = api.post(path, content=b"", headers={"content-type": "application/x-protobuf"})
    assert empty.status_code == 200
    assert empty.headers["content-type"].startswith("application/x-protobuf")


@pytest.mark.skipif(SPEC is None, reason="Langfuse's spec is not beside the checkout")
def test_score_lists_document_the_parameters_langfuse_documents(api):
    import yaml

    assert SPEC is not None
    theirs = yaml.safe_load(SPEC.read_text())["paths"]["/api/public/v2/scores"]["get"]
    wanted = {parameter["name"] for parameter in theirs["parameters"]}
    for path in ("/api/public/v2/scores", "/api/public/scores"):
        ours = {
            parameter["name"] for parameter in document(api)["paths"][path]["get"]["parameters"]
        }
        assert wanted <= ours, (path, wanted - ours)
