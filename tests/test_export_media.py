"""Media in exports: a JSONL export holds the bytes of the images and audio its traces
refer to, and ``lanterna import`` uploads them through the target's media API, so the
imported trace's page shows the image, served from the target's own storage (both
backends; two servers sharing nothing but the database, each with its media folder)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from helpers import event, ingest
from lanterna.accounts import store as accounts
from lanterna.cli import main
from lanterna.lifecycle.importer import read_records, send
from lanterna.server.app import create_app
from lanterna.store.db import Database
from media_files import media_id, png, sha256_b64, token, wav
from support import SECRETS, Api, make_settings, new_project

PASSWORD = "export media password"
SECRETS.add(PASSWORD)


def server(db_url: str, media_dir: Path) -> Api:
    """An app on ``db_url`` whose media live in ``media_dir``."""
    data_dir = media_dir.with_name(f"{media_dir.name}-data")
    settings = dataclasses.replace(make_settings(db_url, data_dir), media_dir=str(media_dir))
    return Api(create_app(settings), raise_server_exceptions=True)


def upload(api: Api, data: bytes, content_type: str, trace_id: str) -> None:
    """As the SDK does: register, PUT, PATCH."""
    body = {"traceId": trace_id, "contentType": content_type, "contentLength": len(data),
            "sha256Hash": sha256_b64(data), "field": "input"}  # fmt: skip
    answer = api.post("/api/public/media", json=body).json()
    headers = {"Content-Type": content_type, "x-amz-checksum-sha256": sha256_b64(data)}
    assert api.put(answer["uploadUrl"], content=data, headers=headers).status_code == 200
    patch = {"uploadedAt": "2026-01-02T03:04:05Z", "uploadHttpStatus": 200}
    assert api.patch(f"/api/public/media/{answer['mediaId']}", json=patch).status_code == 204


def owner_session(api: Api, db_url: str, project_id: str) -> None:
    """Log ``api`` in as an owner of the project (cookies kept by the client)."""
    db = Database(db_url)
    try:
        with db.transaction() as conn:
            user = accounts.create_user(conn, "owner@example.com", PASSWORD, is_admin=False)
            accounts.set_member(conn, user, project_id, "owner")
    finally:
        db.close()
    form = api.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf
    login = {"csrf_token": csrf.group(1), "email": "owner@example.com", "password": PASSWORD}
    assert api.post("/login", data=login, follow_redirects=False).status_code == 303


def test_export_import_round_trips_media_to_another_server(db_url, tmp_path):
    image, sound = png(rgb=(10, 200, 40)), wav()
    source = new_project(db_url, "Source")
    target = new_project(db_url, "Target")
    with server(db_url, tmp_path / "media-a") as a:
        a.auth = source.auth
        upload(a, image, "image/png", "t-media")
        upload(a, sound, "audio/wav", "t-media")
        refs = {"image": token(image, "image/png"), "audio": token(sound, "audio/wav")}
        ingest(
            a,
            event("trace-create", {"id": "t-media", "name": "vision", "input": refs}),
            event("trace-create", {"id": "t-plain", "name": "text", "input": "no media"}),
        )
        exported = a.get("/api/public/export").text
    lines = [json.loads(line) for line in exported.splitlines()]
    media = [r["data"] for r in lines if r["type"] == "media"]
    assert sorted(m["contentType"] for m in media) == ["audio/wav", "image/png"]
    assert {m["traceId"] for m in media} == {"t-media"}
    kinds = [r["type"] for r in lines]
    assert kinds.index("media") < kinds.index("trace")  # the bytes before their trace

    with server(db_url, tmp_path / "media-b") as b:
        b.auth = target.auth
        result = send(b, read_records(io.StringIO(exported)))
        assert result.errors == [] and result.sent["media"] == 2
        # The target server stored the bytes itself ...
        stored = sorted(p.name for p in (tmp_path / "media-b").rglob("*") if p.is_file())
        assert len(stored) == 2
        got = b.get(f"/api/public/media/{media_id(image)}")
        assert got.status_code == 200, got.text
        assert b.get(got.json()["url"], auth=None).content == image
        # ... and the imported trace's references resolve on its page.
        assert b.get("/api/public/traces/t-media").json()["input"] == refs
        owner_session(b, db_url, target.id)
        page = b.get(f"/project/{target.id}/traces/t-media", auth=None)
        assert page.status_code == 200, page.text
        thumb = re.search(r'<img class="media-thumb" src="([^"]+)"', page.text)
        assert thumb, "no image on the imported trace's page"
        src = thumb.group(1).replace("&amp;", "&")
        shown = b.get(src, auth=None)
        assert shown.status_code == 200 and shown.content == image
        assert "<audio controls" in page.text


def test_cli_export_includes_the_media_bytes(db_url, tmp_path, capsys, monkeypatch):
    image = png(rgb=(1, 2, 3))
    project = new_project(db_url)
    media_dir = tmp_path / "media-cli"
    with server(db_url, media_dir) as a:
        a.auth = project.auth
        upload(a, image, "image/png", "t-cli")
        ingest(a, event("trace-create", {"id": "t-cli", "input": token(image, "image/png")}))
    out = tmp_path / "export.jsonl"
    where: list[Any] = (
        ["--data-dir", str(Path(db_url.removeprefix("sqlite:///")).parent)]
        if db_url.startswith("sqlite:///")
        else ["--database-url", db_url]
    )
    monkeypatch.setenv("LANTERNA_MEDIA_DIR", str(media_dir))
    assert main(["export", *where, "--project", project.id, "--output", str(out)]) == 0
    assert "1 media" in capsys.readouterr().err
    (record,) = [r for r in map(json.loads, out.read_text().splitlines()) if r["type"] == "media"]
    assert base64.b64decode(record["data"]["base64"]) == image
    assert record["data"]["id"] == media_id(image)


def test_backup_and_restore_carry_the_media_blobs(db_url, tmp_path, capsys):
    if not db_url.startswith("sqlite:///"):
        pytest.skip("PostgreSQL is backed up with pg_dump; its media folder as files")
    image = png(rgb=(90, 90, 250))
    project = new_project(db_url)
    source_dir = Path(db_url.removeprefix("sqlite:///")).parent
    with Api(create_app(make_settings(db_url, source_dir))) as a:
        a.auth = project.auth
        upload(a, image, "image/png", "t-backup")
        ingest(a, event("trace-create", {"id": "t-backup", "input": token(image, "image/png")}))
    dest = tmp_path / "backups" / "copy.db"
    dest.parent.mkdir()
    assert main(["backup", str(dest), "--data-dir", str(source_dir)]) == 0
    assert "copied 1 media blob(s)" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "backups" / "copy.db.media").rglob("*") if p.is_file()] == [
        hashlib.sha256(image).hexdigest()
    ]
    # Again: the blob is there already, nothing copied.
    assert main(["backup", str(dest), "--data-dir", str(source_dir)]) == 0
    assert "copied 0 media blob(s)" in capsys.readouterr().err

    restored = tmp_path / "restored"
    assert main(["restore", str(dest), "--data-dir", str(restored)]) == 0
    assert "restored 1 media blob(s)" in capsys.readouterr().err
    db = f"sqlite:///{restored / 'lanterna.db'}"
    with Api(create_app(make_settings(db, restored))) as b:
        b.auth = project.auth
        got = b.get(f"/api/public/media/{media_id(image)}")
        assert got.status_code == 200, got.text
        assert b.get(got.json()["url"], auth=None).content == image
