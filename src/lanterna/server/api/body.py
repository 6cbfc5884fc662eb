"""Reading request bodies with a size limit, and JSON bodies with a clear 400."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ... import _json
from ..errors import ApiError
from ..runtime import runtime


async def read_body(request: Request) -> bytes:
    """The raw body; 413 when it is larger than ``max_request_bytes``."""
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


async def read_json(request: Request) -> Any:
    """The body parsed as JSON; 400 with the parser's reason when it is not JSON."""
    raw = await read_body(request)
    if not raw.strip():
        raise ApiError(400, "Invalid request data", "empty body, expected JSON")
    try:
        return _json.loads(raw)
    except _json.JSONDecodeError as exc:
        raise ApiError(400, "Invalid request data", f"malformed JSON: {exc}") from None


async def read_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object (400 otherwise)."""
    value = await read_json(request)
    if not isinstance(value, dict):
        raise ApiError(400, "Invalid request data", "expected a JSON object")
    return value
