"""``POST /api/public/ingestion``: Langfuse event batches, answered 207 after commit."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field

from ... import _json
from ...ingest.langfuse_events import EventError, ParsedBatch, read_batch
from ...ingest.score_configs import check_batch, config_ids
from ...store.db import Conn
from ...store.interface import PreparedEvents, Store
from ..auth import AnyKey
from ..doc_models import DocModel, answer
from ..errors import ApiError
from ..responses import JSON
from ..runtime import runtime
from .body import json_body, read_decoded_body

router = APIRouter()

EventType = Literal[
    "trace-create",
    "span-create",
    "span-update",
    "generation-create",
    "generation-update",
    "event-create",
    "agent-create",
    "tool-create",
    "chain-create",
    "retriever-create",
    "evaluator-create",
    "embedding-create",
    "guardrail-create",
    "observation-create",
    "observation-update",
    "score-create",
    "sdk-log",
]


class IngestionEvent(DocModel):
    """One event of a batch; its ``body`` is the trace, observation or score (the fields
    of docs/api.md). A bad event is refused alone, in the answer's ``errors``."""

    id: str = Field(min_length=1)
    type: EventType
    timestamp: str = Field(description="ISO 8601 with a UTC offset")
    body: dict[str, Any]
    metadata: Any = None


class IngestionBatch(DocModel):
    """``POST /api/public/ingestion``'s body (may be sent gzip- or deflate-encoded)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "batch": [
                        {
                            "id": "evt-1",
                            "type": "trace-create",
                            "timestamp": "2024-05-01T12:00:00.000Z",
                            "body": {"id": "trace-1", "name": "chat", "userId": "user-7"},
                        },
                        {
                            "id": "evt-2",
                            "type": "generation-create",
                            "timestamp": "2024-05-01T12:00:00.100Z",
                            "body": {
                                "id": "gen-1",
                                "traceId": "trace-1",
                                "name": "answer",
                                "model": "gpt-4o-mini",
                                "startTime": "2024-05-01T12:00:00.100Z",
                                "endTime": "2024-05-01T12:00:01.300Z",
                                "input": [{"role": "user", "content": "Hi"}],
                                "output": {"role": "assistant", "content": "Hello!"},
                                "usageDetails": {"input": 8, "output": 3},
                            },
                        },
                        {
                            "id": "evt-3",
                            "type": "score-create",
                            "timestamp": "2024-05-01T12:00:02.000Z",
                            "body": {"traceId": "trace-1", "name": "helpful", "value": 1},
                        },
                    ]
                }
            ]
        }
    )

    batch: list[IngestionEvent]
    metadata: Any = None


class IngestionSuccess(DocModel):
    """An event stored (committed before the answer)."""

    id: str
    status: int


class IngestionError(DocModel):
    """An event refused: nothing of it was stored; ``error`` says why."""

    id: str
    status: int
    message: str
    error: Any = None


class IngestionResult(DocModel):
    """The 207 answer: each event of the batch in one of the lists (``sdk-log`` in none)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "successes": [{"id": "evt-1", "status": 201}, {"id": "evt-2", "status": 201}],
                    "errors": [
                        {
                            "id": "evt-3",
                            "status": 400,
                            "message": "Invalid request data",
                            "error": "value: required, a number or a string",
                        }
                    ],
                }
            ]
        }
    )

    successes: list[IngestionSuccess]
    errors: list[IngestionError]


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


def _prepare(
    store: Store,
    conn: Conn,
    raw: bytes,
    project_id: str,
    scores_only: bool,
    limit: int,
    take: Callable[[int], None],
) -> tuple[tuple[ParsedBatch, list[EventError]], PreparedEvents | None]:
    """Parse, validate and pre-merge a batch (CPU work, kept out of the writer);
    ``take`` counts its events against the project's rate limit (429 when used up)."""
    try:
        payload = _json.loads(raw)
    except _json.JSONDecodeError as exc:
        payload = _with_lone_surrogates(raw, exc)
    if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
        raise ApiError(400, "Invalid request data", "body must be an object with a 'batch' array")
    batch: list[Any] = payload["batch"]
    take(len(batch))
    errors: list[EventError] = []
    if len(raw) > limit:
        batch, errors = _oversize_errors(batch, limit)
    parsed = read_batch(batch, scores_only=scores_only)
    wanted = config_ids(parsed.events)
    if wanted:  # only scores that name a config cost a lookup
        check_batch(parsed, store.score_configs.get_many(conn, project_id, wanted))
    events = parsed.events
    prepared = store.ingest.prepare_events(conn, project_id, events) if events else None
    return (parsed, errors), prepared


def _with_lone_surrogates(raw: bytes, exc: Exception) -> Any:
    """A batch orjson refused for a lone surrogate escape (``\\ud800`` without its
    pair), parsed by the standard library, which lets it through, so that only the
    events holding one are refused (per-event errors of ``read_batch``); any other
    malformed body is a 400."""
    if "surrogate" in str(exc):
        import json

        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            pass
    raise ApiError(400, "Invalid request data", f"malformed JSON: {exc}") from None


@router.post(
    "/api/public/ingestion",
    status_code=207,
    responses={207: answer(IngestionResult, "Each event's outcome")},
    openapi_extra=json_body(IngestionBatch),
)
async def ingest(request: Request, principal: AnyKey) -> JSON:
    """Validate each event, commit the good ones, answer ``{successes, errors}``."""
    rt = runtime(request)
    raw = await read_decoded_body(request)  # gzip/deflate, capped as for OTLP
    project_id = principal.project_id
    scores_only = principal.scope == "scores"
    limit = rt.settings.max_event_bytes
    # Off the event loop: a 100-event batch is milliseconds of parsing and merging.
    take = partial(rt.quota.take, project_id, "ingest")
    parsed, errors = await rt.prepare_and_commit(
        lambda conn: _prepare(rt.store, conn, raw, project_id, scores_only, limit, take)
    )
    await rt.share_quota()
    return JSON(
        {
            "successes": [{"id": i, "status": 201} for i in parsed.successes],
            "errors": [e.as_json() for e in errors + parsed.errors],
        },
        status_code=207,
    )
