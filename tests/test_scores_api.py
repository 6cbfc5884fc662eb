"""Scores API (contract 4.2): create (single and list form), v1/v2 list and get, delete.

Every test runs on SQLite and PostgreSQL through the in-process app.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from helpers import event, ingest, iso
from support import seed_score_config

# Also on the ClickHouse event store (--db clickhouse).
pytestmark = pytest.mark.clickhouse

# Required properties of the OpenAPI schemas (BaseScore / BaseScoreV1 plus the value
# fields of each data type): generated clients fail to parse a score without them.
BASE_REQUIRED = {
    "id", "name", "source", "timestamp", "createdAt", "updatedAt", "authorUserId",
    "comment", "metadata", "configId", "queueId", "environment", "dataType",
}  # fmt: skip
VALUE_REQUIRED = {
    "NUMERIC": {"value"},
    "BOOLEAN": {"value", "stringValue"},
    "CATEGORICAL": {"value", "stringValue"},
    "TEXT": {"stringValue"},
}


def post_score(api: Any, body: Any, **kwargs: Any) -> Any:
    return api.post("/api/public/scores", json=body, **kwargs)


def create(api: Any, **body: Any) -> str:
    """POST one score, assert 200, return its id."""
    response = post_score(api, body)
    assert response.status_code == 200, response.text
    score_id: str = response.json()["id"]
    return score_id


def get_v2(api: Any, score_id: str) -> dict[str, Any]:
    response = api.get(f"/api/public/v2/scores/{score_id}")
    assert response.status_code == 200, response.text
    score: dict[str, Any] = response.json()
    return score


def list_v2(api: Any, **params: Any) -> dict[str, Any]:
    response = api.get("/api/public/v2/scores", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(page: dict[str, Any]) -> list[str]:
    return [s["id"] for s in page["data"]]


def bearer(api: Any) -> dict[str, Any]:
    """Request kwargs for the Bearer public-key scope (the client's Basic auth turned off)."""
    return {"headers": {"Authorization": f"Bearer {api.project.public_key}"}, "auth": None}


def assert_score_shape(score: dict[str, Any]) -> None:
    missing = (BASE_REQUIRED | VALUE_REQUIRED[score["dataType"]]) - set(score)
    assert not missing, f"score lacks required fields {missing}: {score}"
    assert isinstance(score["metadata"], dict)


# --- create: single object ---------------------------------------------------------


def test_create_numeric_trace_score_and_read_it_back(api):
    score_id = create(
        api,
        id="s-1",
        traceId="t-1",
        name="accuracy",
        value=0.9,
        comment="good",
        metadata={"judge": "gpt"},
        environment="Langfuse-Prod",
        timestamp=iso(seconds=5),
    )
    assert score_id == "s-1"
    score = get_v2(api, "s-1")
    assert_score_shape(score)
    assert score["traceId"] == "t-1"
    assert score["observationId"] is None and score["sessionId"] is None
    assert (score["name"], score["value"], score["dataType"]) == ("accuracy", 0.9, "NUMERIC")
    assert (score["source"], score["comment"]) == ("API", "good")
    assert score["metadata"] == {"judge": "gpt"}
    assert score["environment"] == "prod"
    assert score["timestamp"] == "2024-05-01T10:00:05.000000Z"


@pytest.mark.parametrize("given", [None, ""])
def test_missing_or_empty_id_gets_a_server_uuid(api, given):
    body = {"traceId": "t-1", "name": "n", "value": 1}
    if given is not None:
        body["id"] = given
    score_id = create(api, **body)
    assert len(score_id) == 36 and score_id.count("-") == 4
    assert get_v2(api, score_id)["name"] == "n"


def test_each_data_type_is_stored_with_value_and_string_value(api):
    create(api, id="num", traceId="t", name="n", value=3)
    create(api, id="bool", traceId="t", name="b", value=1, dataType="BOOLEAN")
    create(api, id="bool0", traceId="t", name="b", value=0, dataType="BOOLEAN")
    create(api, id="cat", traceId="t", name="c", value="friendly")
    create(api, id="text", traceId="t", name="x", value="a long remark", dataType="TEXT")
    got = {i: get_v2(api, i) for i in ("num", "bool", "bool0", "cat", "text")}
    for score in got.values():
        assert_score_shape(score)
    assert (got["num"]["dataType"], got["num"]["value"]) == ("NUMERIC", 3)
    assert (got["bool"]["dataType"], got["bool"]["value"]) == ("BOOLEAN", 1)
    assert got["bool"]["stringValue"] == "True"
    assert got["bool0"]["stringValue"] == "False"
    assert (got["cat"]["dataType"], got["cat"]["stringValue"]) == ("CATEGORICAL", "friendly")
    assert got["cat"]["value"] == 0
    assert (got["text"]["dataType"], got["text"]["stringValue"]) == ("TEXT", "a long remark")


def test_targets_trace_observation_session_and_dataset_run(api):
    create(api, id="on-obs", traceId="t", observationId="o", name="n", value=1)
    create(api, id="on-session", sessionId="sess", name="n", value=1)
    create(api, id="on-run", datasetRunId="run", name="n", value=1)
    obs, sess, run = (get_v2(api, i) for i in ("on-obs", "on-session", "on-run"))
    assert (obs["traceId"], obs["observationId"]) == ("t", "o")
    assert (sess["traceId"], sess["sessionId"]) == (None, "sess")
    assert (run["traceId"], run["datasetRunId"]) == (None, "run")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "n", "value": 1}, "exactly one of traceId"),
        ({"traceId": "t", "sessionId": "s", "name": "n", "value": 1}, "exactly one of"),
        ({"observationId": "o", "sessionId": "s", "name": "n", "value": 1}, "requires traceId"),
        ({"traceId": "t", "value": 1}, "name"),
        ({"traceId": "t", "name": "", "value": 1}, "name"),
        ({"traceId": "t", "name": "n"}, "value"),
        ({"traceId": "t", "name": "n", "value": 2, "dataType": "BOOLEAN"}, "BOOLEAN"),
        ({"traceId": "t", "name": "n", "value": "x", "dataType": "NUMERIC"}, "NUMERIC"),
        ({"traceId": "t", "name": "n", "value": 1, "dataType": "CATEGORICAL"}, "CATEGORICAL"),
        ({"traceId": "t", "name": "n", "value": "x" * 501, "dataType": "TEXT"}, "500"),
        ({"traceId": "t", "name": "n", "value": 1, "dataType": "PERCENT"}, "dataType"),
        ({"traceId": "t", "name": "n", "value": 1, "source": "EVAL"}, "EVAL"),
        ({"traceId": "t", "name": "n", "value": 1, "source": "HUMAN"}, "source"),
        ({"traceId": "t", "name": "n", "value": 1, "timestamp": "2024-05-01T10:00:00"}, "offset"),
        ({"traceId": 5, "name": "n", "value": 1}, "traceId"),
        ({"id": "x\r", "traceId": "t", "name": "n", "value": 1}, "id"),
    ],
)
def test_invalid_score_is_400_with_a_message_and_nothing_is_written(api, body, fragment):
    response = post_score(api, body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["message"]
    assert list_v2(api)["meta"]["totalItems"] == 0


def test_annotation_source_is_accepted(api):
    create(api, id="a", traceId="t", name="n", value=1, source="ANNOTATION", queueId="q")
    score = get_v2(api, "a")
    assert (score["source"], score["queueId"]) == ("ANNOTATION", "q")


def test_same_id_updates_the_score_in_place(api):
    create(api, id="s", traceId="t", name="n", value=1, timestamp=iso())
    create(api, id="s", traceId="other", name="n", value=2, comment="revised")
    page = list_v2(api)
    assert ids(page) == ["s"]
    score = page["data"][0]
    assert (score["value"], score["comment"]) == (2, "revised")
    # The trace and the timestamp are fixed by the first write.
    assert score["traceId"] == "t"
    assert score["timestamp"] == "2024-05-01T10:00:00.000000Z"


def test_rest_and_ingestion_store_identical_scores(api):
    body = {"traceId": "t", "name": "tone", "value": "calm", "comment": "c", "metadata": {"a": 1}}
    body["timestamp"] = iso()
    create(api, id="via-rest", **body)
    result = ingest(api, event("score-create", {"id": "via-ingest", **body}))
    assert result["errors"] == []
    rest, ingested = get_v2(api, "via-rest"), get_v2(api, "via-ingest")
    for key in ("id", "createdAt", "updatedAt"):
        rest.pop(key), ingested.pop(key)
    assert rest == ingested


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "malformed"),
        (b"", "empty"),
        (b'"a string"', "score object"),
        (b"[]", "at least one"),
    ],
)
def test_bad_bodies_are_400(api, content, fragment):
    response = api.post(
        "/api/public/scores", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    body = response.json()
    assert fragment in body["message"] + str(body.get("error"))


# --- create: list form (langfuse 5.x SDK) ------------------------------------------


def test_list_of_valid_scores_is_202_accepted(api):
    response = post_score(
        api,
        [
            {"id": "a", "traceId": "t", "name": "x", "value": 1.0},
            {"id": "b", "traceId": "t", "name": "y", "value": "good"},
            {"traceId": "t", "name": "z", "value": 0.0, "dataType": "BOOLEAN"},
        ],
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"message": "Accepted"}
    page = list_v2(api, traceId="t")
    assert sorted(s["name"] for s in page["data"]) == ["x", "y", "z"]


def test_list_with_bad_scores_is_207_and_stores_the_good_ones(api):
    response = post_score(
        api,
        [
            {"id": "good", "traceId": "t", "name": "x", "value": 1},
            {"id": "bad", "traceId": "t", "name": "x", "value": 7, "dataType": "BOOLEAN"},
            "not an object",
            {"id": "eval", "traceId": "t", "name": "x", "value": 1, "source": "EVAL"},
        ],
    )
    assert response.status_code == 207, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 3)
    assert [e["index"] for e in body["errors"]] == [1, 2, 3]
    assert [e["id"] for e in body["errors"]] == ["bad", None, "eval"]
    assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])
    assert ids(list_v2(api)) == ["good"]


# --- auth ----------------------------------------------------------------------------


def test_bearer_public_key_may_create_but_not_read_or_delete(api):
    response = post_score(api, {"id": "pk", "traceId": "t", "name": "n", "value": 1},
                          **bearer(api))  # fmt: skip
    assert response.status_code == 200, response.text
    listed = post_score(api, [{"traceId": "t", "name": "m", "value": 1}], **bearer(api))
    assert listed.status_code == 202
    for method, path in (
        ("GET", "/api/public/v2/scores"),
        ("GET", "/api/public/v2/scores/pk"),
        ("GET", "/api/public/scores"),
        ("GET", "/api/public/scores/pk"),
        ("DELETE", "/api/public/scores/pk"),
    ):
        denied = api.request(method, path, **bearer(api))
        assert denied.status_code == 403, (method, path, denied.text)
        assert "insufficient permissions" in denied.json()["message"]
    assert get_v2(api, "pk")["name"] == "n"


def test_wrong_credentials_are_401(api):
    wrong = base64.b64encode(f"{api.project.public_key}:sk-wrong".encode()).decode()
    response = post_score(
        api,
        {"traceId": "t", "name": "n", "value": 1},
        headers={"Authorization": f"Basic {wrong}"},
        auth=None,
    )
    assert response.status_code == 401
    assert "Invalid credentials" in response.json()["message"]
    unknown = api.post(
        "/api/public/scores",
        json={"traceId": "t", "name": "n", "value": 1},
        headers={"Authorization": "Bearer pk-lf-unknown"},
        auth=None,
    )
    assert unknown.status_code == 401


def test_a_key_never_sees_or_deletes_another_projects_scores(api):
    create(api, id="mine", traceId="t", name="n", value=1)
    other = api.new_project()
    assert api.get("/api/public/v2/scores/mine", auth=other.auth).status_code == 404
    assert api.get("/api/public/scores/mine", auth=other.auth).status_code == 404
    assert api.get("/api/public/v2/scores", auth=other.auth).json()["data"] == []
    assert api.delete("/api/public/scores/mine", auth=other.auth).status_code == 404
    assert get_v2(api, "mine")["id"] == "mine"


# --- lists and filters --------------------------------------------------------------


@pytest.fixture
def scored(api):
    """Two traces and a session with scores of every kind, timestamps 0..7 s after T0."""
    seed_score_config(api.app, api.project.id, "cfg", "quality")
    result = ingest(
        api,
        event("trace-create", {"id": "t1", "userId": "alice", "tags": ["a", "b"],
                               "sessionId": "sess", "environment": "prod"}),
        event("trace-create", {"id": "t2", "userId": "bob", "tags": ["a"]}),
    )  # fmt: skip
    assert result["errors"] == []
    scores = [
        {"id": "s0", "traceId": "t1", "name": "quality", "value": 0.2, "environment": "prod"},
        {"id": "s1", "traceId": "t1", "observationId": "o1", "name": "quality", "value": 0.8,
         "environment": "prod", "configId": "cfg", "metadata": {"judge": "gpt"}},
        {"id": "s2", "traceId": "t2", "name": "quality", "value": 0.5, "queueId": "q1",
         "source": "ANNOTATION"},
        {"id": "s3", "traceId": "t2", "observationId": "o2", "name": "tone", "value": "calm"},
        {"id": "s4", "sessionId": "sess", "name": "session-rating", "value": 4},
        {"id": "s5", "datasetRunId": "run", "name": "quality", "value": 1},
        {"id": "s6", "traceId": "t1", "name": "ok", "value": 1, "dataType": "BOOLEAN",
         "environment": "staging"},
        {"id": "s7", "traceId": "missing-trace", "name": "quality", "value": 0.1},
    ]  # fmt: skip
    # One batch (each score's own POST is tested above): this seeds ~140 tests.
    events = [
        event("score-create", {**b, "timestamp": iso(seconds=at)}) for at, b in enumerate(scores)
    ]
    assert ingest(api, *events)["errors"] == []
    return api


def test_v2_list_is_newest_first_with_trace_data_and_pagination(scored):
    page = list_v2(scored, limit=3)
    assert ids(page) == ["s7", "s6", "s5"]
    assert page["meta"] == {"page": 1, "limit": 3, "totalItems": 8, "totalPages": 3}
    last = list_v2(scored, limit=3, page=3)
    assert ids(last) == ["s1", "s0"]
    everything = {s["id"]: s for s in list_v2(scored)["data"]}
    assert list_v2(scored)["meta"] == {"page": 1, "limit": 50, "totalItems": 8, "totalPages": 1}
    for score in everything.values():
        assert_score_shape(score)
    assert everything["s0"]["trace"] == {
        "userId": "alice", "tags": ["a", "b"], "environment": "prod", "sessionId": "sess",
    }  # fmt: skip
    assert everything["s4"]["trace"] is None  # a session score has no trace
    assert everything["s5"]["trace"] is None
    assert everything["s7"]["trace"] == {
        "userId": None, "tags": [], "environment": None, "sessionId": None,
    }  # fmt: skip


def test_fields_score_leaves_out_the_trace(scored):
    page = list_v2(scored, fields="score")
    assert all("trace" not in s for s in page["data"])
    response = scored.get("/api/public/v2/scores", params={"fields": "score", "userId": "bob"})
    assert response.status_code == 400
    assert "fields" in response.json()["error"]
    # An unknown group is ignored (a newer client may ask for more than we serve).
    assert ids(list_v2(scored, fields="score,trace,everything", limit=1)) == ["s7"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"name": "quality"}, {"s0", "s1", "s2", "s5", "s7"}),
        ({"userId": "alice"}, {"s0", "s1", "s6"}),
        ({"traceTags": "a"}, {"s0", "s1", "s2", "s3", "s6"}),
        ({"traceTags": ["a", "b"]}, {"s0", "s1", "s6"}),
        ({"environment": "prod"}, {"s0", "s1"}),
        ({"environment": ["prod", "staging"]}, {"s0", "s1", "s6"}),
        ({"source": "ANNOTATION"}, {"s2"}),
        ({"operator": ">=", "value": "0.8"}, {"s1", "s4", "s5", "s6"}),
        ({"operator": "<", "value": "0.5", "dataType": "NUMERIC"}, {"s0", "s7"}),
        ({"operator": "!=", "value": "0"}, {"s0", "s1", "s2", "s4", "s5", "s6", "s7"}),
        ({"scoreIds": "s1,s4, s9"}, {"s1", "s4"}),
        ({"configId": "cfg"}, {"s1"}),
        ({"sessionId": "sess"}, {"s4"}),
        ({"datasetRunId": "run"}, {"s5"}),
        ({"traceId": "t2"}, {"s2", "s3"}),
        ({"observationId": "o1,o2"}, {"s1", "s3"}),
        ({"queueId": "q1"}, {"s2"}),
        ({"dataType": "CATEGORICAL"}, {"s3"}),
        ({"dataType": "BOOLEAN"}, {"s6"}),
        ({"fromTimestamp": iso(seconds=2), "toTimestamp": iso(seconds=4)}, {"s2", "s3"}),
        ({"name": "quality", "userId": "bob", "environment": "default"}, {"s2"}),
        (
            {
                "filter": '[{"type": "string", "column": "name", "operator": "starts with",'
                ' "value": "sess"}]'
            },
            {"s4"},
        ),
        (
            {
                "filter": '[{"type": "stringObject", "column": "metadata", "key": "judge",'
                ' "operator": "=", "value": "gpt"}]'
            },
            {"s1"},
        ),
        (
            {
                "filter": '[{"type": "number", "column": "value", "operator": ">", "value": 0.5}]',
                "traceId": "t1",
            },
            {"s1", "s6"},
        ),
        (
            {
                "filter": '[{"type": "arrayOptions", "column": "traceTags", "operator": "any of",'
                ' "value": ["b"]}]'
            },
            {"s0", "s1", "s6"},
        ),
        # A filter on a column replaces the simple parameter on that column.
        (
            {
                "filter": '[{"type":"string","column":"name","operator":"=","value":"tone"}]',
                "name": "quality",
            },
            {"s3"},
        ),
    ],
)
def test_v2_filters(scored, params, expected):
    page = list_v2(scored, **params)
    assert set(ids(page)) == expected
    assert page["meta"]["totalItems"] == len(expected)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "101"},
        {"limit": "0"},
        {"page": "0"},
        {"page": "two"},
        {"page": "1000000001"},  # past the documented maximum (its page was answered)
        {"page": "42847366346841060000000"},
        {"dataType": "PERCENT"},
        {"source": "HUMAN"},
        {"operator": "like", "value": "1"},
        {"operator": ">"},
        {"operator": ">", "value": "high"},
        {"fromTimestamp": "yesterday"},
        {"fromTimestamp": "2024-05-01T10:00:00"},
        {"filter": "not json"},
        {"filter": '{"column": "name"}'},
        {"filter": '[{"type": "string", "column": "secret", "operator": "=", "value": "x"}]'},
        {"filter": '[{"type": "string", "column": "name", "operator": "~", "value": "x"}]'},
        {"filter": '[{"type": "number", "column": "name", "operator": "=", "value": 1}]'},
    ],
)
def test_v2_bad_query_parameters_are_400(scored, params):
    response = scored.get("/api/public/v2/scores", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["message"] == "Invalid request data"
    assert isinstance(body["error"], str) and body["error"]


def test_v1_list_has_trace_scores_only_in_the_v1_shape(scored):
    response = scored.get("/api/public/scores")
    assert response.status_code == 200, response.text
    page = response.json()
    assert set(ids(page)) == {"s0", "s1", "s2", "s3", "s6", "s7"}
    assert page["meta"]["totalItems"] == 6
    for score in page["data"]:
        assert_score_shape(score)
        assert score["traceId"] is not None
        assert "sessionId" not in score and "datasetRunId" not in score
        assert set(score["trace"]) == {"userId", "tags", "environment", "sessionId"}
    filtered = scored.get("/api/public/scores", params={"userId": "bob", "name": "tone"}).json()
    assert ids(filtered) == ["s3"]


def test_v1_get_by_id_serves_trace_scores_only(scored):
    response = scored.get("/api/public/scores/s1")
    assert response.status_code == 200
    score = response.json()
    assert_score_shape(score)
    assert (score["traceId"], score["observationId"]) == ("t1", "o1")
    assert "sessionId" not in score
    assert scored.get("/api/public/scores/s4").status_code == 404  # session score
    assert scored.get("/api/public/scores/nope").status_code == 404


def test_v2_get_by_id_404(api):
    response = api.get("/api/public/v2/scores/nope")
    assert response.status_code == 404
    assert "not found" in response.json()["message"]


# --- delete --------------------------------------------------------------------------


def test_delete_removes_the_score(scored):
    response = scored.delete("/api/public/scores/s1")
    assert response.status_code == 202
    assert response.json()["message"]
    assert scored.get("/api/public/v2/scores/s1").status_code == 404
    assert "s1" not in ids(list_v2(scored))
    again = scored.delete("/api/public/scores/s1")
    assert again.status_code == 404
    # The trace read shows the remaining scores only.
    trace = scored.get("/api/public/traces/t1").json()
    assert sorted(s["id"] for s in trace["scores"]) == ["s0", "s6"]
