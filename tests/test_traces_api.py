"""GET/DELETE /api/public/traces: lists with filters, order, pages, field groups; deletes."""

from __future__ import annotations

import json
import math
from urllib.parse import quote

import pytest

from helpers import event, ingest, iso

# Also on the ClickHouse event store (--db clickhouse).
pytestmark = pytest.mark.clickhouse


def seed(api):
    """Four traces of different users, tags, times and environments, with children."""
    body = ingest(
        api,
        event(
            "trace-create",
            {
                "id": "t1", "name": "chat", "userId": "alice", "sessionId": "s1",
                "tags": ["prod", "a"], "environment": "production", "release": "r1",
                "version": "v1", "timestamp": iso(seconds=10),
                "metadata": {"tier": "gold", "n": 5}, "input": {"q": "hi"}, "output": "hello",
            },
        ),
        event(
            "trace-create",
            {
                "id": "t2", "name": "chat-v2", "userId": "bob", "sessionId": "s1",
                "tags": ["prod"], "environment": "staging", "release": "r2", "version": "v1",
                "timestamp": iso(seconds=20), "metadata": {"tier": "silver"},
            },
        ),
        event(
            "trace-create",
            {
                "id": "t3", "name": "search", "userId": "alice", "tags": ["b"],
                "timestamp": iso(seconds=30), "metadata": {"tier": "gold"},
            },
        ),
        event(
            "trace-create",
            {"id": "t4", "name": "embed", "environment": "production", "release": "r1",
             "timestamp": iso(seconds=40)},
        ),
        event(
            "span-create",
            {"id": "o1", "traceId": "t1", "startTime": iso(seconds=10), "endTime": iso(seconds=12)},
        ),
        event(
            "generation-create",
            {
                "id": "g1", "traceId": "t1", "parentObservationId": "o1",
                "startTime": iso(seconds=10.5), "endTime": iso(seconds=11.5),
                "costDetails": {"input": 0.1, "output": 0.15},
            },
        ),
        event(
            "generation-create",
            {
                "id": "g2", "traceId": "t2", "startTime": iso(seconds=20),
                "endTime": iso(seconds=21), "costDetails": {"total": 1.0}, "level": "ERROR",
            },
        ),
        event("event-create", {"id": "e3", "traceId": "t3", "startTime": iso(seconds=30),
                               "level": "WARNING"}),
        event("score-create", {"id": "sc1", "traceId": "t1", "name": "quality", "value": 1}),
        event("score-create", {"id": "sc2", "traceId": "t1", "observationId": "g1",
                               "name": "quality", "value": 0.5}),
        event("score-create", {"id": "sc3", "traceId": "t3", "name": "quality", "value": 0}),
    )  # fmt: skip
    assert body["errors"] == []


def ids(response):
    assert response.status_code == 200, response.text
    return [t["id"] for t in response.json()["data"]]


def flt(*conditions):
    return {"filter": json.dumps(list(conditions))}


def test_default_list_is_newest_first_with_details(api):
    seed(api)
    response = api.get("/api/public/traces")
    assert ids(response) == ["t4", "t3", "t2", "t1"]
    body = response.json()
    assert body["meta"] == {"page": 1, "limit": 50, "totalItems": 4, "totalPages": 1}
    t1 = body["data"][3]
    assert t1["htmlPath"] == f"/project/{api.project.id}/traces/t1"
    assert t1["observations"] == ["o1", "g1"]
    assert t1["scores"] == ["sc1", "sc2"]
    assert t1["latency"] == pytest.approx(2.0)
    assert t1["totalCost"] == pytest.approx(0.25)
    assert t1["input"] == {"q": "hi"} and t1["output"] == "hello"
    assert t1["metadata"] == {"tier": "gold", "n": 5}
    assert t1["tags"] == ["a", "prod"]
    for key in ("name", "sessionId", "release", "version", "userId", "public", "environment"):
        assert key in t1
    t4 = body["data"][0]
    assert (t4["observations"], t4["scores"], t4["latency"], t4["totalCost"]) == ([], [], 0, 0)


def test_pages_and_meta(api):
    seed(api)
    first = api.get("/api/public/traces", params={"limit": 3})
    assert ids(first) == ["t4", "t3", "t2"]
    assert first.json()["meta"] == {"page": 1, "limit": 3, "totalItems": 4, "totalPages": 2}
    second = api.get("/api/public/traces", params={"limit": 3, "page": 2})
    assert ids(second) == ["t1"]
    beyond = api.get("/api/public/traces", params={"limit": 3, "page": 5})
    assert ids(beyond) == []
    assert beyond.json()["meta"]["totalItems"] == 4


def test_many_traces_walk_every_page_once(api):
    batch = [
        event("trace-create", {"id": f"m{i:03d}", "timestamp": iso(seconds=i)}) for i in range(120)
    ]
    ingest(api, *batch)
    seen = []
    page = 1
    while True:
        response = api.get("/api/public/traces", params={"limit": 100, "page": page})
        meta = response.json()["meta"]
        assert meta["totalPages"] == math.ceil(120 / 100)
        got = ids(response)
        if not got:
            break
        seen += got
        page += 1
    assert seen == [f"m{i:03d}" for i in reversed(range(120))]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"userId": "alice"}, ["t3", "t1"]),
        ({"name": "chat"}, ["t1"]),
        ({"sessionId": "s1"}, ["t2", "t1"]),
        ({"release": "r1"}, ["t4", "t1"]),
        ({"version": "v1"}, ["t2", "t1"]),
        ({"tags": "prod"}, ["t2", "t1"]),
        ({"tags": ["prod", "a"]}, ["t1"]),
        ({"tags": ["prod", "b"]}, []),
        ({"environment": "production"}, ["t4", "t1"]),
        ({"environment": ["staging", "default"]}, ["t3", "t2"]),
        ({"fromTimestamp": iso(seconds=20)}, ["t4", "t3", "t2"]),
        ({"toTimestamp": iso(seconds=30)}, ["t2", "t1"]),
        ({"fromTimestamp": iso(seconds=20), "toTimestamp": "2024-05-01T12:00:30+02:00"}, ["t2"]),
        ({"userId": "alice", "environment": "production"}, ["t1"]),
    ],
)
def test_simple_filters(api, params, expected):
    seed(api)
    assert ids(api.get("/api/public/traces", params=params)) == expected


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("timestamp.asc", ["t1", "t2", "t3", "t4"]),
        ("timestamp.desc", ["t4", "t3", "t2", "t1"]),
        ("name.asc", ["t1", "t2", "t4", "t3"]),
        ("id.desc", ["t4", "t3", "t2", "t1"]),
        # Traces without a user come last in both directions, on both backends.
        ("userId.asc", ["t1", "t3", "t2", "t4"]),
        ("userId.DESC", ["t2", "t3", "t1", "t4"]),
    ],
)
def test_order_by(api, order, expected):
    seed(api)
    assert ids(api.get("/api/public/traces", params={"orderBy": order})) == expected


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"page": 0}, "page"),
        ({"limit": "many"}, None),
        ({"orderBy": "timestamp"}, "orderBy"),
        ({"orderBy": "cost.desc"}, "orderBy"),
        ({"orderBy": "timestamp.sideways"}, "orderBy"),
        ({"fromTimestamp": "yesterday"}, "fromTimestamp"),
        ({"toTimestamp": "2024-05-01T10:00:00"}, "offset"),
        ({"filter": "not json"}, "Invalid JSON"),
        ({"filter": json.dumps([{"type": "string", "column": "colour", "operator": "=",
                                 "value": "red"}])}, "Unknown filter column 'colour'"),
        ({"filter": json.dumps([{"type": "string", "column": "name", "operator": "like",
                                 "value": "x"}])}, "Operator 'like'"),
    ],
)  # fmt: skip
def test_bad_parameters_are_400_with_a_message(api, params, fragment):
    seed(api)
    response = api.get("/api/public/traces", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["message"]
    if fragment is not None:
        assert fragment in json.dumps(body)


def test_filter_json(api):
    seed(api)
    get = lambda *c: ids(api.get("/api/public/traces", params=flt(*c)))  # noqa: E731
    assert get({"type": "string", "column": "userId", "operator": "=", "value": "alice"}) == [
        "t3",
        "t1",
    ]
    assert get(
        {"type": "arrayOptions", "column": "tags", "operator": "all of", "value": ["prod", "a"]}
    ) == ["t1"]
    assert get(
        {"type": "stringObject", "column": "metadata", "key": "tier", "operator": "=",
         "value": "gold"}
    ) == ["t3", "t1"]  # fmt: skip
    assert get(
        {"type": "datetime", "column": "timestamp", "operator": ">", "value": iso(seconds=30)}
    ) == ["t4"]
    assert get({"type": "number", "column": "totalCost", "operator": ">=", "value": 0.2}) == [
        "t2",
        "t1",
    ]
    assert get({"type": "number", "column": "latency", "operator": ">", "value": 1.5}) == ["t1"]
    assert get({"type": "string", "column": "level", "operator": "=", "value": "ERROR"}) == ["t2"]
    assert get({"type": "number", "column": "warningCount", "operator": "=", "value": 1}) == ["t3"]
    assert get({"type": "null", "column": "sessionId", "operator": "is null"}) == ["t4", "t3"]
    assert get({"type": "boolean", "column": "bookmarked", "operator": "=", "value": False}) == [
        "t4",
        "t3",
        "t2",
        "t1",
    ]
    # Several conditions all apply.
    assert get(
        {"type": "stringOptions", "column": "environment", "operator": "any of",
         "value": ["production", "staging"]},
        {"type": "string", "column": "name", "operator": "starts with", "value": "chat"},
    ) == ["t2", "t1"]  # fmt: skip


def test_filter_overrides_the_simple_parameter_on_the_same_column(api):
    seed(api)
    params = {
        "userId": "alice",
        **flt({"type": "string", "column": "userId", "operator": "=", "value": "bob"}),
    }
    assert ids(api.get("/api/public/traces", params=params)) == ["t2"]
    # ...but simple parameters on other columns still apply.
    params["environment"] = "production"
    assert ids(api.get("/api/public/traces", params=params)) == []


def test_field_groups(api):
    seed(api)
    response = api.get("/api/public/traces", params={"fields": "core", "userId": "alice"})
    t1 = response.json()["data"][1]
    assert t1["id"] == "t1" and t1["name"] == "chat" and t1["tags"] == ["a", "prod"]
    assert (t1["observations"], t1["scores"]) == ([], [])
    assert (t1["latency"], t1["totalCost"]) == (-1, -1)
    assert (t1["input"], t1["output"], t1["metadata"]) == (None, None, None)
    response = api.get("/api/public/traces", params={"fields": "core,metrics,scores"})
    t1 = response.json()["data"][3]
    assert t1["latency"] == pytest.approx(2.0) and t1["scores"] == ["sc1", "sc2"]
    assert t1["observations"] == [] and t1["input"] is None


def test_get_one_with_field_groups(api):
    seed(api)
    full = api.get("/api/public/traces/t1").json()
    assert [o["id"] for o in full["observations"]] == ["o1", "g1"]
    assert [s["id"] for s in full["scores"]] == ["sc1", "sc2"]
    assert full["latency"] == pytest.approx(2.0) and full["totalCost"] == pytest.approx(0.25)
    slim = api.get("/api/public/traces/t1", params={"fields": "core,io"}).json()
    assert slim["observations"] == [] and slim["scores"] == []
    assert slim["latency"] == -1 and slim["input"] == {"q": "hi"}


def test_another_project_sees_nothing(api):
    seed(api)
    other = api.new_project()
    response = api.get("/api/public/traces", auth=other.auth)
    assert ids(response) == []
    assert response.json()["meta"]["totalItems"] == 0
    assert api.get("/api/public/traces/t1", auth=other.auth).status_code == 404


def test_delete_one_trace_removes_its_observations_and_scores(api):
    seed(api)
    response = api.delete("/api/public/traces/t1")
    assert response.status_code == 200
    assert response.json() == {"message": "Trace deleted successfully"}
    assert api.get("/api/public/traces/t1").status_code == 404
    for obs in ("o1", "g1"):
        assert api.get(f"/api/public/observations/{obs}").status_code == 404
    assert ids(api.get("/api/public/traces")) == ["t4", "t3", "t2"]
    # Others' children are untouched.
    t3 = api.get("/api/public/traces/t3").json()
    assert [s["id"] for s in t3["scores"]] == ["sc3"]
    assert [o["id"] for o in t3["observations"]] == ["e3"]


def test_delete_many(api):
    seed(api)
    response = api.request("DELETE", "/api/public/traces", json={"traceIds": ["t1", "t3", "nope"]})
    assert response.status_code == 200
    assert response.json() == {"message": "Traces deleted successfully"}
    assert ids(api.get("/api/public/traces")) == ["t4", "t2"]
    assert api.get("/api/public/observations", params={"traceId": "t3"}).json()["data"] == []


@pytest.mark.parametrize(
    "body",
    [{}, {"traceIds": []}, {"traceIds": "t1"}, {"traceIds": [1]},
     {"traceIds": [f"x{i}" for i in range(1001)]}],
)  # fmt: skip
def test_delete_many_rejects_bad_bodies(api, body):
    seed(api)
    response = api.request("DELETE", "/api/public/traces", json=body)
    assert response.status_code == 400
    assert "traceIds" in response.json()["error"]
    assert len(ids(api.get("/api/public/traces"))) == 4


def test_deleting_another_projects_trace_does_not_touch_it(api):
    seed(api)
    other = api.new_project()
    assert api.delete("/api/public/traces/t1", auth=other.auth).status_code == 200
    response = api.request(
        "DELETE", "/api/public/traces", json={"traceIds": ["t2", "t3"]}, auth=other.auth
    )
    assert response.status_code == 200
    assert ids(api.get("/api/public/traces")) == ["t4", "t3", "t2", "t1"]
    assert len(api.get("/api/public/traces/t1").json()["observations"]) == 2


def test_trace_ids_with_slashes(api):
    ingest(api, event("trace-create", {"id": "a/b", "name": "slashed"}))
    assert api.get("/api/public/traces/a/b").json()["name"] == "slashed"
    assert api.delete("/api/public/traces/a/b").status_code == 200
    assert api.get("/api/public/traces/a/b").status_code == 404


def test_ids_with_line_feeds_are_read_by_id(api):
    # A client may choose any id; one holding a line feed is stored, so it is read back
    # (and deleted) by id like any other, not a 404 of the route's pattern.
    trace, obs, score = "two\nlines/x", "obs\nid", "score\nid"
    ingest(
        api,
        event("trace-create", {"id": trace, "name": "lf", "sessionId": "s\n1"}),
        event("span-create", {"id": obs, "traceId": trace, "name": "step"}),
        event("score-create", {"id": score, "traceId": trace, "name": "q", "value": 1}),
    )
    assert api.get(f"/api/public/traces/{quote(trace, safe='')}").json()["name"] == "lf"
    assert api.get(f"/api/public/observations/{quote(obs, safe='')}").json()["name"] == "step"
    assert api.get(f"/api/public/scores/{quote(score, safe='')}").json()["traceId"] == trace
    session = api.get(f"/api/public/sessions/{quote('s' + chr(10) + '1', safe='')}").json()
    assert [t["id"] for t in session["traces"]] == [trace]
    assert api.delete(f"/api/public/traces/{quote(trace, safe='')}").status_code == 200
    assert api.get(f"/api/public/traces/{quote(trace, safe='')}").status_code == 404


def test_live_server_lists_traces(live_server):
    import httpx

    with httpx.Client(base_url=live_server.url, auth=live_server.project.auth) as client:
        client.post(
            "/api/public/ingestion",
            json={"batch": [event("trace-create", {"id": "live", "userId": "u"})]},
        ).raise_for_status()
        response = client.get("/api/public/traces", params={"userId": "u"})
    assert response.status_code == 200
    assert [t["id"] for t in response.json()["data"]] == ["live"]
