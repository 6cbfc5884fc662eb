"""Media referred to by an input, output or metadata value, for the trace page: the
``@@@langfuseMedia:type=...|id=...|source=...@@@`` tokens the SDKs put in place of
images, audio and files, resolved to their stored records with short-lived download
URLs. Images are shown inline (thumbnail, click to enlarge), audio and video with a
player, anything else (SVG, HTML, PDF, ...) as a download: the media route serves it as a
sandboxed attachment, so it never runs in the dashboard's origin."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ... import _json
from ...store.db import Conn
from ...store.interface import BlobStore, Store
from ..media import UrlSigner, download_url, filename_of, is_inline

MARK = "@@@langfuseMedia:"
TOKEN = re.compile(
    r"@@@langfuseMedia:type=([^|@]{1,200})\|id=([A-Za-z0-9_-]{1,64})\|source=([a-z0-9_]{1,40})@@@"
)


@dataclass
class MediaItem:
    """One referenced media: how to show it, its URL, type and size."""

    media_id: str
    kind: str  # image | audio | video | file | missing
    content_type: str
    size: int | None = None
    url: str = ""
    filename: str = ""


def referenced_ids(*values: Any) -> list[str]:
    """Media ids referred to in ``values`` (JSON values), first appearance first."""
    ids: list[str] = []
    for value in values:
        if value is None:
            continue
        text = value if isinstance(value, str) else _json.dumps(value)
        if MARK not in text:  # the common case: one substring test, no regex
            continue
        ids += [m.group(2) for m in TOKEN.finditer(text)]
    return list(dict.fromkeys(ids))


def _kind(content_type: str) -> str:
    if content_type.startswith("image/") and is_inline(content_type):
        return "image"
    if content_type.startswith("audio/"):
        return "audio"
    if content_type.startswith("video/"):
        return "video"
    return "file"


def media_items(
    store: Store,
    conn: Conn,
    blobs: BlobStore,
    signer: UrlSigner,
    base_url: str,
    project_id: str,
    *values: Any,
) -> list[MediaItem]:
    """The media the values refer to, with download URLs (``missing`` for a reference
    whose bytes are not stored)."""
    ids = referenced_ids(*values)
    if not ids:
        return []
    rows = store.media.get_many(conn, project_id, ids)
    items = []
    for media_id in ids:
        row = rows.get(media_id)
        if row is None or row["uploaded_at"] is None:
            items.append(MediaItem(media_id, "missing", ""))
            continue
        url, _ = download_url(blobs, signer, base_url, project_id, row)
        ctype = row["content_type"]
        items.append(
            MediaItem(
                media_id,
                _kind(ctype),
                ctype,
                row["content_length"],
                url,
                filename_of(media_id, ctype),
            )
        )
    return items
