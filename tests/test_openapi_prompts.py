"""The OpenAPI document of the prompt, comment and media routes says what they answer:
real answers (a text prompt, a chat prompt with a placeholder, a resolved reference,
labels moved, the list, the per-version metrics, comments, a media record) are valid
against the document's schema of their operation, and against Langfuse's where it has
one; bodies the document allows are taken (an integral ``781.0`` is an integer to JSON
Schema), and integers the database cannot hold are a 400, nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from helpers import event, ingest, iso
from lanterna.server.app import create_app
from lanterna.server.settings import Settings
from media_files import media_id, png, sha256_b64
from spec_schemas import conforms
from support import Api


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return create_app(Settings(data_dir=str(tmp_path_factory.mktemp("doc")))).openapi()


def documented(document: dict[str, Any], method: str, path: str, body: Any) -> None:
    """Fail unless ``body`` is valid against the documented 200 answer of the operation."""
    answer = document["paths"][path][method]["responses"]["200"]
    schema = answer["content"]["application/json"]["schema"]
    assert schema, f"{method.upper()} {path}: no schema"
    rooted = {**schema, "components": document["components"]}
    jsonschema.Draft202012Validator(rooted).validate(body)


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


PROMPT = "/api/public/v2/prompts/{name}"


def test_prompt_answers_are_as_documented(api: Api, document: dict[str, Any]) -> None:
    base = ok(api.post("/api/public/v2/prompts", json={"name": "base", "prompt": "Be brief."}))
    documented(document, "post", "/api/public/v2/prompts", base)
    conforms("Prompt", base)
    chat_body = {
        "name": "folder/chat",
        "type": "chat",
        "prompt": [
            {"role": "system", "content": "@@@langfusePrompt:name=base|label=production@@@"},
            {"type": "placeholder", "name": "history"},
            {"role": "user", "content": "{{question}}", "type": "chatmessage"},
        ],
        "config": {"temperature": 0.2},
        "labels": ["staging"],
        "tags": ["support"],
        "commitMessage": "first",
    }
    created = ok(api.post("/api/public/v2/prompts", json=chat_body))
    documented(document, "post", "/api/public/v2/prompts", created)
    conforms("Prompt", created)
    assert created["prompt"][1] == {"type": "placeholder", "name": "history"}

    resolved = ok(api.get("/api/public/v2/prompts/folder%2Fchat?label=staging"))
    documented(document, "get", PROMPT, resolved)
    conforms("Prompt", resolved)
    assert resolved["prompt"][0]["content"] == "Be brief."
    assert resolved["resolutionGraph"]["root"] == {"name": "folder/chat", "version": 1}

    moved = ok(api.patch("/api/public/v2/prompts/folder%2Fchat/versions/1", json={}))
    documented(document, "patch", PROMPT + "/versions/{version}", moved)
    assert moved["labels"] == ["staging", "latest"]  # no newLabels: nothing added

    listed = ok(api.get("/api/public/v2/prompts"))
    documented(document, "get", "/api/public/v2/prompts", listed)
    conforms("PromptMetaListResponse", listed)
    assert {item["name"] for item in listed["data"]} == {"base", "folder/chat"}

    trace = event("trace-create", {"id": "t1", "name": "ask"})
    generation = event(
        "generation-create",
        {
            "id": "g1",
            "traceId": "t1",
            "promptName": "base",
            "promptVersion": 1,
            "startTime": iso(),
            "endTime": iso(seconds=2),
            "usageDetails": {"input": 10, "output": 3},
        },
    )
    score = event("score-create", {"id": "s1", "traceId": "t1", "name": "quality", "value": 1})
    ingest(api, trace, generation, score)
    metrics = ok(api.get("/api/public/prompts/metrics?name=base"))
    documented(document, "get", "/api/public/prompts/metrics", metrics)
    (line,) = metrics["data"]
    assert (line["generations"], line["avgLatency"], line["usage"]) == (
        1,
        2.0,
        {"input": 10, "output": 3, "total": 13},
    )
    assert line["scores"] == {"quality": {"avg": 1.0, "count": 1}}


def test_prompt_deletion_is_a_documented_204(api: Api, document: dict[str, Any]) -> None:
    ok(api.post("/api/public/v2/prompts", json={"name": "gone", "prompt": "x"}))
    answers = document["paths"][PROMPT]["delete"]["responses"]
    assert "200" not in answers and "content" not in answers["204"]
    deleted = api.delete("/api/public/v2/prompts/gone")
    assert (deleted.status_code, deleted.content) == (204, b"")
    # What the document says the name may not be is refused, as it says.
    name = document["paths"][PROMPT]["delete"]["parameters"][0]["schema"]
    for bad in ("new", " ", "a//b"):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, name)
        assert api.delete(f"/api/public/v2/prompts/{bad}").status_code == 400


def test_comment_answers_are_as_documented(api: Api, document: dict[str, Any]) -> None:
    ingest(api, event("trace-create", {"id": "t1", "name": "ask"}))
    body = {"objectType": "TRACE", "objectId": "t1", "content": "Wrong tool"}
    made = ok(api.post("/api/public/comments", json=body))
    listed = ok(api.get("/api/public/comments?objectType=TRACE&objectId=t1"))
    documented(document, "get", "/api/public/comments", listed)
    conforms("GetCommentsResponse", listed)
    one = ok(api.get(f"/api/public/comments/{made['id']}"))
    documented(document, "get", "/api/public/comments/{comment_id}", one)
    conforms("Comment", one)
    assert one["authorUserId"] is None and listed["data"] == [one]


def _patch(api: Api, mid: str, **body: Any) -> Any:
    return api.patch(f"/api/public/media/{mid}", json=body)


def test_media_answers_and_integers_are_as_documented(
    api: Api, document: dict[str, Any], tmp_path: Path
) -> None:
    image = png()
    register = {
        "contentType": "image/png",
        "contentLength": float(len(image)),  # 781.0: an integer to JSON Schema
        "sha256Hash": sha256_b64(image),
        "field": "input",
    }
    granted = ok(api.post("/api/public/media", json=register))
    documented(document, "post", "/api/public/media", granted)
    conforms("GetMediaUploadUrlResponse", granted)
    mid = granted["mediaId"]
    assert mid == media_id(image)
    put = api.put(
        granted["uploadUrl"], content=image, headers={"Content-Type": "image/png"}, auth=None
    )
    assert put.status_code == 200 and put.content == b""

    # Integers the columns cannot hold: a 400 naming the field; nothing recorded.
    refused = _patch(api, mid, uploadHttpStatus=2**31)
    assert refused.status_code == 400 and "uploadHttpStatus" in refused.text
    refused = _patch(api, mid, uploadHttpStatus=200, uploadTimeMs=-1)
    assert refused.status_code == 400 and "uploadTimeMs" in refused.text
    record = ok(api.get(f"/api/public/media/{mid}"))  # the PUT stored the bytes
    uploaded_at = record["uploadedAt"]

    stamp = "2026-01-02T03:04:05Z"
    patched = _patch(api, mid, uploadedAt=stamp, uploadHttpStatus=200.0, uploadTimeMs=12.0)
    assert patched.status_code == 204, patched.text
    record = ok(api.get(f"/api/public/media/{mid}"))
    documented(document, "get", "/api/public/media/{media_id}", record)
    conforms("GetMediaResponse", record)
    assert (record["contentLength"], record["uploadedAt"]) == (len(image), uploaded_at)
    download = api.get(record["url"], auth=None)
    assert download.status_code == 200 and download.content == image
    served = document["paths"]["/api/media/{project_id}/{media_id}"]["get"]["responses"]["200"]
    assert set(served["content"]) == {"*/*"} and "Digest" in served["headers"]
