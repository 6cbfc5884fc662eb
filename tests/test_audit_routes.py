"""The audit log of the routes added with datasets, evaluations, A/B tests, media,
annotation queues and comments: each change a key makes is an entry in
``GET /api/public/audit-log`` naming the action, its target and the key (both
backends)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from ab_seed import definition, ok, prompts_and_score_config
from helpers import event, ingest
from media_files import png
from support import SECRETS, Api, seed_score_config

# The LLM key stored here: the suite's log audit checks it is never logged.
SECRETS.add("sk-audit-secret-5555")


def entries(api: Api, action: str | None = None) -> list[tuple[str, str | None]]:
    """``(action, target)`` of the project's audit log, oldest first."""
    params = {"limit": 100} if action is None else {"limit": 100, "action": action}
    data = api.get("/api/public/audit-log", params=params).json()["data"]
    assert all(e["actor"] == f"key:{api.project.public_key}" for e in data)
    return [(e["action"], e["target"]) for e in reversed(data)]


def details(api: Api, action: str) -> list[dict[str, Any]]:
    data = api.get("/api/public/audit-log", params={"action": action}).json()["data"]
    return [e["detail"] for e in reversed(data)]


def test_dataset_item_and_run_changes_are_audited(api):
    made = ok(api.post("/api/public/v2/datasets", json={"name": "qa"}))
    ok(api.post("/api/public/v2/datasets", json={"name": "qa", "description": "changed"}))
    item = ok(api.post("/api/public/dataset-items", json={"datasetName": "qa", "input": "1+1"}))
    body = {"datasetName": "qa", "id": item["id"], "expectedOutput": "2"}
    ok(api.post("/api/public/dataset-items", json=body))
    ingest(api, event("trace-create", {"id": "t-run", "name": "task"}))
    link = {"runName": "run-1", "datasetItemId": item["id"], "traceId": "t-run"}
    run_item = ok(api.post("/api/public/dataset-run-items", json=link))
    ok(api.post("/api/public/dataset-run-items", json=link))  # the run exists: not again
    ok(api.delete("/api/public/datasets/qa/runs/run-1"))
    ok(api.delete(f"/api/public/dataset-items/{item['id']}"))
    assert entries(api) == [
        ("dataset.create", made["id"]),
        ("dataset.update", made["id"]),
        ("dataset_item.create", item["id"]),
        ("dataset_item.update", item["id"]),
        ("dataset_run.create", run_item["datasetRunId"]),
        ("dataset_run.delete", "run-1"),
        ("dataset_item.delete", item["id"]),
    ]
    assert details(api, "dataset.create") == [{"name": "qa"}]


def test_evaluation_changes_are_audited_without_the_key(api):
    connection = {
        "provider": "judge",
        "adapter": "openai",
        "secretKey": "sk-audit-secret-5555",
        "baseURL": "http://127.0.0.1:9/v1",
    }
    made = ok(api.put("/api/public/llm-connections", json=connection))
    evaluator = ok(
        api.post("/api/public/unstable/evaluators", json={"name": "valid", "type": "json_valid"})
    )
    rule_body = {"name": "r", "evaluator": {"name": "valid"}, "target": "trace", "enabled": True}
    rule = ok(api.post("/api/public/unstable/evaluation-rules", json=rule_body))
    ok(api.patch(f"/api/public/unstable/evaluation-rules/{rule['id']}", json={"enabled": False}))
    ok(api.delete(f"/api/public/unstable/evaluation-rules/{rule['id']}"))
    ok(api.delete(f"/api/public/unstable/evaluators/{evaluator['id']}"))
    ok(api.delete(f"/api/public/llm-connections/{made['id']}"))
    assert entries(api) == [
        ("llm_connection.upsert", made["id"]),
        ("evaluator.create", evaluator["id"]),
        ("evaluation_rule.create", rule["id"]),
        ("evaluation_rule.update", rule["id"]),
        ("evaluation_rule.delete", rule["id"]),
        ("evaluator.delete", evaluator["id"]),
        ("llm_connection.delete", made["id"]),
    ]
    assert details(api, "evaluation_rule.update") == [{"fields": ["enabled"]}]
    log = api.get("/api/public/audit-log").text
    assert "sk-audit-secret" not in log and "5555" not in log


def test_ab_test_lifecycle_is_audited(api):
    prompts_and_score_config(api)
    test = ok(api.post("/api/public/ab-tests", json=definition()))
    name = test["name"]
    ok(api.patch(f"/api/public/ab-tests/{name}", json={"description": "seed guide"}))
    ok(api.post(f"/api/public/ab-tests/{name}/start"))
    ok(api.post(f"/api/public/ab-tests/{name}/stop"))
    ok(api.post(f"/api/public/ab-tests/{name}/conclude", json={"winner": "B"}))
    ok(api.delete(f"/api/public/ab-tests/{name}"))
    assert entries(api, "ab_test") == [
        ("ab_test.create", name),
        ("ab_test.update", name),
        ("ab_test.start", name),
        ("ab_test.stop", name),
        ("ab_test.conclude", name),
        ("ab_test.delete", name),
    ]
    assert details(api, "ab_test.conclude") == [{"winner": "B", "promote": False}]


def test_media_uploads_are_audited_once_per_new_content(api):
    data = png()
    body = {
        "traceId": "t-media",
        "contentType": "image/png",
        "contentLength": len(data),
        "sha256Hash": base64.b64encode(hashlib.sha256(data).digest()).decode(),
        "field": "input",
    }
    first = ok(api.post("/api/public/media", json=body))
    assert first["uploadUrl"]
    put = api.put(first["uploadUrl"], content=data, headers={"Content-Type": "image/png"})
    assert put.status_code == 200, put.text
    again = ok(api.post("/api/public/media", json=body))
    assert again["uploadUrl"] is None  # stored already: nothing new to audit
    assert entries(api) == [("media.upload", first["mediaId"])]
    assert details(api, "media.upload") == [
        {"contentType": "image/png", "contentLength": len(data), "traceId": "t-media"}
    ]


def test_annotation_queue_and_comment_changes_are_audited(api):
    ingest(api, event("trace-create", {"id": "t-q", "name": "chat"}))
    seed_score_config(api.app, api.project.id, "cfg-1", "quality")
    queue = ok(
        api.post(
            "/api/public/annotation-queues", json={"name": "review", "scoreConfigIds": ["cfg-1"]}
        )
    )
    base = f"/api/public/annotation-queues/{queue['id']}"
    item = ok(api.post(base + "/items", json={"objectId": "t-q", "objectType": "TRACE"}))
    ok(api.patch(f"{base}/items/{item['id']}", json={"status": "COMPLETED"}))
    ok(api.post(base + "/assignments", json={"userId": "u-1"}))
    ok(api.request("DELETE", base + "/assignments", json={"userId": "u-1"}))
    ok(api.delete(f"{base}/items/{item['id']}"))
    comment = ok(
        api.post(
            "/api/public/comments",
            json={"objectType": "TRACE", "objectId": "t-q", "content": "looks off"},
        )
    )
    assert entries(api) == [
        ("annotation_queue.create", queue["id"]),
        ("annotation_queue_item.create", item["id"]),
        ("annotation_queue_item.update", item["id"]),
        ("annotation_queue.assign", queue["id"]),
        ("annotation_queue.unassign", queue["id"]),
        ("annotation_queue_item.delete", item["id"]),
        ("comment.create", comment["id"]),
    ]
    assert details(api, "comment.create") == [{"objectType": "TRACE", "objectId": "t-q"}]
