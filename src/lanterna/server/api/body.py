"""Reading request bodies with a size limit (also after gzip/deflate decompression),
and JSON bodies with a clear 400."""

from __future__ import annotations

import zlib
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request

from ... import _json
from ...ingest.langfuse_events import check_depth
from ..doc_models import DocModel, answer, request_body
from ..errors import ApiError
from ..runtime import runtime


async def read_body(request: Request, limit: int | None = None) -> bytes:
    """The raw body; 413 when it is larger than ``limit`` (default ``max_request_bytes``)."""
    if limit is None:
        limit = runtime(request).settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"Request body is larger than the limit of {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"Request body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


#: A JSON-body string's pattern when the route wants it not blank: a character that is
#: not whitespace (Python's, as ``str.strip`` sees it, spelled out for any regex engine),
#: and, as every body string, no NUL (:func:`read_json`).
NOT_BLANK = r"^[^\x00]*[^\s\x1c-\x1f\x85\x00][^\x00]*$"


_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def _inflate(raw: bytes, encoding: str, limit: int) -> bytes:
    """Decompress a gzip or deflate body, refusing more than ``limit`` bytes of output."""
    inflater = zlib.decompressobj(wbits=_WBITS[encoding])
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise ApiError(400, f"Failed to decompress {encoding} body: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise ApiError(413, f"Decompressed body is larger than the limit of {limit} bytes")
    if not inflater.eof:
        raise ApiError(400, f"Failed to decompress {encoding} body: truncated stream")
    return out


async def read_decoded_body(request: Request) -> bytes:
    """The body after its ``Content-Encoding`` (gzip, deflate or none): 413 above
    ``max_request_bytes`` before or after decompression, 415 for other encodings."""
    raw = await read_body(request)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in _WBITS:
        return _inflate(raw, encoding, runtime(request).settings.max_request_bytes)
    if encoding not in ("", "identity"):
        raise ApiError(
            415, f"Unsupported content encoding {encoding!r}: send gzip, deflate or none"
        )
    return raw


async def read_json(request: Request, *, depth_checked: bool = True) -> Any:
    """The body parsed as JSON; 400 with the parser's reason when it is not JSON, or
    (unless ``depth_checked`` is false: the route checks each part itself) when it nests
    deeper than an ingestion event may (``MAX_DEPTH``): such a value could be stored
    but not encoded back in the answers that embed it."""
    raw = await read_body(request)
    if not raw.strip():
        raise ApiError(400, "Invalid request data", "empty body, expected JSON")
    try:
        value = _json.loads(raw)
    except _json.JSONDecodeError as exc:
        raise ApiError(400, "Invalid request data", f"malformed JSON: {exc}") from None
    # JSON can only carry a NUL escaped; a clean body costs one byte search.
    if b"\\u0000" in raw and _holds_nul(value):
        raise ApiError(
            400, "Invalid request data", "a string holds a NUL character (\\u0000): not stored"
        )
    if depth_checked:
        check_depth(value)  # Invalid: a 400, as for a score
    return value


def _holds_nul(value: Any) -> bool:
    """Whether a string (or key) anywhere in ``value`` holds a NUL character, which
    PostgreSQL cannot store in text (and SQLite would keep as a surprise)."""
    stack = [value]
    while stack:  # no recursion: bodies may nest as deep as the JSON parser allows
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            if any("\x00" in key for key in item):
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


async def read_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object (400 otherwise)."""
    value = await read_json(request)
    if not isinstance(value, dict):
        raise ApiError(400, "Invalid request data", "expected a JSON object")
    return value


class Deleted(DocModel):
    """The answer of a delete: ``{"message": ...}``."""

    message: str


def ok(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """A route's documented 200 answer (``responses=``)."""
    return {200: answer(model, "OK")}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """A route's documented, required JSON body (``openapi_extra=``); the route reads
    it with :func:`read_json` and checks it itself (so a bad field is a 400 naming it)."""
    return request_body(model.model_json_schema)
