"""Lanterna's own SDK takes base64 data URIs out of inputs and outputs as media (on the
exporter thread), against the real server; ``media_upload=False`` leaves them inline."""

from __future__ import annotations

import base64

from lanterna import observe
from media_files import media_id, png, token, wav


def _uri(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def test_data_uris_are_uploaded_once_and_referenced(client, reader) -> None:
    image, audio = png(rgb=(9, 99, 199)), wav(300)

    @observe(name="look")
    def look(picture: str, sound: dict) -> str:
        return "blue"

    @observe(name="describe")
    def describe() -> str:
        look(_uri(image, "image/png"), {"clip": _uri(audio, "audio/wav")})
        return _uri(image, "image/png")  # the same bytes again

    describe()
    client.flush()
    (item,) = reader.http.get("/api/public/traces").json()["data"]
    trace = reader.trace(item["id"])
    observations = {o["name"]: o for o in trace["observations"]}
    assert observations["describe"]["output"] == token(image, "image/png")
    look_input = observations["look"]["input"]
    assert token(image, "image/png") in str(look_input)
    assert token(audio, "audio/wav") in str(look_input)
    assert "base64," not in str(trace)
    for data in (image, audio):
        record = reader.http.get(f"/api/public/media/{media_id(data)}")
        assert record.status_code == 200, record.text
        assert reader.http.get(record.json()["url"]).content == data


def test_media_upload_can_be_turned_off(live_server, make_client, reader) -> None:
    p = live_server.project
    client = make_client(
        public_key=p.public_key, secret_key=p.secret_key, host=live_server.url,
        flush_interval=0.05, media_upload=False,
    )  # fmt: skip
    image = png(rgb=(5, 5, 5))

    @observe(name="inline")
    def inline(picture: str) -> str:
        return "ok"

    inline(_uri(image, "image/png"))
    client.flush()
    (item,) = reader.http.get("/api/public/traces").json()["data"]
    trace = reader.trace(item["id"])
    assert trace["observations"][0]["input"]["picture"] == _uri(image, "image/png")
    assert reader.http.get(f"/api/public/media/{media_id(image)}").status_code == 404
