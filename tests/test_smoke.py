from helpers import event, ingest


def test_health_needs_no_auth(api):
    response = api.get("/api/public/health", auth=None)
    assert response.status_code == 200
    assert response.json()["status"] == "OK"


def test_trace_round_trip(api):
    body = ingest(
        api,
        event("trace-create", {"id": "t1", "name": "hello", "userId": "u1", "tags": ["b", "a"]}),
        event("span-create", {"id": "s1", "traceId": "t1", "name": "step"}, at=1),
    )
    assert body["errors"] == []
    trace = api.get("/api/public/traces/t1").json()
    assert trace["name"] == "hello"
    assert trace["tags"] == ["a", "b"]
    assert [o["id"] for o in trace["observations"]] == ["s1"]
