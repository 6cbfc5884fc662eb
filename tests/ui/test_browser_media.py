"""In a real browser: media uploaded by the Langfuse 5.x SDK shows on the trace page
(image inline, click to enlarge; audio with a player), and an uploaded SVG or HTML
file with a script never runs in the dashboard's origin."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from conftest import Site, _site, login, shot
from media_files import media_id, moto_s3, png, s3_settings, sha256_b64, token, wav
from support import run_sdk_script, serve


def test_sdk_image_and_audio_show_on_the_trace_page(
    sqlite_site: Site, page, tmp_path: Path
) -> None:
    site = sqlite_site
    (tmp_path / "red.png").write_bytes(png(48, 32))
    (tmp_path / "ramp.wav").write_bytes(wav())
    result = run_sdk_script(
        "langfuse5", "lf5_media.py", site, str(tmp_path / "red.png"), str(tmp_path / "ramp.wav")
    )
    assert result["log"] == [], result["log"]
    trace_id = result["trace_id"]
    detail = httpx.get(f"{site.url}/api/public/traces/{trace_id}", auth=site.project.auth).json()
    span_id = detail["observations"][0]["id"]

    login(page, site.url, site.owner)
    page.goto(site.path(f"traces/{trace_id}?observation={span_id}"))
    media = page.locator("[data-testid=media]")
    thumb = media.locator("img.media-thumb")
    thumb.wait_for()
    page.wait_for_function("document.querySelector('img.media-thumb').complete")
    assert thumb.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [48, 32]
    assert thumb.is_visible()
    audio = media.locator("audio")
    assert audio.count() == 1
    page.wait_for_function("document.querySelector('[data-testid=media] audio').readyState >= 1")
    assert audio.evaluate("a => a.duration") > 0
    assert "audio/wav" in media.inner_text() and "image/png" in media.inner_text()
    shot(page, "media-trace")

    thumb.click()  # enlarge
    full = media.locator("img.media-full")
    assert full.is_visible() and not thumb.is_visible()
    shot(page, "media-enlarged")
    full.click()  # and back
    assert thumb.is_visible()


SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" onload="alert(1)">'
    b"<script>window.parent.__xss = 1; alert(2)</script></svg>"
)
HTML = (
    b"<html><body><script>window.opener && (window.opener.__xss = 1); alert(3)</script>"
    b"</body></html>"
)


def _upload(site: Site, data: bytes, content_type: str, trace_id: str) -> str:
    auth = site.project.auth
    answer = httpx.post(
        f"{site.url}/api/public/media",
        json={"contentType": content_type, "contentLength": len(data), "traceId": trace_id,
              "sha256Hash": sha256_b64(data), "field": "input"},
        auth=auth,
    ).json()  # fmt: skip
    put = httpx.put(
        answer["uploadUrl"],
        content=data,
        headers={"Content-Type": content_type, "x-amz-checksum-sha256": sha256_b64(data)},
    )
    assert put.status_code == 200, put.text
    record = httpx.get(f"{site.url}/api/public/media/{media_id(data)}", auth=auth).json()
    return str(record["url"])


def test_svg_and_html_uploads_never_run_script(sqlite_site: Site, page) -> None:
    site = sqlite_site
    trace_id = "media-xss"
    batch = {"batch": [{
        "id": "e1", "type": "trace-create", "timestamp": "2026-01-01T00:00:00Z",
        "body": {"id": trace_id, "name": "files",
                 "input": {"svg": token(SVG, "image/svg+xml"), "page": token(HTML, "text/html")}},
    }]}  # fmt: skip
    assert (
        httpx.post(
            f"{site.url}/api/public/ingestion", json=batch, auth=site.project.auth
        ).status_code
        == 207
    )
    urls = [
        _upload(site, SVG, "image/svg+xml", trace_id),
        _upload(site, HTML, "text/html", trace_id),
    ]

    login(page, site.url, site.owner)
    page.goto(site.path(f"traces/{trace_id}"))
    media = page.locator("[data-testid=media]")
    links = media.locator("a.media-download")
    assert links.count() == 2  # offered as downloads, never drawn or framed
    assert media.locator("img, iframe, object, embed").count() == 0
    shot(page, "media-files")

    for url, data in zip(urls, (SVG, HTML), strict=True):
        # Opened directly, in the app's origin: the browser downloads it, nothing renders.
        with page.expect_download() as downloaded:
            page.evaluate("url => { window.location.href = url }", url)
        saved = Path(downloaded.value.path())
        assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(data).digest()
        assert page.evaluate("window.__xss") is None
    # The page fixture fails the test if any alert() opened.


def test_images_in_s3_show_on_the_trace_page(tmp_path: Path, page) -> None:
    """With S3 storage the page loads the image from the bucket's presigned URL (its
    Content-Security-Policy allows that origin)."""
    image = png(40, 20, rgb=(0, 120, 240))
    with (
        moto_s3() as endpoint,
        serve(f"sqlite:///{tmp_path / 'lanterna.db'}", tmp_path, **s3_settings(endpoint)) as server,
    ):
        site = _site(server)
        batch = {"batch": [{
            "id": "e1", "type": "trace-create", "timestamp": "2026-01-01T00:00:00Z",
            "body": {"id": "s3-trace", "name": "s3", "input": token(image, "image/png")},
        }]}  # fmt: skip
        auth = site.project.auth
        assert (
            httpx.post(f"{site.url}/api/public/ingestion", json=batch, auth=auth).status_code == 207
        )
        answer = httpx.post(
            f"{site.url}/api/public/media",
            json={"contentType": "image/png", "contentLength": len(image), "traceId": "s3-trace",
                  "sha256Hash": sha256_b64(image), "field": "input"},
            auth=auth,
        ).json()  # fmt: skip
        assert answer["uploadUrl"].startswith(endpoint)
        put = httpx.put(
            answer["uploadUrl"],
            content=image,
            headers={"Content-Type": "image/png", "x-amz-checksum-sha256": sha256_b64(image)},
        )
        assert put.status_code == 200
        patched = httpx.patch(
            f"{site.url}/api/public/media/{media_id(image)}",
            json={"uploadHttpStatus": 200},
            auth=auth,
        )
        assert patched.status_code == 204

        login(page, site.url, site.owner)
        page.goto(site.path("traces/s3-trace"))
        thumb = page.locator("[data-testid=media] img.media-thumb")
        assert thumb.get_attribute("src").startswith(endpoint)
        page.wait_for_function("document.querySelector('img.media-thumb').complete")
        assert thumb.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [40, 20]
