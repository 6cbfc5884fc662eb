"""Media on the server side: the blob store the settings choose, which content types are
allowed, signed URLs for the server's own upload and download routes, and the response
headers media is served with (never rendered as a page of the app's origin).

The routes are in ``api/media.py``; the dashboard shows media through the same signed
download URLs (``ui/media_view.py``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode

from ..alerts.secretbox import load_key
from ..ingest.media import FoundMedia
from ..store.db import Conn
from ..store.interface import BlobStore, LocalBlobs, S3Blobs
from .errors import ApiError
from .settings import Settings

if TYPE_CHECKING:
    from .runtime import Runtime

T = TypeVar("T")

#: What the Langfuse SDKs may send (their ``MediaContentType``): the default of
#: ``media_content_types``.
DEFAULT_TYPES = (
    "image/*",
    "audio/*",
    "video/*",
    "text/*",
    "application/pdf",
    "application/json",
    "application/xml",
    "application/x-yaml",
    "application/x-ndjson",
    "application/javascript",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/rtf",
    "application/vnd.apache.parquet",
    "application/zip",
    "application/gzip",
    "application/x-tar",
    "application/x-7z-compressed",
    "application/octet-stream",
)

#: Types shown inline (an ``<img>``, ``<audio>``, ``<video>``): formats a browser never
#: runs script from. Everything else (SVG, HTML, PDF, ...) is served as an attachment.
INLINE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/jpg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
    }
)
INLINE_FAMILIES = ("audio/", "video/")

#: Served with every media response: no sniffing, and a sandbox: even opened on its own,
#: a file is a page of an opaque origin that may run nothing.
SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'; media-src 'self'",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "private, max-age=300",
}


def is_inline(content_type: str) -> bool:
    """Whether media of this type is shown inline (rather than offered as a download)."""
    return content_type in INLINE_TYPES or content_type.startswith(INLINE_FAMILIES)


def disposition(content_type: str, filename: str) -> str:
    """The ``Content-Disposition`` media of this type is served with."""
    kind = "inline" if is_inline(content_type) else "attachment"
    return f'{kind}; filename="{filename}"'


def filename_of(media_id: str, content_type: str) -> str:
    """A download name: the media id with an extension from the type."""
    sub = content_type.partition("/")[2].split("+")[0].split(";")[0]
    ext = {"jpeg": "jpg", "mpeg": "mp3", "x-python": "py", "plain": "txt"}.get(sub, sub)
    safe = "".join(c for c in ext if c.isalnum() or c in "-.")[:16] or "bin"
    return f"{media_id}.{safe}"


def blob_store(settings: Settings) -> BlobStore:
    """The blob store the settings choose."""
    if settings.media_storage == "s3":
        return S3Blobs(
            settings.media_s3_bucket,
            prefix=settings.media_s3_prefix,
            endpoint_url=settings.media_s3_endpoint_url or None,
            region=settings.media_s3_region or None,
            access_key_id=settings.media_s3_access_key_id or None,
            secret_access_key=settings.media_s3_secret_access_key or None,
        )
    return LocalBlobs(settings.media_folder)


@dataclass(frozen=True)
class ContentTypes:
    """The allowed content types (exact, or ``family/*``)."""

    exact: frozenset[str]
    families: tuple[str, ...]

    @classmethod
    def parse(cls, setting: str) -> ContentTypes:
        """From the ``media_content_types`` setting (empty: :data:`DEFAULT_TYPES`)."""
        items = [t.strip().lower() for t in setting.split(",") if t.strip()] or DEFAULT_TYPES
        families = tuple(t[:-1] for t in items if t.endswith("/*"))
        return cls(frozenset(t for t in items if not t.endswith("/*")), families)

    def allows(self, content_type: str) -> bool:
        """Whether media of this type may be stored."""
        return content_type in self.exact or content_type.startswith(self.families)


def media_allowed(settings: Settings) -> Callable[[str, int], bool]:
    """Whether media of a content type and size may be stored (extraction's test)."""
    types = ContentTypes.parse(settings.media_content_types)
    return lambda ctype, size: types.allows(ctype) and size <= settings.media_max_bytes


def check_media(settings: Settings, content_type: object, content_length: object) -> str:
    """The normalised content type of a media object; 400 for a type not allowed, one
    larger than ``media_max_bytes``, or a malformed type or length (a 400, as Langfuse
    answers and its spec documents: no 413 or 415 there)."""
    if not isinstance(content_type, str) or "/" not in content_type or len(content_type) > 200:
        raise ApiError(400, "Invalid request data", "contentType: required, a MIME type")
    ctype = content_type.split(";")[0].strip().lower()
    if not ContentTypes.parse(settings.media_content_types).allows(ctype):
        raise ApiError(
            400,
            f"Media of content type {ctype!r} is not allowed on this server"
            " (LANTERNA_MEDIA_CONTENT_TYPES)",
            "Unsupported media type",
        )
    if (
        not isinstance(content_length, int)
        or isinstance(content_length, bool)
        or content_length < 0
    ):
        raise ApiError(400, "Invalid request data", "contentLength: required, a byte count")
    if content_length > settings.media_max_bytes:
        raise ApiError(
            400,
            f"Media of {content_length} bytes is larger than the limit of"
            f" {settings.media_max_bytes} bytes (LANTERNA_MEDIA_MAX_BYTES)",
            "Payload too large",
        )
    return ctype


def digest_of(sha256_b64: object) -> bytes:
    """The 32 bytes of a base64 SHA-256 (as the SDK sends it); 400 when it is not one."""
    if isinstance(sha256_b64, str):
        try:
            raw = base64.b64decode(sha256_b64, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == 32:
            return raw
    raise ApiError(400, "Invalid request data", "sha256Hash: required, a base64 SHA-256")


def sha256_b64(sha256_hex: str) -> str:
    """The base64 form of a hex SHA-256 (the ``x-amz-checksum-sha256`` header's form)."""
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode()


class UrlSigner:
    """Signs the server's own media URLs: ``exp`` (seconds since the epoch) and an HMAC
    over the operation, project, media id and expiry, with a key derived from the server
    key (``secret_key``; every process sharing a database must hold the same)."""

    def __init__(self, settings: Settings, clock: object = time.time) -> None:
        server_key = load_key(settings.secret_key, settings.data_dir)
        self._key = hmac.new(server_key, b"lanterna media urls", hashlib.sha256).digest()
        #: How long a signed URL stays valid.
        self.seconds = settings.media_url_seconds
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())  # type: ignore[operator]

    def _mac(self, op: str, project_id: str, media_id: str, exp: int) -> str:
        message = f"{op}\n{project_id}\n{media_id}\n{exp}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign(self, base_url: str, op: str, project_id: str, media_id: str) -> tuple[str, int]:
        """The signed URL of ``op`` (``get`` or ``put``) and its expiry (epoch seconds)."""
        exp = self._now() + self.seconds
        path = f"/api/media/{quote(project_id, safe='')}/{quote(media_id, safe='')}"
        if op == "put":
            path += "/upload"
        query = urlencode({"exp": exp, "sig": self._mac(op, project_id, media_id, exp)})
        return f"{base_url.rstrip('/')}{path}?{query}", exp

    def check(self, op: str, project_id: str, media_id: str, exp: str, sig: str) -> None:
        """403 unless the signature is this server's and the URL has not expired."""
        if not exp.isdigit() or not hmac.compare_digest(
            self._mac(op, project_id, media_id, int(exp)), sig
        ):
            raise ApiError(403, "Invalid media URL signature", "Forbidden")
        if int(exp) < self._now():
            raise ApiError(403, "The media URL has expired; ask for a new one", "Forbidden")


def download_url(
    blobs: BlobStore, signer: UrlSigner, base_url: str, project_id: str, row: dict[str, Any]
) -> tuple[str, int]:
    """A short-lived download URL of a stored media record and its expiry (epoch
    seconds): presigned by the bucket, or the server's own signed route."""
    if blobs.direct:
        seconds = signer.seconds
        name = filename_of(row["id"], row["content_type"])
        url = blobs.download_url(row["sha256"], row["content_type"], name, seconds)
        return url, int(time.time()) + seconds
    return signer.sign(base_url, "get", project_id, row["id"])


def with_media(
    rt: Runtime, project_id: str, found: list[FoundMedia], unit: Callable[[Conn], T]
) -> Callable[[Conn], T]:
    """Store media taken out of ingested events: the blobs now (durably, once per
    content), and a unit of work that records them with their references, then runs
    ``unit`` (the events), in one transaction."""
    for item in {m.sha256: m for m in found}.values():
        if not rt.blobs.exists(item.sha256):
            rt.blobs.write(item.sha256, [item.data])
    media = rt.store.media

    def work(conn: Conn) -> T:
        stamp = datetime.now(UTC)
        for m in found:
            media.register(conn, project_id, m.media_id, m.sha256, m.content_type, len(m.data))
            media.mark_uploaded(conn, project_id, m.media_id, stamp, 200)
            media.add_reference(
                conn, project_id, m.media_id, "trace", m.trace_id, m.observation_id, m.field
            )
        return unit(conn)

    return work


def with_media_origin(headers: dict[str, str], origin: str) -> dict[str, str]:
    """A page's security headers letting images, audio and video load from ``origin``
    too (the S3 endpoint the presigned download URLs point at)."""
    csp = headers["Content-Security-Policy"].replace(
        "img-src 'self' data:;", f"img-src 'self' data: {origin}; media-src 'self' {origin};"
    )
    return {**headers, "Content-Security-Policy": csp}
