"""S3-compatible media storage against a local S3 server on loopback (moto's server mode,
real HTTP): presigned PUT and GET URLs, so the bytes never pass through Lanterna; the
bytes stored once; upload URLs bound to the checksum; objects deleted with their last
trace."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import httpx
import pytest

from helpers import event, ingest
from lanterna.server.app import create_app
from media_files import (
    BUCKET,
    CREDENTIALS,
    media_id,
    moto_s3,
    png,
    s3_settings,
    sha256_b64,
    token,
    wav,
)
from support import Api, make_settings, new_project


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture
def s3_api(db_url: str, tmp_path: Path, s3_endpoint: str) -> Iterator[Api]:
    settings = dataclasses.replace(make_settings(db_url, tmp_path), **s3_settings(s3_endpoint))
    app = create_app(settings)
    project = new_project(db_url)
    with Api(app, raise_server_exceptions=True) as client:
        client.project = project
        client.auth = project.auth
        client.s3 = boto3.client(  # type: ignore[attr-defined]
            "s3", endpoint_url=s3_endpoint, region_name="us-east-1", **CREDENTIALS
        )
        yield client


def objects(api: Api) -> list[str]:
    listed = api.s3.list_objects_v2(Bucket=BUCKET)  # type: ignore[attr-defined]
    return sorted(o["Key"] for o in listed.get("Contents", []))


def register(api: Api, data: bytes, content_type: str, **extra: Any) -> dict[str, Any]:
    answer = api.post(
        "/api/public/media",
        json={"contentType": content_type, "contentLength": len(data),
              "sha256Hash": sha256_b64(data), "field": "input", **extra},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def presigned_put(url: str, data: bytes, content_type: str, checksum: str) -> httpx.Response:
    # As the Langfuse SDK sends it.
    headers = {
        "Content-Type": content_type,
        "x-amz-checksum-sha256": checksum,
        "x-ms-blob-type": "BlockBlob",
    }
    return httpx.put(url, content=data, headers=headers)


def test_presigned_upload_and_download(s3_api: Api, s3_endpoint: str) -> None:
    image = png(rgb=(10, 20, 30))
    ingest(s3_api, event("trace-create", {"id": "t1", "input": token(image, "image/png")}))
    got = register(s3_api, image, "image/png", traceId="t1")
    assert got["mediaId"] == media_id(image)
    assert got["uploadUrl"].startswith(f"{s3_endpoint}/{BUCKET}/media/")
    assert "X-Amz-Signature=" in got["uploadUrl"]

    put = presigned_put(got["uploadUrl"], image, "image/png", sha256_b64(image))
    assert put.status_code == 200, put.text
    patched = s3_api.patch(
        f"/api/public/media/{media_id(image)}",
        json={"uploadedAt": "2026-01-02T03:04:05Z", "uploadHttpStatus": 200, "uploadTimeMs": 3},
    )
    assert patched.status_code == 204, patched.text
    assert len(objects(s3_api)) == 1

    record = s3_api.get(f"/api/public/media/{media_id(image)}").json()
    assert record["url"].startswith(f"{s3_endpoint}/{BUCKET}/media/")
    downloaded = httpx.get(record["url"])
    assert downloaded.status_code == 200
    assert downloaded.content == image
    assert downloaded.headers["content-disposition"].startswith("attachment")

    # Stored once: the same bytes for another trace need no upload.
    assert register(s3_api, image, "image/png", traceId="t2")["uploadUrl"] is None

    # Deleting both traces deletes the object.
    s3_api.delete("/api/public/traces/t1")
    assert len(objects(s3_api)) == 1
    s3_api.delete("/api/public/traces/t2")
    assert objects(s3_api) == []


def test_the_upload_url_is_bound_to_the_checksum_and_a_false_success_is_refused(
    s3_api: Api,
) -> None:
    audio = wav(400)
    url = register(s3_api, audio, "audio/wav")["uploadUrl"]
    # The presigned PUT signs the content type and the SHA-256 checksum header, so S3
    # refuses other bytes (BadDigest) or another checksum (SignatureDoesNotMatch). moto
    # checks neither, so the binding is asserted on the URL itself.
    signed = parse_qs(urlparse(url).query)["X-Amz-SignedHeaders"][0].split(";")
    assert {"content-type", "x-amz-checksum-sha256"} <= set(signed)
    # A PATCH claiming success for bytes the bucket does not hold is refused.
    claimed = s3_api.patch(f"/api/public/media/{media_id(audio)}", json={"uploadHttpStatus": 200})
    assert claimed.status_code == 400
    assert s3_api.get(f"/api/public/media/{media_id(audio)}").status_code == 404
    assert objects(s3_api) == []


def test_another_project_cannot_claim_bytes_it_did_not_upload(s3_api: Api) -> None:
    image = png(rgb=(40, 50, 60))
    got = register(s3_api, image, "image/png")
    put = presigned_put(got["uploadUrl"], image, "image/png", sha256_b64(image))
    assert put.status_code == 200, put.text
    assert s3_api.patch(f"/api/public/media/{media_id(image)}",
                        json={"uploadHttpStatus": 200}).status_code == 204  # fmt: skip

    # Another project is asked for the bytes; claiming the upload without making it
    # (the object is there, written before it asked) gives it nothing.
    other = new_project(s3_api.app.state.runtime.db.url, "B")
    body = {"contentType": "image/png", "contentLength": len(image),
            "sha256Hash": sha256_b64(image), "field": "input"}  # fmt: skip
    from_b = s3_api.post("/api/public/media", json=body, auth=other.auth).json()
    assert from_b["uploadUrl"]
    # As if B had asked a minute after the object was written (no waiting in tests).
    s3_api.app.state.runtime.writer.run_sync(
        lambda c: c.run(
            "UPDATE media SET created_at = ? WHERE project_id = ?",
            (c.dialect.ts(datetime.now(UTC) + timedelta(minutes=1)), other.id),
        )
    )
    url = f"/api/public/media/{media_id(image)}"
    claimed = s3_api.patch(url, json={"uploadHttpStatus": 200}, auth=other.auth)
    assert claimed.status_code == 400 and "not in storage" in claimed.json()["message"]
    assert s3_api.get(url, auth=other.auth).status_code == 404
    s3_api.app.state.runtime.writer.run_sync(
        lambda c: c.run(
            "UPDATE media SET created_at = ? WHERE project_id = ?",
            (c.dialect.ts(datetime.now(UTC)), other.id),
        )
    )
    put = presigned_put(from_b["uploadUrl"], image, "image/png", sha256_b64(image))
    assert put.status_code == 200, put.text
    assert s3_api.patch(url, json={"uploadHttpStatus": 200}, auth=other.auth).status_code == 204
    assert s3_api.get(url, auth=other.auth).status_code == 200
    assert len(objects(s3_api)) == 1
