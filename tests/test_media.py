"""The media API (contract 4.7) on local storage: register by SHA-256, upload to the
server's own signed URL, record the outcome, download through a short-lived URL; bytes
stored once; bad uploads refused with nothing stored; media deleted with its last trace."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import event, ingest
from lanterna.server.app import create_app
from media_files import media_id, png, sha256_b64, token, wav
from support import Api, make_settings, new_project


@pytest.fixture
def media_api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    """The app with a small media size limit and no video allowed."""
    settings = dataclasses.replace(
        make_settings(db_url, tmp_path),
        media_max_bytes=10_000,
        media_content_types="image/*,audio/wav,text/html,application/pdf",
    )
    app = create_app(settings)
    project = new_project(db_url)
    with Api(app, raise_server_exceptions=True) as client:
        client.project = project
        client.auth = project.auth
        client.media_dir = Path(settings.media_folder)  # type: ignore[attr-defined]
        yield client


def blobs_in(api: Api) -> list[Path]:
    folder: Path = api.media_dir  # type: ignore[attr-defined]
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def register(api: Api, data: bytes, content_type: str, **extra: Any) -> Any:
    body = {
        "contentType": content_type,
        "contentLength": len(data),
        "sha256Hash": sha256_b64(data),
        "field": "input",
        **extra,
    }
    return api.post("/api/public/media", json=body)


def put(api: Api, url: str, data: bytes, content_type: str, checksum: str | None = None) -> Any:
    headers = {
        "Content-Type": content_type,
        "x-amz-checksum-sha256": checksum or sha256_b64(data),
        "x-ms-blob-type": "BlockBlob",
    }
    return api.put(url, content=data, headers=headers, auth=None)


def upload(api: Api, data: bytes, content_type: str, **extra: Any) -> str:
    """Register, PUT and PATCH as the SDK does; the media id."""
    answer = register(api, data, content_type, **extra)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["mediaId"] == media_id(data)
    if got["uploadUrl"] is not None:
        assert put(api, got["uploadUrl"], data, content_type).status_code == 200
        patched = api.patch(
            f"/api/public/media/{got['mediaId']}",
            json={"uploadedAt": "2026-01-02T03:04:05Z", "uploadHttpStatus": 200,
                  "uploadHttpError": None, "uploadTimeMs": 12},
        )  # fmt: skip
        assert patched.status_code == 204, patched.text
    return str(got["mediaId"])


def test_upload_download_and_the_bytes_stored_once(media_api: Api) -> None:
    image = png()
    first = register(media_api, image, "image/png", traceId="t1")
    assert first.status_code == 200, first.text
    url = first.json()["uploadUrl"]
    assert first.json()["mediaId"] == media_id(image)
    assert url.startswith("http://testserver/api/media/")
    # Not there yet: no download.
    assert media_api.get(f"/api/public/media/{media_id(image)}").status_code == 404

    stored = put(media_api, url, image, "image/png")
    assert stored.status_code == 200, stored.text
    assert [p.name for p in blobs_in(media_api)] == [sha256_hex(image)]

    got = media_api.get(f"/api/public/media/{media_id(image)}")
    assert got.status_code == 200, got.text
    record = got.json()
    assert (record["mediaId"], record["contentType"], record["contentLength"]) == (
        media_id(image), "image/png", len(image),
    )  # fmt: skip
    assert record["uploadedAt"] and record["urlExpiry"].endswith("Z")
    content = media_api.get(record["url"], auth=None)
    assert content.status_code == 200
    assert content.content == image
    assert content.headers["content-type"] == "image/png"
    assert content.headers["x-content-type-options"] == "nosniff"
    assert content.headers["content-disposition"].startswith("inline;")
    assert "sandbox" in content.headers["content-security-policy"]

    # The same bytes again in this project (another trace): nothing to upload.
    again = register(media_api, image, "image/png", traceId="t2")
    assert again.json() == {"mediaId": media_id(image), "uploadUrl": None}
    # Another project is asked for the bytes (a null uploadUrl would tell it that some
    # project holds that file); they are stored once all the same.
    other = media_api.new_project("B")
    b_body = {"contentType": "image/png", "contentLength": len(image),
              "sha256Hash": sha256_b64(image), "traceId": "b1", "field": "input"}  # fmt: skip
    from_b = media_api.post("/api/public/media", json=b_body, auth=other.auth).json()
    assert from_b["mediaId"] == media_id(image) and from_b["uploadUrl"]
    # Claiming the upload without making it does not give B the bytes stored by A.
    claimed = media_api.patch(
        f"/api/public/media/{media_id(image)}", json={"uploadHttpStatus": 200}, auth=other.auth
    )
    assert claimed.status_code == 400 and "not uploaded" in claimed.json()["message"]
    hidden = media_api.get(f"/api/public/media/{media_id(image)}", auth=other.auth)
    assert hidden.status_code == 404
    assert put(media_api, from_b["uploadUrl"], image, "image/png").status_code == 200
    b_again = media_api.post("/api/public/media", json=b_body, auth=other.auth).json()
    assert b_again == {"mediaId": media_id(image), "uploadUrl": None}
    assert len(blobs_in(media_api)) == 1


def sha256_hex(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_bad_uploads_are_refused_and_nothing_is_stored(media_api: Api) -> None:
    image = png(rgb=(0, 0, 255))
    url = register(media_api, image, "image/png").json()["uploadUrl"]

    wrong_checksum = put(media_api, url, image, "image/png", checksum=sha256_b64(b"other"))
    assert wrong_checksum.status_code == 400
    assert "x-amz-checksum-sha256" in wrong_checksum.json()["message"]

    # Other bytes than the media id's (same length, so only the hash tells).
    forged = bytearray(image)
    forged[-20] ^= 0xFF
    not_the_content = put(media_api, url, bytes(forged), "image/png", checksum=sha256_b64(image))
    assert not_the_content.status_code == 400
    assert "SHA-256" in not_the_content.json()["message"]

    too_long = put(media_api, url, image + b"x", "image/png", checksum=sha256_b64(image))
    assert too_long.status_code == 413

    wrong_type = put(media_api, url, image, "image/jpeg")
    assert wrong_type.status_code == 400

    tampered = url.replace("sig=", "sig=0")
    assert put(media_api, tampered, image, "image/png").status_code == 403

    oversize = register(media_api, b"x" * 10_001, "image/png")
    assert oversize.status_code == 400  # as Langfuse: its spec has no 413 here
    assert "10000" in oversize.json()["message"]

    disallowed = register(media_api, b"video", "video/mp4")
    assert disallowed.status_code == 400
    assert "video/mp4" in disallowed.json()["message"]

    bad_hash = media_api.post(
        "/api/public/media",
        json={"contentType": "image/png", "contentLength": 3, "sha256Hash": "not-a-hash"},
    )
    assert bad_hash.status_code == 400

    # A PATCH claiming success for bytes never stored is refused.
    claimed = media_api.patch(
        f"/api/public/media/{media_id(image)}", json={"uploadHttpStatus": 200}
    )
    assert claimed.status_code == 400
    assert (
        media_api.patch("/api/public/media/nope", json={"uploadHttpStatus": 200}).status_code == 404
    )

    assert blobs_in(media_api) == []
    assert media_api.get(f"/api/public/media/{media_id(image)}").status_code == 404


def test_svg_and_html_are_served_as_sandboxed_attachments(media_api: Api) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    mid = upload(media_api, svg, "image/svg+xml")
    record = media_api.get(f"/api/public/media/{mid}").json()
    served = media_api.get(record["url"], auth=None)
    assert served.content == svg
    assert served.headers["content-disposition"].startswith("attachment;")
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-security-policy"].startswith("sandbox")


def test_media_goes_with_the_last_trace_that_refers_to_it(media_api: Api) -> None:
    image, audio = png(rgb=(0, 200, 0)), wav()
    for trace_id in ("t1", "t2"):
        ingest(
            media_api,
            event("trace-create", {"id": trace_id, "name": "vision",
                                   "input": {"image": token(image, "image/png")}}),
        )  # fmt: skip
    upload(media_api, image, "image/png", traceId="t1")
    upload(media_api, image, "image/png", traceId="t2")
    upload(media_api, audio, "audio/wav", traceId="t2")
    assert len(blobs_in(media_api)) == 2

    # The read API returns the reference as stored.
    trace = media_api.get("/api/public/traces/t1").json()
    assert trace["input"] == {"image": token(image, "image/png")}

    assert media_api.delete("/api/public/traces/t1").status_code == 200
    assert media_api.get(f"/api/public/media/{media_id(image)}").status_code == 200
    assert len(blobs_in(media_api)) == 2

    deleted = media_api.request("DELETE", "/api/public/traces", json={"traceIds": ["t2"]})
    assert deleted.status_code == 200
    assert media_api.get(f"/api/public/media/{media_id(image)}").status_code == 404
    assert media_api.get(f"/api/public/media/{media_id(audio)}").status_code == 404
    assert blobs_in(media_api) == []

    # Uploaded again later: stored again.
    upload(media_api, image, "image/png", traceId="t3")
    assert len(blobs_in(media_api)) == 1


def test_retention_deletes_media_nothing_refers_to(media_api: Api) -> None:
    """``delete_unreferenced`` (the store operation retention calls) and the purge of
    freed blobs: an upload no trace refers to goes once older than the cutoff; media a
    trace refers to stays."""
    from datetime import UTC, datetime, timedelta

    orphan, kept = png(rgb=(7, 7, 7)), png(rgb=(8, 8, 8))
    upload(media_api, orphan, "image/png")  # no traceId: nothing refers to it
    upload(media_api, kept, "image/png", traceId="t1")
    rt = media_api.app.state.runtime  # type: ignore[attr-defined]
    media = rt.store.media

    past = datetime.now(UTC) - timedelta(days=1)
    assert rt.writer.run_sync(lambda c: media.delete_unreferenced(c, past)) == 0
    future = datetime.now(UTC) + timedelta(seconds=1)
    assert rt.writer.run_sync(lambda c: media.delete_unreferenced(c, future)) == 1
    assert len(blobs_in(media_api)) == 2  # freed, not yet purged
    assert rt.purge_media_sync() == 1
    assert [p.name for p in blobs_in(media_api)] == [sha256_hex(kept)]
    assert media_api.get(f"/api/public/media/{media_id(orphan)}").status_code == 404
    assert media_api.get(f"/api/public/media/{media_id(kept)}").status_code == 200


def test_the_retention_job_deletes_media_with_expired_traces(media_api: Api) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    old, fresh, orphan = png(rgb=(1, 1, 1)), png(rgb=(2, 2, 2)), png(rgb=(3, 3, 3))
    for trace_id, days, image in (("old", 40, old), ("fresh", 1, fresh)):
        stamp = (now - timedelta(days=days)).isoformat().replace("+00:00", "Z")
        ingest(
            media_api,
            event("trace-create", {"id": trace_id, "timestamp": stamp,
                                   "input": token(image, "image/png")}),
        )  # fmt: skip
        upload(media_api, image, "image/png", traceId=trace_id)
    upload(media_api, orphan, "image/png")  # no trace yet: kept for the grace period
    assert media_api.put("/api/public/retention", json={"retentionDays": 30}).status_code == 200

    run = media_api.app.state.runtime.retention.tick(now)  # type: ignore[attr-defined]
    assert run is not None and run.deleted[media_api.project.id].traces == 1
    assert media_api.get(f"/api/public/media/{media_id(old)}").status_code == 404
    for kept in (fresh, orphan):
        assert media_api.get(f"/api/public/media/{media_id(kept)}").status_code == 200
    assert sorted(p.name for p in blobs_in(media_api)) == sorted(
        sha256_hex(x) for x in (fresh, orphan)
    )
