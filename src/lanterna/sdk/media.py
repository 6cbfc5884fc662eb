"""Base64 data URIs in inputs, outputs and metadata uploaded as media (on by default;
``Lanterna(media_upload=False)`` or ``LANTERNA_MEDIA_UPLOAD=false`` /
``LANGFUSE_MEDIA_UPLOAD_ENABLED=false`` turns it off).

Runs on the exporter thread while records become events, never on the traced call: the
hot path pays nothing. Only strings that start with ``data:`` and carry ``;base64,``
are decoded. Each is registered with ``POST /api/public/media`` (the media id derived
from the SHA-256 as the Langfuse SDK derives it), uploaded to the answered URL unless the
server already holds the bytes, the outcome sent with ``PATCH``, and the string replaced
by the Langfuse reference token. When anything fails, the data URI stays in place: the
media is never lost, the event is only larger.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from . import _errors
from .transport import Transport

#: Strings shorter than this are left (a data URI of a few bytes is not worth a request).
MIN_CHARS = 64
_MAX_DEPTH = 30


class MediaUploader:
    """Replaces data URIs by media references, uploading the bytes through ``transport``."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def __call__(
        self, value: Any, trace_id: str | None, observation_id: str | None, field: str
    ) -> Any:
        """``value`` with its data URIs replaced by reference tokens."""
        return self._walk(value, trace_id, observation_id, field, 0)

    def _walk(
        self, value: Any, trace_id: str | None, obs: str | None, field: str, depth: int
    ) -> Any:
        if isinstance(value, str):
            if len(value) >= MIN_CHARS and value.startswith("data:"):
                return self._upload(value, trace_id, obs, field) or value
            return value
        if depth >= _MAX_DEPTH:
            return value
        if isinstance(value, dict):
            return {k: self._walk(v, trace_id, obs, field, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v, trace_id, obs, field, depth + 1) for v in value]
        return value

    def _upload(self, uri: str, trace_id: str | None, obs: str | None, field: str) -> str | None:
        head, comma, payload = uri.partition(",")
        if not comma or not head.endswith(";base64") or len(head) > 200:
            return None
        content_type = head[5:].split(";", 1)[0].strip().lower()
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return None
        digest = hashlib.sha256(data).digest()
        sha_b64 = base64.b64encode(digest).decode()
        media_id = base64.urlsafe_b64encode(digest).decode()[:22]
        token = f"@@@langfuseMedia:type={content_type}|id={media_id}|source=base64_data_uri@@@"
        try:
            answer = self._transport.request(
                "POST",
                "/api/public/media",
                {
                    "traceId": trace_id,
                    "observationId": obs,
                    "contentType": content_type,
                    "contentLength": len(data),
                    "sha256Hash": sha_b64,
                    "field": field,
                },
                retries=2,
            )
            if answer.status_code != 200:
                _errors.report("media.register", RuntimeError(f"HTTP {answer.status_code}"))
                return None
            got = answer.json()
            if got.get("mediaId") != media_id:
                return None
            url = got.get("uploadUrl")
            if url:
                status = self._put(url, data, content_type, sha_b64)
                self._transport.request(
                    "PATCH",
                    f"/api/public/media/{media_id}",
                    {
                        "uploadedAt": datetime.now(UTC).isoformat(),
                        "uploadHttpStatus": status,
                    },
                    retries=2,
                )
                if not 200 <= status < 300:
                    return None
        except Exception as exc:  # never into user code; the data URI stays
            _errors.report("media.upload", exc)
            return None
        return token

    def _put(self, url: str, data: bytes, content_type: str, sha_b64: str) -> int:
        request = urllib.request.Request(
            url,
            data=data,
            method="PUT",
            headers={"Content-Type": content_type, "x-amz-checksum-sha256": sha_b64},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._transport.timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
