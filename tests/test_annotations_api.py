"""Comments and annotation queues (contract 4.7) through the public API, and with the
official Langfuse 5.x SDK's ``api.comments`` / ``api.annotation_queues`` (its own
virtualenv, ``.venvs/langfuse5``)."""

from __future__ import annotations

import httpx
import pytest

from helpers import event, ingest
from support import SECRETS, run_sdk_script, seed_score_config

SECRETS.add("sk-gateway-key-5678")  # the LLM key lf5_annotations.py stores: never logged


def seed(api) -> None:
    ingest(
        api,
        event("trace-create", {"id": "t-1", "name": "chat", "sessionId": "s-1"}),
        event("span-create", {"id": "o-1", "traceId": "t-1", "name": "step"}),
    )


def test_comments_on_each_object_type_are_listed_and_fetched(api):
    seed(api)
    pid = api.project.id
    made = {}
    for kind, oid in (
        ("TRACE", "t-1"),
        ("OBSERVATION", "o-1"),
        ("SESSION", "s-1"),
        ("PROMPT", "any-prompt-id"),
    ):
        response = api.post(
            "/api/public/comments",
            json={
                "projectId": pid,
                "objectType": kind,
                "objectId": oid,
                "content": f"on {kind}",
                "authorUserId": "u-7",
            },
        )
        assert response.status_code == 200, response.text
        made[kind] = response.json()["id"]
    listed = api.get("/api/public/comments", params={"objectType": "TRACE", "objectId": "t-1"})
    (only,) = listed.json()["data"]
    assert only["id"] == made["TRACE"] and only["content"] == "on TRACE"
    assert only["projectId"] == pid and only["authorUserId"] == "u-7"
    assert listed.json()["meta"] == {"page": 1, "limit": 50, "totalItems": 1, "totalPages": 1}
    everything = api.get("/api/public/comments", params={"limit": 2}).json()
    assert everything["meta"]["totalItems"] == 4 and len(everything["data"]) == 2
    one = api.get(f"/api/public/comments/{made['SESSION']}").json()
    assert (one["objectType"], one["objectId"]) == ("SESSION", "s-1")
    assert api.get("/api/public/comments/nope").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"objectType": "TRACE", "objectId": "missing", "content": "x"}, 404, "missing"),
        ({"objectType": "DATASET", "objectId": "t-1", "content": "x"}, 400, "objectType"),
        ({"objectType": "TRACE", "objectId": "t-1", "content": ""}, 400, "content"),
        ({"objectType": "TRACE", "objectId": "t-1", "content": "x" * 5001}, 400, "5000"),
        (
            {"objectType": "TRACE", "objectId": "t-1", "content": "x", "projectId": "other"},
            403,
            "projectId",
        ),
    ],
)
def test_bad_comments_are_refused_and_nothing_is_written(api, body, status, text):
    seed(api)
    response = api.post("/api/public/comments", json={"projectId": api.project.id, **body})
    assert response.status_code == status, response.text
    assert text in str(response.json())
    assert api.get("/api/public/comments").json()["data"] == []


def test_comment_list_needs_an_object_type_for_an_object_id(api):
    response = api.get("/api/public/comments", params={"objectId": "t-1"})
    assert response.status_code == 400 and "objectType" in response.json()["error"]


def test_queue_items_move_from_pending_to_completed(api):
    seed(api)
    seed_score_config(api.app, api.project.id, "cfg-1", "quality")
    queue = api.post(
        "/api/public/annotation-queues", json={"name": "review", "scoreConfigIds": ["cfg-1"]}
    ).json()
    assert queue["scoreConfigIds"] == ["cfg-1"] and queue["description"] is None
    base = f"/api/public/annotation-queues/{queue['id']}"
    first = api.post(base + "/items", json={"objectId": "t-1", "objectType": "TRACE"}).json()
    assert (first["status"], first["completedAt"]) == ("PENDING", None)
    second = api.post(
        base + "/items",
        json={"objectId": "o-1", "objectType": "OBSERVATION", "status": "COMPLETED"},
    ).json()
    assert second["completedAt"] is not None
    done = api.patch(f"{base}/items/{first['id']}", json={"status": "COMPLETED"}).json()
    assert done["status"] == "COMPLETED" and done["completedAt"]
    again = api.patch(f"{base}/items/{first['id']}", json={"status": "PENDING"}).json()
    assert (again["status"], again["completedAt"]) == ("PENDING", None)
    pending = api.get(base + "/items", params={"status": "PENDING"}).json()
    assert [i["id"] for i in pending["data"]] == [first["id"]]
    assert api.get(base + "/items").json()["meta"]["totalItems"] == 2
    removed = api.delete(f"{base}/items/{second['id']}").json()
    assert removed == {"success": True, "message": "Item successfully deleted"}
    assert api.get(f"{base}/items/{second['id']}").status_code == 404
    assigned = api.post(base + "/assignments", json={"userId": "u-1"}).json()
    assert assigned == {"userId": "u-1", "queueId": queue["id"], "projectId": api.project.id}
    unassign = {"method": "DELETE", "url": base + "/assignments", "json": {"userId": "u-1"}}
    assert api.request(**unassign).json() == {"success": True}
    assert api.request(**unassign).json() == {"success": False}


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("", {"name": "q", "scoreConfigIds": ["ghost"]}, 400),
        ("", {"name": "", "scoreConfigIds": []}, 400),
        ("", {"name": "q"}, 400),
        ("/missing/items", {"objectId": "t-1", "objectType": "TRACE"}, 404),
    ],
)
def test_bad_queue_requests_are_refused(api, path, body, status):
    response = api.post("/api/public/annotation-queues" + path, json=body)
    assert response.status_code == status, response.text
    assert api.get("/api/public/annotation-queues").json()["data"] == []


def test_queue_items_need_a_known_type_and_status(api):
    queue = api.post("/api/public/annotation-queues", json={"name": "q", "scoreConfigIds": []})
    base = f"/api/public/annotation-queues/{queue.json()['id']}/items"
    bad_type = api.post(base, json={"objectId": "x", "objectType": "PROMPT"})
    bad_status = api.post(base, json={"objectId": "x", "objectType": "TRACE", "status": "DONE"})
    assert (bad_type.status_code, bad_status.status_code) == (400, 400)
    assert api.get(base, params={"status": "DONE"}).status_code == 400
    assert api.get(base).json()["data"] == []


@pytest.mark.slow
def test_langfuse5_comments_queues_and_llm_connections(live_server):
    auth = live_server.project.auth
    seeded = httpx.post(
        f"{live_server.url}/api/public/ingestion",
        auth=auth,
        json={"batch": [event("trace-create", {"id": "t-5", "name": "chat"})]},
    )
    assert seeded.status_code == 207
    config = httpx.post(
        f"{live_server.url}/api/public/score-configs",
        auth=auth,
        json={"name": "quality", "dataType": "NUMERIC"},
    ).json()
    result = run_sdk_script(
        "langfuse5", "lf5_annotations.py", live_server, live_server.project.id, "t-5", config["id"]
    )
    comment = result["comment"]
    assert [c[1:] for c in comment["listed"]] == [["TRACE", "looks wrong"]]
    assert comment["total"] == 1
    assert comment["byId"][1:] == ["t-5", "datetime", None]
    assert result["missingStatus"] == 404
    queue = result["queue"]
    assert queue["queue"] == ["review", "d", [config["id"]]]
    assert queue["item"] == ["t-5", "TRACE", "PENDING", None]
    assert queue["done"] == ["COMPLETED", True]
    assert queue["fetched"] == "COMPLETED"
    assert queue["assignment"] == ["user-1", True]
    assert queue["listed"] and queue["got"] and queue["pending"]
    assert queue["unassigned"] and queue["deleted"]
    assert result["connection"] == {
        "provider": "my-gateway",
        "display": "...5678",
        "listed": ["my-gateway"],
    }
