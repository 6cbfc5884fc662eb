"""The OpenAPI document of the annotation-queue, LLM-connection and evaluator routes is
what they do: each body sent here is valid by the documented request schema and
accepted, each answer is valid by the documented schema of its status (and, where
Langfuse's spec describes the same answer, by Langfuse's schema too), and a body the
document refuses is refused by the server with a 400. The fuzz test
(tests/test_openapi_fuzz.py) mostly reaches these routes with unknown ids; here they
answer with real rows."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from spec_schemas import conforms
from support import SECRETS, Api, seed_score_config

QUEUES = "/api/public/annotation-queues"
CONNECTIONS = "/api/public/llm-connections"
EVALUATORS = "/api/public/unstable/evaluators"
KEY = "sk-documented-key-4321"
SECRETS.add(KEY)


class Document:
    """Our OpenAPI document, checking requests and answers against it."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.spec = api.get("/api/openapi.json").json()

    def _valid(self, schema: dict[str, Any], value: Any) -> None:
        rooted = {**schema, "components": self.spec["components"]}
        jsonschema.Draft202012Validator(rooted).validate(value)

    def request_schema(self, method: str, path: str) -> dict[str, Any]:
        op = self.spec["paths"][path][method.lower()]
        return op["requestBody"]["content"]["application/json"]["schema"]  # type: ignore[no-any-return]

    def accepts(self, method: str, path: str, body: Any) -> bool:
        """Whether ``body`` is valid by the documented request schema."""
        try:
            self._valid(self.request_schema(method, path), body)
        except jsonschema.ValidationError:
            return False
        return True

    def call(self, method: str, path: str, url: str, body: Any = None) -> Any:
        """Send a documented-valid request; the answer, checked against the document."""
        if body is not None:
            assert self.accepts(method, path, body), body
        response = self.api.request(method, url, json=body)
        assert response.status_code == 200, response.text
        answer = self.spec["paths"][path][method.lower()]["responses"]["200"]
        self._valid(answer["content"]["application/json"]["schema"], response.json())
        return response.json()


def test_annotation_queue_answers_are_as_documented(api: Api) -> None:
    doc = Document(api)
    seed_score_config(api.app, api.project.id, "cfg-1", "quality")
    queue = doc.call("POST", QUEUES, QUEUES, {"name": "review", "scoreConfigIds": ["cfg-1"]})
    conforms("AnnotationQueue", queue)
    qid = queue["id"]
    one = QUEUES + "/{queue_id}"
    conforms("AnnotationQueue", doc.call("GET", one, f"{QUEUES}/{qid}"))
    conforms("PaginatedAnnotationQueues", doc.call("GET", QUEUES, QUEUES))
    items = one + "/items"
    item = doc.call(
        "POST", items, f"{QUEUES}/{qid}/items", {"objectId": "t-1", "objectType": "TRACE"}
    )
    conforms("AnnotationQueueItem", item)
    done = doc.call(
        "POST",
        items,
        f"{QUEUES}/{qid}/items",
        {"objectId": "s-1", "objectType": "SESSION", "status": "COMPLETED"},
    )
    assert done["completedAt"] is not None
    conforms("PaginatedAnnotationQueueItems", doc.call("GET", items, f"{QUEUES}/{qid}/items"))
    item_path = items + "/{item_id}"
    url = f"{QUEUES}/{qid}/items/{item['id']}"
    conforms("AnnotationQueueItem", doc.call("GET", item_path, url))
    for change in ({"status": "COMPLETED"}, {"status": None}, {}):
        conforms("AnnotationQueueItem", doc.call("PATCH", item_path, url, change))
    conforms("DeleteAnnotationQueueItemResponse", doc.call("DELETE", item_path, url))
    assignments = one + "/assignments"
    made = doc.call("POST", assignments, f"{QUEUES}/{qid}/assignments", {"userId": "u-1"})
    conforms("CreateAnnotationQueueAssignmentResponse", made)
    for removed in (True, False):
        gone = doc.call("DELETE", assignments, f"{QUEUES}/{qid}/assignments", {"userId": "u-1"})
        assert gone == {"success": removed}
        conforms("DeleteAnnotationQueueAssignmentResponse", gone)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/items", {"objectId": "", "objectType": "TRACE"}),
        ("/items", {"objectId": "t-1", "objectType": "PROMPT"}),
        ("/items", {"objectId": "t-1", "objectType": "TRACE", "status": "DONE"}),
        ("/assignments", {"userId": ""}),
        ("/assignments", {}),
    ],
)
def test_queue_bodies_the_document_refuses_are_400(api: Api, path: str, body: Any) -> None:
    doc = Document(api)
    queue = api.post(QUEUES, json={"name": "q", "scoreConfigIds": []}).json()
    assert not doc.accepts("POST", QUEUES + "/{queue_id}" + path, body)
    response = api.post(f"{QUEUES}/{queue['id']}{path}", json=body)
    assert response.status_code == 400, response.text
    assert api.get(f"{QUEUES}/{queue['id']}/items").json()["data"] == []


FULL_CONNECTION = {
    "provider": "  gateway  ",
    "adapter": "openai",
    "secretKey": KEY,
    "baseURL": "https://llm.example.com:8443/v1",
    "customModels": ["m-1", "m-1", "m-2"],
    "withDefaultModels": False,
    "extraHeaders": {"X-Team": "evals"},
    "config": {"useResponsesApi": True},
}


def test_connection_answers_are_as_documented_and_hold_no_secret(api: Api) -> None:
    doc = Document(api)
    made = doc.call("PUT", CONNECTIONS, CONNECTIONS, FULL_CONNECTION)
    conforms("LlmConnection", made)
    assert (made["provider"], made["displaySecretKey"]) == ("gateway", "...4321")
    assert made["customModels"] == ["m-1", "m-2"] and made["extraHeaderKeys"] == ["X-Team"]
    short = doc.call(
        "PUT",
        CONNECTIONS,
        CONNECTIONS,
        {"provider": "short", "adapter": "anthropic", "secretKey": "sk-12345", "baseURL": None},
    )
    assert short["displaySecretKey"] == "..." and short["config"] is None
    listed = doc.call("GET", CONNECTIONS, CONNECTIONS)
    conforms("PaginatedLlmConnections", listed)
    assert KEY not in str(listed) and "evals" not in str(listed)
    gone = doc.call("DELETE", CONNECTIONS + "/{connection_id}", f"{CONNECTIONS}/{made['id']}")
    conforms("DeleteLlmConnectionResponse", gone)


@pytest.mark.parametrize(
    "change",
    [
        {"baseURL": "ftp://llm.example.com"},
        {"baseURL": "https://user:pw@llm.example.com"},
        {"baseURL": "http://llm.example.com:65536"},
        {"provider": " "},
        {"provider": "p" * 201},
        {"secretKey": ""},
        {"adapter": "ollama"},
        {"customModels": [""]},
        {"withDefaultModels": "yes"},
        {"extraHeaders": {"": "x"}},
        {"extraHeaders": {"X-Team": 1}},
        {"extraHeaders": False},
        {"config": []},
    ],
)
def test_connection_bodies_the_document_refuses_are_400(api: Api, change: Any) -> None:
    doc = Document(api)
    body = {**FULL_CONNECTION, **change}
    assert not doc.accepts("PUT", CONNECTIONS, body)
    response = api.put(CONNECTIONS, json=body)
    assert response.status_code == 400, response.text
    assert api.get(CONNECTIONS).json()["data"] == []


JUDGE = {
    "name": "helpfulness",
    "prompt": "Question: {{question}}\nAnswer: {{answer}}",
    "outputDefinition": {
        "dataType": "CATEGORICAL",
        "reasoning": {"description": "why"},
        "score": {
            "description": "the verdict",
            "categories": ["good", "bad"],
            "shouldAllowMultipleMatches": False,
        },
    },
    "modelConfig": {"provider": "gateway", "model": "gpt-4o-mini"},
    "mapping": [{"variable": "question", "source": "input", "jsonPath": "$.messages[0]['q']"}],
}
DETERMINISTIC: list[dict[str, Any]] = [
    {"type": "exact_match", "config": {"expected": "4", "caseSensitive": False}},
    {"type": "levenshtein"},
    {"type": "contains", "config": {"value": "four"}},
    {"type": "regex", "config": {"pattern": "^[0-9]+$"}},
    {"type": "json_valid", "config": None},
    {"type": "json_schema", "config": {"schema": {"type": "object"}}},
    {"type": "numeric", "config": {"expected": 4, "tolerance": 0.5, "relative": True}},
]


def test_evaluator_answers_are_as_documented(api: Api) -> None:
    doc = Document(api)
    api.put(CONNECTIONS, json=FULL_CONNECTION)
    judge = doc.call("POST", EVALUATORS, EVALUATORS, JUDGE)
    conforms("unstableEvaluator", judge)
    numeric = {"dataType": "NUMERIC", "reasoning": {"description": "why"},
               "score": {"description": "0 to 1", "minValue": 0, "maxValue": None}}  # fmt: skip
    version_2 = {**JUDGE, "type": "llm_as_judge", "outputDefinition": numeric}
    again = doc.call("POST", EVALUATORS, EVALUATORS, version_2)
    assert (again["id"], again["version"]) == (judge["id"], 2)
    conforms("unstableEvaluator", again)
    for i, kind in enumerate(DETERMINISTIC):
        made = doc.call("POST", EVALUATORS, EVALUATORS, {"name": f"det-{i}", **kind})
        assert made["type"] == kind["type"] and "prompt" not in made
    listed = doc.call("GET", EVALUATORS, EVALUATORS)
    assert listed["meta"]["totalItems"] == 1 + len(DETERMINISTIC)
    one = EVALUATORS + "/{evaluator_id}"
    conforms("unstableEvaluator", doc.call("GET", one, f"{EVALUATORS}/{judge['id']}"))
    gone = doc.call("DELETE", one, f"{EVALUATORS}/{judge['id']}")
    conforms("unstableDeleteEvaluatorResponse", gone)


@pytest.mark.parametrize(
    "body",
    [
        {**JUDGE, "name": ""},
        {**JUDGE, "type": "code"},
        {**JUDGE, "prompt": "  "},
        {**JUDGE, "modelConfig": None},
        {**JUDGE, "outputDefinition": {"dataType": "TEXT"}},
        {**JUDGE, "mapping": [{"variable": "q", "source": "expected_output"}]},
        {**JUDGE, "mapping": [{"variable": "q", "source": "input", "jsonPath": "messages"}]},
        {"name": "c", "type": "contains"},
        {"name": "r", "type": "regex", "config": {"pattern": 1}},
        {"name": "n", "type": "numeric", "config": {"expected": None}},
        {"name": "n", "type": "numeric", "config": {"tolerance": -1}},
        {"name": "e", "type": "exact_match", "config": {"caseSensitive": None}},
    ],
)
def test_evaluator_bodies_the_document_refuses_are_400(api: Api, body: Any) -> None:
    doc = Document(api)
    api.put(CONNECTIONS, json=FULL_CONNECTION)
    assert not doc.accepts("POST", EVALUATORS, body)
    response = api.post(EVALUATORS, json=body)
    assert response.status_code == 400, response.text
    assert api.get(EVALUATORS).json()["data"] == []


RULES = "/api/public/unstable/evaluation-rules"


def test_rule_bodies_are_as_documented(api: Api) -> None:
    doc = Document(api)
    api.post(EVALUATORS, json={"name": "exact", "type": "exact_match"})
    created = {
        "name": "r",
        "evaluators": [
            {"evaluator": {"name": "exact"}, "mapping": [{"variable": "output", "source": "output",
                                                          "jsonPath": "$[*].text"}]}
        ],
        "enabled": True,
        "sampling": 1,
        "filter": None,
    }  # fmt: skip
    rule = doc.call("POST", RULES, RULES, created)
    one = RULES + "/{rule_id}"
    url = f"{RULES}/{rule['id']}"
    changes: list[dict[str, Any]] = [
        {"name": " renamed "},
        {"mapping": None},
        {"target": "observation"},
        {"sampling": 0.5, "enabled": False},
        {"evaluator": {"name": "exact"}},
    ]
    for change in changes:
        doc.call("PATCH", one, url, change)
    refused = [
        ("POST", RULES, {**created, "enabled": None}),
        ("POST", RULES, {**created, "name": " "}),
        ("POST", RULES, {**created, "target": None}),
        ("POST", RULES, {**created, "sampling": 0}),
        ("POST", RULES, {**created, "evaluators": []}),
        ("PATCH", one, {}),
        ("PATCH", one, {"enabled": None}),
        ("PATCH", one, {"name": None}),
        ("PATCH", one, {"sampling": 1.5}),
        ("PATCH", one, {"mapping": [{"variable": "output", "source": "output", "jsonPath": "x"}]}),
    ]
    for method, path, body in refused:
        assert not doc.accepts(method, path, body), body
        target = RULES if path == RULES else url
        response = api.request(method, target, json=body)
        assert response.status_code == 400, (body, response.text)
    listed = api.get(RULES).json()
    assert listed["meta"]["totalItems"] == 1 and listed["data"][0]["name"] == "renamed"
