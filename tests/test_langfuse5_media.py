"""The official Langfuse 5.x Python SDK uploads media against a live server: a span whose
input holds a PNG as a base64 data URI and a WAV as a ``LangfuseMedia``. The SDK logs
no error, the bytes are stored once (a second trace with the same media gets
``uploadUrl: null`` and skips the upload), and the read API returns the references."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from media_files import media_id, png, token, wav
from support import run_sdk_script

pytestmark = pytest.mark.slow


def files(tmp_path: Path) -> tuple[bytes, bytes, str, str]:
    image, audio = png(), wav()
    (tmp_path / "red.png").write_bytes(image)
    (tmp_path / "ramp.wav").write_bytes(audio)
    return image, audio, str(tmp_path / "red.png"), str(tmp_path / "ramp.wav")


def test_sdk_media_is_stored_once_and_referenced(live_server, tmp_path: Path) -> None:
    image, audio, png_file, wav_file = files(tmp_path)
    first = run_sdk_script("langfuse5", "lf5_media.py", live_server, png_file, wav_file)
    assert first["log"] == [], first["log"]  # no "Media upload error ... 404" any more
    uploaded = [m for m in first["media_log"] if "Successfully uploaded" in m]
    assert len(uploaded) == 2, first["media_log"]
    second = run_sdk_script("langfuse5", "lf5_media.py", live_server, png_file, wav_file)
    assert second["log"] == [], second["log"]
    # The second time the server had both: the SDK skipped both uploads.
    skipped = [m for m in second["media_log"] if "already uploaded" in m]
    assert len(skipped) == 2, second["media_log"]

    auth = live_server.project.auth
    for trace_id in (first["trace_id"], second["trace_id"]):
        trace = httpx.get(f"{live_server.url}/api/public/traces/{trace_id}", auth=auth)
        assert trace.status_code == 200, trace.text
        (span,) = trace.json()["observations"]
        assert span["input"]["image"] == token(image, "image/png")
        assert span["input"]["audio"] == token(audio, "audio/wav", source="file")

    for data, ctype in ((image, "image/png"), (audio, "audio/wav")):
        record = httpx.get(f"{live_server.url}/api/public/media/{media_id(data)}", auth=auth)
        assert record.status_code == 200, record.text
        assert record.json()["contentType"] == ctype
        assert httpx.get(record.json()["url"]).content == data
