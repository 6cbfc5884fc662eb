"""GET /api/public/sessions and /api/public/sessions/{sessionId}."""

from __future__ import annotations

import json

import pytest

from helpers import event, ingest, iso

pytestmark = pytest.mark.clickhouse


def test_session_with_its_traces_oldest_first(api):
    ingest(
        api,
        event("trace-create", {"id": "late", "sessionId": "s1", "timestamp": iso(seconds=50),
                               "name": "second turn"}),
        event("trace-create", {"id": "early", "sessionId": "s1", "timestamp": iso(seconds=5),
                               "userId": "u", "tags": ["t"]}),
        event("trace-create", {"id": "elsewhere", "sessionId": "s2"}),
        event("trace-create", {"id": "alone"}),
    )  # fmt: skip
    body = api.get("/api/public/sessions/s1").json()
    assert body["id"] == "s1" and body["projectId"] == api.project.id
    assert body["environment"] == "default" and body["createdAt"].endswith("Z")
    assert [t["id"] for t in body["traces"]] == ["early", "late"]
    early = body["traces"][0]
    assert early["userId"] == "u" and early["tags"] == ["t"] and early["sessionId"] == "s1"
    assert early["timestamp"] == iso(seconds=5).replace("Z", ".000000Z")


def test_missing_session_is_404(api):
    response = api.get("/api/public/sessions/nope")
    assert response.status_code == 404
    assert response.json()["message"]


def test_list_sessions_newest_first_with_pages(api):
    for name in ("s1", "s2", "s3"):
        # distinct creation times: each batch is committed before the next is sent, and
        # the server stamps with microseconds
        ingest(api, event("trace-create", {"id": f"t-{name}", "sessionId": name}))
    first = api.get("/api/public/sessions", params={"limit": 2}).json()
    assert [s["id"] for s in first["data"]] == ["s3", "s2"]
    assert first["meta"] == {"page": 1, "limit": 2, "totalItems": 3, "totalPages": 2}
    second = api.get("/api/public/sessions", params={"limit": 2, "page": 2}).json()
    assert [s["id"] for s in second["data"]] == ["s1"]
    for key in ("id", "createdAt", "projectId", "environment"):
        assert key in second["data"][0]


def test_list_sessions_by_environment_and_time(api):
    ingest(
        api,
        event("trace-create", {"id": "a", "sessionId": "prod-s", "environment": "production"}),
        event("trace-create", {"id": "b", "sessionId": "dev-s", "environment": "dev"}),
    )
    only = api.get("/api/public/sessions", params={"environment": "production"}).json()
    assert [s["id"] for s in only["data"]] == ["prod-s"]
    both = api.get("/api/public/sessions", params={"environment": ["production", "dev"]}).json()
    assert sorted(s["id"] for s in both["data"]) == ["dev-s", "prod-s"]
    created = only["data"][0]["createdAt"]
    at = api.get("/api/public/sessions", params={"fromTimestamp": created}).json()
    assert "prod-s" in [s["id"] for s in at["data"]]
    before = api.get("/api/public/sessions", params={"toTimestamp": created}).json()
    assert "prod-s" not in [s["id"] for s in before["data"]]
    future = api.get("/api/public/sessions", params={"fromTimestamp": "2999-01-01T00:00:00Z"})
    assert future.json()["data"] == [] and future.json()["meta"]["totalPages"] == 0


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"limit": 101}, "limit"),
        ({"page": 0}, "page"),
        ({"fromTimestamp": "soon"}, "fromTimestamp"),
    ],
)
def test_bad_parameters_are_400(api, params, fragment):
    response = api.get("/api/public/sessions", params=params)
    assert response.status_code == 400
    assert fragment in json.dumps(response.json())


def test_another_project_sees_no_sessions(api):
    ingest(api, event("trace-create", {"id": "t", "sessionId": "secret"}))
    other = api.new_project()
    assert api.get("/api/public/sessions/secret", auth=other.auth).status_code == 404
    listed = api.get("/api/public/sessions", auth=other.auth).json()
    assert listed["data"] == [] and listed["meta"]["totalItems"] == 0
