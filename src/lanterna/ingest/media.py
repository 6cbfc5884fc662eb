"""Base64 data URIs in inputs, outputs and metadata, taken out as media.

An OTLP exporter (or any client) may put an image into a span attribute as
``data:image/png;base64,...``. :func:`extract_media` replaces each such string in the
domain events' ``input``, ``output`` and ``metadata`` by the Langfuse reference token
(``@@@langfuseMedia:type=...|id=...|source=base64_data_uri@@@``) and returns the decoded
bytes, so the server stores them in the media store as if the Langfuse SDK had uploaded
them, and traces stay small whatever client sent them. Pure: no I/O.

The media id is derived as the Langfuse SDK derives it (:func:`media_id_of`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .events import DomainEvent

#: Only strings at least this long are looked at (a data URI of a few bytes is left).
MIN_CHARS = 64
_FIELDS = ("input", "output", "metadata")
_MAX_DEPTH = 30


def media_id_of(digest: bytes) -> str:
    """The media id of content with this SHA-256, exactly as the Langfuse SDK derives it:
    the first 22 characters of its URL-safe base64 form."""
    return base64.urlsafe_b64encode(digest).decode()[:22]


def reference_token(content_type: str, media_id: str, source: str = "base64_data_uri") -> str:
    """The token that stands for the media in a stored value."""
    return f"@@@langfuseMedia:type={content_type}|id={media_id}|source={source}@@@"


@dataclass(frozen=True, slots=True)
class FoundMedia:
    """Bytes taken out of an event: where they were and what they are."""

    content_type: str
    data: bytes
    sha256: str  # hex: the blob key
    media_id: str
    trace_id: str
    observation_id: str | None
    field: str


def parse_data_uri(text: str) -> tuple[str, bytes] | None:
    """``(content type, bytes)`` of a base64 data URI, or None when ``text`` is not one."""
    if not text.startswith("data:"):
        return None
    head, comma, payload = text.partition(",")
    if not comma or not head.endswith(";base64") or len(head) > 200:
        return None
    content_type = head[5:].split(";", 1)[0].strip().lower()
    if "/" not in content_type:
        return None
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
    return content_type, data


def extract_media(
    events: Iterable[DomainEvent], allowed: Callable[[str, int], bool]
) -> list[FoundMedia]:
    """Replace the data URIs in the events' inputs, outputs and metadata (in place) by
    reference tokens; the media taken out. ``allowed(content_type, size)`` says which may
    be stored (the rest stays as it was)."""
    found: list[FoundMedia] = []
    for event in events:
        if event.kind == "trace":
            owner: Any = event.entity_id
            observation_id = None
        elif event.kind == "observation":
            owner, observation_id = event.fields.get("trace_id"), event.entity_id
        else:
            continue
        if not isinstance(owner, str):
            continue
        trace_id: str = owner
        for name in _FIELDS:
            if event.fields.get(name) is not None:
                take = _taker(found, allowed, trace_id, observation_id, name)
                event.fields[name] = _replace(event.fields[name], take, 0)
    return found


def _taker(
    found: list[FoundMedia],
    allowed: Callable[[str, int], bool],
    trace_id: str,
    observation_id: str | None,
    field: str,
) -> Callable[[str], str | None]:
    """Takes a data URI out (into ``found``), answering its token; None to leave it."""

    def take(text: str) -> str | None:
        parsed = parse_data_uri(text)
        if parsed is None or not allowed(parsed[0], len(parsed[1])):
            return None
        ctype, data = parsed
        digest = hashlib.sha256(data).digest()
        mid = media_id_of(digest)
        found.append(FoundMedia(ctype, data, digest.hex(), mid, trace_id, observation_id, field))
        return reference_token(ctype, mid)

    return take


def _replace(value: Any, take: Callable[[str], str | None], depth: int) -> Any:
    if isinstance(value, str):
        if len(value) >= MIN_CHARS and value.startswith("data:"):
            token = take(value)
            if token is not None:
                return token
        return value
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: _replace(v, take, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, take, depth + 1) for v in value]
    return value
