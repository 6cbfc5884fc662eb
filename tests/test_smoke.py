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


def test_string_and_object_io_round_trip(api):
    ingest(
        api,
        event("trace-create", {"id": "t2", "input": "안녕하세요", "output": {"answer": [1, 2]}}),
        event("span-create", {"id": "s2", "traceId": "t2", "input": "plain", "output": 42}, at=1),
    )
    trace = api.get("/api/public/traces/t2").json()
    assert trace["input"] == "안녕하세요"
    assert trace["output"] == {"answer": [1, 2]}
    span = trace["observations"][0]
    assert (span["input"], span["output"]) == ("plain", 42)
