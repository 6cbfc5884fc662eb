"""GET /api/public/observations (v1), /observations/{id}, and /v2/observations (cursor)."""

from __future__ import annotations

import base64
import json

import pytest

from helpers import event, ingest, iso

# Also on the ClickHouse event store (--db clickhouse).
pytestmark = pytest.mark.clickhouse

LONG = "x" * 250


def seed(api):
    body = ingest(
        api,
        event("trace-create", {"id": "t1", "name": "chat", "userId": "alice", "sessionId": "s1",
                               "tags": ["b", "a"], "release": "r1", "public": True}),
        event("trace-create", {"id": "t2", "name": "other", "userId": "bob"}),
        event("span-create", {"id": "root", "traceId": "t1", "name": "pipeline",
                              "startTime": iso(seconds=1), "endTime": iso(seconds=5),
                              "input": "plain text", "version": "v1"}),
        event("generation-create", {
            "id": "gen", "traceId": "t1", "parentObservationId": "root", "name": "llm",
            "startTime": iso(seconds=2), "endTime": iso(seconds=4.5),
            "completionStartTime": iso(seconds=2.5), "model": "my-custom-model",
            "modelParameters": {"temperature": 0.2}, "input": {"messages": [{"role": "user"}]},
            "output": {"text": "hi"}, "metadata": {"short": "s", "long": LONG, "num": 7},
            "usageDetails": {"input": 10, "output": 5}, "costDetails": {"input": 0.01,
                                                                        "output": 0.02},
            "environment": "production",
        }),
        event("event-create", {"id": "warn", "traceId": "t1", "parentObservationId": "root",
                               "name": "cache-miss", "startTime": iso(seconds=3),
                               "level": "WARNING"}),
        event("span-create", {"id": "other-root", "traceId": "t2", "name": "pipeline",
                              "startTime": iso(seconds=6), "level": "ERROR",
                              "environment": "staging", "version": "v2"}),
    )  # fmt: skip
    assert body["errors"] == []


def ids(response):
    assert response.status_code == 200, response.text
    return [o["id"] for o in response.json()["data"]]


# --- v1 ------------------------------------------------------------------------------


def test_v1_list_newest_first_with_page_meta(api):
    seed(api)
    response = api.get("/api/public/observations", params={"limit": 3})
    assert ids(response) == ["other-root", "warn", "gen"]
    assert response.json()["meta"] == {"page": 1, "limit": 3, "totalItems": 4, "totalPages": 2}
    assert ids(api.get("/api/public/observations", params={"limit": 3, "page": 2})) == ["root"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"name": "pipeline"}, ["other-root", "root"]),
        ({"userId": "alice"}, ["warn", "gen", "root"]),
        ({"type": "GENERATION"}, ["gen"]),
        ({"traceId": "t2"}, ["other-root"]),
        ({"level": "WARNING"}, ["warn"]),
        ({"parentObservationId": "root"}, ["warn", "gen"]),
        ({"environment": ["production", "staging"]}, ["other-root", "gen"]),
        ({"fromStartTime": iso(seconds=2), "toStartTime": iso(seconds=6)}, ["warn", "gen"]),
        ({"version": "v1"}, ["root"]),
        ({"filter": json.dumps([{"type": "number", "column": "latency", "operator": ">",
                                 "value": 3}])}, ["root"]),
        ({"filter": json.dumps([{"type": "stringObject", "column": "metadata", "key": "short",
                                 "operator": "=", "value": "s"}])}, ["gen"]),
        ({"filter": json.dumps([{"type": "number", "column": "totalCost", "operator": ">",
                                 "value": 0.02}])}, ["gen"]),
    ],
)  # fmt: skip
def test_v1_filters(api, params, expected):
    seed(api)
    assert ids(api.get("/api/public/observations", params=params)) == expected


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"type": "BANANA"}, "type"),
        ({"level": "LOUD"}, "level"),
        ({"limit": 101}, "limit"),
        ({"fromStartTime": "nope"}, "fromStartTime"),
        ({"filter": json.dumps([{"type": "string", "column": "colour", "operator": "=",
                                 "value": "x"}])}, "Unknown filter column"),
    ],
)  # fmt: skip
def test_v1_bad_parameters(api, params, fragment):
    response = api.get("/api/public/observations", params=params)
    assert response.status_code == 400
    assert fragment in json.dumps(response.json())


def test_v1_get_one(api):
    seed(api)
    gen = api.get("/api/public/observations/gen").json()
    assert gen["traceId"] == "t1" and gen["type"] == "GENERATION"
    assert gen["input"] == {"messages": [{"role": "user"}]}
    assert gen["usage"]["input"] == 10 and gen["usage"]["output"] == 5
    assert gen["calculatedTotalCost"] == pytest.approx(0.03)
    assert gen["latency"] == pytest.approx(2.5)
    assert gen["timeToFirstToken"] == pytest.approx(0.5)
    assert api.get("/api/public/observations/missing").status_code == 404


def test_another_project_sees_no_observations(api):
    seed(api)
    other = api.new_project()
    assert api.get("/api/public/observations/gen", auth=other.auth).status_code == 404
    assert ids(api.get("/api/public/observations", auth=other.auth)) == []
    assert ids(api.get("/api/public/v2/observations", auth=other.auth)) == []


# --- v2 ------------------------------------------------------------------------------

CORE = {"id", "traceId", "startTime", "endTime", "projectId", "parentObservationId", "type"}
ALWAYS = {"modelId", "inputPrice", "outputPrice", "totalPrice"}
BASIC = {
    "name", "level", "statusMessage", "version", "environment", "bookmarked", "public",
    "userId", "sessionId", "isRootObservation",
}  # fmt: skip


def v2(api, **params):
    response = api.get("/api/public/v2/observations", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_v2_default_groups_are_core_and_basic(api):
    seed(api)
    body = v2(api)
    assert [o["id"] for o in body["data"]] == ["other-root", "warn", "gen", "root"]
    assert "cursor" not in body["meta"]
    gen = body["data"][2]
    assert set(gen) == CORE | ALWAYS | BASIC
    assert gen["userId"] == "alice" and gen["sessionId"] == "s1" and gen["public"] is True
    assert gen["isRootObservation"] is False and body["data"][3]["isRootObservation"] is True
    assert gen["modelId"] is None and gen["environment"] == "production"


def test_v2_an_observation_without_a_stored_trace_has_no_trace_columns(api):
    """An observation naming a trace that was never stored is listed with its trace's
    columns empty (as the join gives them; ClickHouse reads the page's traces apart)."""
    seed(api)
    ingest(api, event("span-create", {"id": "lone", "traceId": "ghost", "name": "x"}))
    body = v2(api, fields="core,basic,trace_context")
    lone = next(o for o in body["data"] if o["id"] == "lone")
    assert lone["traceId"] == "ghost"
    assert lone["userId"] is None and lone["sessionId"] is None and lone["public"] is None
    assert lone.get("traceName") is None and lone.get("tags") in (None, [])
    others = {o["id"]: o for o in body["data"]}
    assert others["gen"]["userId"] == "alice" and others["other-root"]["userId"] == "bob"


def test_v2_field_groups(api):
    seed(api)
    fields = "core,io,metadata,model,usage,prompt,metrics,trace_context,time"
    gen = v2(api, fields=fields, traceId="t1", type="GENERATION")["data"][0]
    # IO comes back as the raw (JSON-encoded) text.
    assert json.loads(gen["input"]) == {"messages": [{"role": "user"}]}
    assert json.loads(gen["output"]) == {"text": "hi"}
    assert gen["metadata"]["short"] == "s"
    assert gen["metadata"]["long"] == LONG[:200]
    assert gen["metadata"]["num"] == "7"
    assert gen["providedModelName"] == "my-custom-model"
    assert gen["modelParameters"] == {"temperature": 0.2}
    assert gen["usageDetails"]["input"] == 10
    assert gen["costDetails"]["output"] == pytest.approx(0.02)
    assert gen["totalCost"] == pytest.approx(0.03)
    assert {"promptId", "promptName", "promptVersion"} <= set(gen)
    assert gen["latency"] == pytest.approx(2.5)
    assert gen["timeToFirstToken"] == pytest.approx(0.5)
    assert gen["tags"] == ["a", "b"] and gen["release"] == "r1" and gen["traceName"] == "chat"
    assert gen["completionStartTime"] == "2024-05-01T10:00:02.500000Z"
    assert "name" not in gen  # basic was not asked for
    root = v2(api, fields="io", traceId="t1", name="pipeline")["data"][0]
    assert root["input"] == "plain text" and root["output"] is None
    expanded = v2(api, fields="metadata", type="GENERATION", expandMetadata="long")["data"][0]
    assert expanded["metadata"]["long"] == LONG


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"sessionId": "s1"}, ["warn", "gen", "root"]),
        ({"userId": "bob"}, ["other-root"]),
        ({"isRootObservation": "true"}, ["other-root", "root"]),
        ({"isRootObservation": "false"}, ["warn", "gen"]),
        ({"parentObservationId": ""}, ["other-root", "root"]),
        ({"parentObservationId": "root", "level": "WARNING"}, ["warn"]),
        ({"environment": "staging"}, ["other-root"]),
        ({"fromStartTime": iso(seconds=3)}, ["other-root", "warn"]),
        ({"filter": json.dumps([{"type": "string", "column": "traceName", "operator": "=",
                                 "value": "other"}])}, ["other-root"]),
        ({"filter": json.dumps([{"type": "arrayOptions", "column": "tags",
                                 "operator": "all of", "value": ["a", "b"]}])},
         ["warn", "gen", "root"]),
    ],
)  # fmt: skip
def test_v2_filters(api, params, expected):
    seed(api)
    assert [o["id"] for o in v2(api, **params)["data"]] == expected


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"parseIoAsJson": "true"}, "parseIoAsJson"),
        ({"limit": 1001}, "limit"),
        ({"limit": 0}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": base64.b64encode(b'{"a": 1}').decode()}, "cursor"),
        ({"isRootObservation": "maybe"}, "isRootObservation"),
        ({"type": "BANANA"}, "type"),
    ],
)
def test_v2_bad_parameters(api, params, fragment):
    response = api.get("/api/public/v2/observations", params=params)
    assert response.status_code == 400
    assert fragment in json.dumps(response.json())


def test_v2_parse_io_as_json_false_is_accepted(api):
    seed(api)
    assert len(v2(api, parseIoAsJson="false")["data"]) == 4


def test_v2_cursor_walks_every_observation_exactly_once(api):
    # 25 observations; groups of five share a start time so the id breaks ties.
    events = [
        event(
            "span-create",
            {"id": f"o{i:02d}", "traceId": f"t{i % 3}", "startTime": iso(seconds=i // 5)},
        )
        for i in range(25)
    ]
    ingest(api, *events)
    expected = sorted((f"o{i:02d}" for i in range(25)), key=lambda o: (int(o[1:]) // 5, o))
    expected.reverse()
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        body = v2(api, **params)
        seen += [o["id"] for o in body["data"]]
        pages += 1
        cursor = body["meta"].get("cursor")
        if not cursor:
            break
    assert seen == expected
    assert pages == 4
    # A filter applies on every page of the walk.
    seen = []
    cursor = None
    while True:
        params = {"limit": 3, "traceId": "t1", **({"cursor": cursor} if cursor else {})}
        body = v2(api, **params)
        seen += [o["id"] for o in body["data"]]
        cursor = body["meta"].get("cursor")
        if not cursor:
            break
    assert seen == [o for o in expected if int(o[1:]) % 3 == 1]


def test_v2_exact_page_leaves_no_cursor(api):
    ingest(api, *(event("span-create", {"id": f"s{i}", "traceId": "t"}) for i in range(4)))
    body = v2(api, limit=4)
    assert len(body["data"]) == 4 and "cursor" not in body["meta"]
    first = v2(api, limit=3)
    rest = v2(api, limit=3, cursor=first["meta"]["cursor"])
    assert len(rest["data"]) == 1 and "cursor" not in rest["meta"]


def test_parent_filter_finds_children_before_and_after_the_parent_is_stored(api):
    """Children are looked up in their parent's trace; a parent that has not arrived
    yet (OTLP parents end, and are exported, after their children) still matches."""
    ingest(
        api,
        event("span-create", {"id": "c1", "traceId": "tp", "parentObservationId": "p"}, at=1),
        event("span-create", {"id": "c2", "traceId": "tp", "parentObservationId": "p"}, at=2),
        event("span-create", {"id": "x", "traceId": "tq", "parentObservationId": "q"}, at=3),
    )
    for path in ("/api/public/observations", "/api/public/v2/observations"):
        got = api.get(path, params={"parentObservationId": "p"}).json()["data"]
        assert sorted(o["id"] for o in got) == ["c1", "c2"], path
    ingest(api, event("span-create", {"id": "p", "traceId": "tp"}, at=0))
    for path in ("/api/public/observations", "/api/public/v2/observations"):
        got = api.get(path, params={"parentObservationId": "p"}).json()["data"]
        assert sorted(o["id"] for o in got) == ["c1", "c2"], path
    assert (
        api.get("/api/public/observations", params={"parentObservationId": "zzz"}).json()["data"]
        == []
    )
