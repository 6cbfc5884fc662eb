"""``POST /api/public/ingestion``: Langfuse event batches, answered 207 after commit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ... import _json
from ...ingest.langfuse_events import EventError, read_batch
from ...store.write import apply_events
from ..auth import AnyKey
from ..errors import ApiError
from ..responses import JSON
from ..runtime import runtime
from .body import read_body

router = APIRouter()


def _oversize_errors(batch: list[Any], limit: int) -> tuple[list[Any], list[EventError]]:
    kept: list[Any] = []
    errors: list[EventError] = []
    for event in batch:
        if len(_json.dumpb(event)) > limit:
            raw_id = event.get("id") if isinstance(event, dict) else None
            errors.append(
                EventError(
                    raw_id if isinstance(raw_id, str) else "unknown",
                    413,
                    "Event too large",
                    f"a single event may hold at most {limit} bytes",
                )
            )
        else:
            kept.append(event)
    return kept, errors


@router.post("/api/public/ingestion", status_code=207)
async def ingest(request: Request, principal: AnyKey) -> JSON:
    """Validate each event, commit the good ones, answer ``{successes, errors}``."""
    rt = runtime(request)
    raw = await read_body(request)
    try:
        payload = _json.loads(raw)
    except _json.JSONDecodeError as exc:
        raise ApiError(400, "Invalid request data", f"malformed JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
        raise ApiError(400, "Invalid request data", "body must be an object with a 'batch' array")
    batch: list[Any] = payload["batch"]
    errors: list[EventError] = []
    limit = rt.settings.max_event_bytes
    if len(raw) > limit:
        batch, errors = _oversize_errors(batch, limit)
    parsed = read_batch(batch, scores_only=principal.scope == "scores")
    if parsed.events:
        project_id = principal.project_id
        events = parsed.events
        await rt.write(lambda conn: apply_events(conn, project_id, events))
    return JSON(
        {
            "successes": [{"id": i, "status": 201} for i in parsed.successes],
            "errors": [e.as_json() for e in errors + parsed.errors],
        },
        status_code=207,
    )
