"""Media (contract 4.7): ``POST /api/public/media`` (an upload URL, or null when the bytes
are stored), ``PATCH /api/public/media/{id}`` (the upload's outcome), ``GET
/api/public/media/{id}`` (a short-lived download URL), and the server's own signed
routes that take and serve the bytes when media is stored locally:
``PUT /api/media/{project}/{id}/upload`` and ``GET /api/media/{project}/{id}``.

With S3 storage the upload and download URLs are presigned URLs of the bucket and the
bytes never pass through the server. See docs/media.md.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...ingest.media import media_id_of
from ...store.filters import parse_time
from ..audit import audit
from ..auth import ProjectKey
from ..doc_models import DocModel
from ..errors import ApiError, not_found
from ..media import (
    SAFE_HEADERS,
    check_media,
    digest_of,
    disposition,
    download_url,
    filename_of,
    sha256_b64,
)
from ..responses import JSON
from ..runtime import Runtime, runtime
from ..settings import Settings
from .body import json_body, ok, read_body, read_json_object

router = APIRouter()

#: The content types Langfuse's SDKs send (its ``MediaContentType``), all of them allowed
#: by the default of ``media_content_types``.
SDK_CONTENT_TYPES = (
    *("image/png", "image/jpeg", "image/jpg", "image/webp", "image/gif", "image/svg+xml"),
    *("image/tiff", "image/bmp", "image/avif", "image/heic"),
    *("audio/mpeg", "audio/mp3", "audio/wav", "audio/ogg", "audio/oga", "audio/aac"),
    *("audio/mp4", "audio/flac", "audio/opus", "audio/webm"),
    *("video/mp4", "video/webm", "video/ogg", "video/mpeg", "video/quicktime"),
    *("video/x-msvideo", "video/x-matroska"),
    *("text/plain", "text/html", "text/css", "text/csv", "text/markdown", "text/x-python"),
    *("application/javascript", "text/x-typescript", "application/x-yaml"),
    *("application/pdf", "application/msword", "application/vnd.ms-excel"),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    *("application/zip", "application/json", "application/xml", "application/octet-stream"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    *("application/rtf", "application/x-ndjson", "application/vnd.apache.parquet"),
    *("application/gzip", "application/x-tar", "application/x-7z-compressed"),
)
#: ``media_max_bytes`` by default: the documented bound of ``contentLength``.
DEFAULT_MAX_BYTES: int = Settings.media_max_bytes
#: The largest ``uploadHttpStatus`` and ``uploadTimeMs`` (their columns' integers).
MAX_STATUS = 2**31 - 1
MAX_TIME_MS = 2**63 - 1


class MediaBody(DocModel):
    """``POST /api/public/media``: register media by its SHA-256 (and optionally what
    refers to it). The content types and size a server takes are its settings'
    (``media_content_types``, ``media_max_bytes``): documented here are the defaults."""

    contentType: str = Field(
        description="The MIME type (parameters after ';' and case are ignored): by default"
        " these and any other image/, audio/, video/ or text/ type",
        json_schema_extra={"enum": list(SDK_CONTENT_TYPES)},
    )
    contentLength: int = Field(
        ge=0, le=DEFAULT_MAX_BYTES, description="Bytes; at most media_max_bytes (50 MiB)"
    )
    sha256Hash: str = Field(
        pattern=r"^[A-Za-z0-9+/]{43}=$", description="The SHA-256 of the bytes, base64"
    )
    traceId: str | None = Field(None, max_length=800)
    observationId: str | None = Field(None, max_length=800)
    datasetId: str | None = Field(None, description="Not used: datasetItemId names the item")
    datasetItemId: str | None = Field(None, max_length=800)
    field: str | None = Field(None, description="input, output, expectedOutput or metadata")


class UploadUrl(DocModel):
    """The media id and where to PUT the bytes; ``uploadUrl`` is null when they are
    stored already."""

    mediaId: str
    uploadUrl: str | None


class PatchMediaBody(DocModel):
    """``PATCH /api/public/media/{media_id}``: the outcome of the upload."""

    uploadedAt: datetime | None = Field(None, description="Absent or null: now")
    uploadHttpStatus: int = Field(
        ge=0, le=MAX_STATUS, description="A 2xx marks the bytes stored (they must be)"
    )
    uploadHttpError: str | None = None
    uploadTimeMs: int | None = Field(None, ge=0, le=MAX_TIME_MS)


class MediaRecord(DocModel):
    """A stored media record with a short-lived download URL (Langfuse's
    ``GetMediaResponse``)."""

    mediaId: str
    contentType: str
    contentLength: int
    uploadedAt: datetime
    url: str
    urlExpiry: datetime


#: The raw bytes of the signed media routes (any content type: the record's).
_BYTES = {"*/*": {"schema": {"type": "string", "format": "binary"}}}


def _base_url(request: Request, rt: Runtime) -> str:
    return rt.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")


def _whole(value: Any) -> Any:
    """``value`` with an integral float (``781.0``, an integer to JSON Schema) as an int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 800:
        raise ApiError(400, "Invalid request data", f"{key}: a string id")
    return value


@router.post("/api/public/media", responses=ok(UploadUrl), openapi_extra=json_body(MediaBody))
async def get_upload_url(request: Request, principal: ProjectKey) -> JSON:
    """Register media by its SHA-256; ``uploadUrl`` is null when the bytes are stored."""
    body = await read_json_object(request)
    rt = runtime(request)
    length = _whole(body.get("contentLength"))
    ctype = check_media(rt.settings, body.get("contentType"), length)
    digest = digest_of(body.get("sha256Hash"))
    media_id, key = media_id_of(digest), digest.hex()
    trace_id = _optional_str(body, "traceId")
    observation_id = _optional_str(body, "observationId")
    item_id = _optional_str(body, "datasetItemId")
    field = body.get("field") if isinstance(body.get("field"), str) else None
    project_id = principal.project_id
    media = rt.store.media

    def register(conn: Any) -> dict[str, Any]:
        row = media.register(conn, project_id, media_id, key, ctype, length)
        if trace_id:
            media.add_reference(
                conn, project_id, media_id, "trace", trace_id, observation_id, field
            )
        if item_id:
            media.add_reference(conn, project_id, media_id, "dataset_item", item_id, None, field)
        return row

    row = await rt.write(register)
    # Bytes this project uploaded need no upload. Bytes only another project uploaded
    # are asked for again (stored once all the same: blobs are named by their SHA-256):
    # a null uploadUrl would tell this project that another holds that file.
    stored = row["uploaded_at"] is not None and await run_in_threadpool(rt.blobs.exists, key)
    if stored:
        return JSON({"mediaId": media_id, "uploadUrl": None})
    if rt.blobs.direct:
        url = rt.blobs.upload_url(key, ctype, sha256_b64(key), rt.settings.media_url_seconds)
    else:
        url, _ = rt.media_urls.sign(_base_url(request, rt), "put", project_id, media_id)
    # An upload granted (bytes not stored yet): the signed PUT itself carries no key.
    detail = {"contentType": ctype, "contentLength": length, "traceId": trace_id}
    await audit(rt, principal, "media.upload", media_id, detail)
    return JSON({"mediaId": media_id, "uploadUrl": url})


@router.patch(
    "/api/public/media/{media_id}", status_code=204, openapi_extra=json_body(PatchMediaBody)
)
async def patch_media(request: Request, media_id: str, principal: ProjectKey) -> Response:
    """Record the outcome of an upload (``uploadedAt``, ``uploadHttpStatus``, ...)."""
    body = await read_json_object(request)
    status = _whole(body.get("uploadHttpStatus"))
    if not isinstance(status, int) or isinstance(status, bool) or not 0 <= status <= MAX_STATUS:
        raise ApiError(400, "Invalid request data", "uploadHttpStatus: required, an integer")
    at = parse_time(body.get("uploadedAt"), "uploadedAt") or datetime.now(UTC)
    error = body.get("uploadHttpError") if isinstance(body.get("uploadHttpError"), str) else None
    time_ms = _whole(body.get("uploadTimeMs"))
    time_ms = time_ms if isinstance(time_ms, int) and not isinstance(time_ms, bool) else None
    if time_ms is not None and not 0 <= time_ms <= MAX_TIME_MS:
        raise ApiError(400, "Invalid request data", f"uploadTimeMs: 0 to {MAX_TIME_MS}")
    rt = runtime(request)
    project_id = principal.project_id
    media = rt.store.media
    row = await rt.read(lambda c: media.get_media(c, project_id, media_id))
    if row is None:
        raise not_found(f"Media {media_id}")
    if 200 <= status < 300 and row["uploaded_at"] is None:
        # A success only this project's own upload can have made: blobs are shared by
        # their SHA-256, so "some project stored these bytes" is not enough (a project
        # could otherwise read another's file by its hash, or learn that it exists).
        if not rt.blobs.direct:
            raise ApiError(  # the server's own upload route marks what it received
                400, f"The bytes of media {media_id} were not uploaded to its URL", "Bad request"
            )
        since = rt.db.dialect.ts_parse(row["created_at"]) or datetime.now(UTC)
        if not await run_in_threadpool(rt.blobs.written_since, row["sha256"], since):
            raise ApiError(400, f"The bytes of media {media_id} are not in storage", "Bad request")
    error = error[:2000] if error else None
    await rt.write(
        lambda c: media.mark_uploaded(c, project_id, media_id, at, status, error, time_ms)
    )
    return Response(status_code=204)


@router.get("/api/public/media/{media_id}", responses=ok(MediaRecord))
async def get_media(request: Request, media_id: str, principal: ProjectKey) -> JSON:
    """The record with a short-lived download URL; 404 until its bytes are stored."""
    rt = runtime(request)
    project_id = principal.project_id
    row = await rt.read(lambda c: rt.store.media.get_media(c, project_id, media_id))
    if row is None or row["uploaded_at"] is None:
        raise not_found(f"Media {media_id}")
    url, exp = download_url(rt.blobs, rt.media_urls, _base_url(request, rt), project_id, row)
    d = rt.db.dialect
    return JSON(
        {
            "mediaId": row["id"],
            "contentType": row["content_type"],
            "contentLength": row["content_length"],
            "uploadedAt": d.ts_out(row["uploaded_at"]),
            "url": url,
            "urlExpiry": datetime.fromtimestamp(exp, UTC).isoformat().replace("+00:00", "Z"),
        }
    )


@router.put(
    "/api/media/{project_id}/{media_id}/upload",
    response_class=Response,
    responses={200: {"description": "Stored (an empty body)", "content": {}}},
    openapi_extra={"requestBody": {"required": True, "content": _BYTES}},
)
async def upload(
    request: Request, project_id: str, media_id: str, exp: str = "", sig: str = ""
) -> Response:
    """Take the bytes of a registered media record (local storage), checked against its
    SHA-256 (and the ``x-amz-checksum-sha256`` header), stored durably before the 200."""
    rt = runtime(request)
    rt.media_urls.check("put", project_id, media_id, exp, sig)
    media = rt.store.media
    row = await rt.read(lambda c: media.get_media(c, project_id, media_id))
    if row is None:
        raise not_found(f"Media {media_id}")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != row["content_type"]:
        raise ApiError(
            400, f"Content-Type {ctype or '(none)'!r} is not the registered {row['content_type']!r}"
        )
    checksum = request.headers.get("x-amz-checksum-sha256")
    if checksum is not None and checksum != sha256_b64(row["sha256"]):
        raise ApiError(400, "x-amz-checksum-sha256 is not the registered SHA-256", "Bad request")
    data = await read_body(request, min(rt.settings.media_max_bytes, row["content_length"]))
    if len(data) != row["content_length"]:
        raise ApiError(
            400, f"Upload has {len(data)} bytes, not the registered {row['content_length']}"
        )
    if hashlib.sha256(data).hexdigest() != row["sha256"]:
        raise ApiError(400, "The uploaded bytes do not match the media id's SHA-256", "Bad request")
    await run_in_threadpool(rt.blobs.write, row["sha256"], [data])
    now = datetime.now(UTC)
    await rt.write(lambda c: media.mark_uploaded(c, project_id, media_id, now, 200))
    return Response(status_code=200)


@router.get(
    "/api/media/{project_id}/{media_id}",
    response_class=Response,
    responses={
        200: {
            "description": "The bytes, with the record's content type",
            "content": _BYTES,
            "headers": {
                "Content-Disposition": {
                    "description": "inline for raster images, audio and video;"
                    " attachment otherwise",
                    "schema": {"type": "string"},
                },
                "Digest": {"description": "sha-256=<base64>", "schema": {"type": "string"}},
            },
        }
    },
)
async def download(
    request: Request, project_id: str, media_id: str, exp: str = "", sig: str = ""
) -> Response:
    """The bytes of a media record (signed URL): inline for raster images, audio and
    video, an attachment otherwise, sandboxed and never sniffed."""
    rt = runtime(request)
    rt.media_urls.check("get", project_id, media_id, exp, sig)
    row = await rt.read(lambda c: rt.store.media.get_media(c, project_id, media_id))
    if row is None or row["uploaded_at"] is None:
        raise not_found(f"Media {media_id}")
    try:
        data = await run_in_threadpool(rt.blobs.read, row["sha256"])
    except FileNotFoundError:
        raise not_found(f"Media {media_id}") from None
    ctype = row["content_type"]
    headers = {
        **SAFE_HEADERS,
        "Content-Disposition": disposition(ctype, filename_of(media_id, ctype)),
        "Digest": "sha-256=" + base64.b64encode(bytes.fromhex(row["sha256"])).decode(),
    }
    return Response(data, media_type=ctype, headers=headers)
