"""Scores (contract 4.2): create, list (v1 legacy and v2), get, delete.

``POST /api/public/scores`` takes one score object (answer ``200 {id}``) or, as the
langfuse 5.x Python SDK sends them, a JSON list of scores (answer ``202 {"message":
"Accepted"}``, or ``207 {accepted, rejected, errors}`` when some were refused). Each
score is validated exactly like an ingestion ``score-create`` event and written through
the same merge path; a Bearer public key may create scores but read nothing.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import QueryParams

from ...ingest.events import SCORE_DATA_TYPES, SCORE_SOURCES, DomainEvent
from ...ingest.langfuse_events import Invalid, new_id, read_event
from ...store import scores as q
from ...store.dialect import Dialect
from ...store.filters import parse_filter, parse_time
from ...store.write import apply_events
from ...timeutil import format_ts, now
from ..auth import AnyKey, ProjectKey
from ..errors import ApiError, not_found
from ..responses import JSON
from ..runtime import runtime
from ..shapes import score_json
from .body import read_json
from .params import bad_request, field_groups, page_of

router = APIRouter()


# --- create ------------------------------------------------------------------------


def score_event(body: Any, received: str) -> DomainEvent:
    """One ``CreateScoreRequest`` as the domain event a ``score-create`` would make.

    A missing or empty ``id`` gets a fresh uuid. Raises :class:`Invalid`.
    """
    if not isinstance(body, dict):
        raise Invalid("each score must be a JSON object")
    if body.get("source") == "EVAL":
        raise Invalid("source: EVAL is reserved for evaluator outputs; use API or ANNOTATION")
    if body.get("id") is None or body.get("id") == "":
        body = {**body, "id": new_id()}
    # The same validation and normalisation as ingestion (Langfuse wraps the body in a
    # score-create event too), so both routes store identical rows.
    envelope = {"id": new_id(), "type": "score-create", "timestamp": received, "body": body}
    _event_id, event = read_event(envelope)
    assert event is not None  # the body has an id, so there is always an entity
    return event


@router.post("/api/public/scores")
async def create_scores(request: Request, principal: AnyKey) -> JSON:
    """Create one score (``200 {id}``) or a list of scores (``202`` / ``207``)."""
    payload = await read_json(request)
    received = format_ts(now())
    project_id = principal.project_id
    rt = runtime(request)
    if isinstance(payload, dict):
        try:
            event = score_event(payload, received)
        except Invalid as exc:
            raise ApiError(400, str(exc)) from None
        await rt.write(lambda conn: apply_events(conn, project_id, [event]))
        return JSON({"id": event.entity_id})
    if not isinstance(payload, list):
        raise ApiError(400, "expected a score object or a list of score objects")
    if not payload:
        raise ApiError(400, "expected at least one score")
    events: list[DomainEvent] = []
    errors: list[dict[str, Any]] = []
    for index, body in enumerate(payload):
        try:
            events.append(score_event(body, received))
        except Invalid as exc:
            raw_id = body.get("id") if isinstance(body, dict) else None
            errors.append(
                {
                    "message": f"score {index}: {exc}",
                    "index": index,
                    "id": raw_id if isinstance(raw_id, str) else None,
                }
            )
    if events:
        await rt.write(lambda conn: apply_events(conn, project_id, events))
    if not errors:
        return JSON({"message": "Accepted"}, status_code=202)
    return JSON(
        {"accepted": len(events), "rejected": len(errors), "errors": errors}, status_code=207
    )


# --- query parameters --------------------------------------------------------------


def _bad(detail: str) -> ApiError:
    # Query problems answer like the other list routes: a fixed message, the detail.
    return ApiError(400, "Invalid request data", detail)


def _int(params: QueryParams, name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise _bad(f"{name}: expected an integer, got {raw!r}") from None


def _text(params: QueryParams, name: str) -> str | None:
    raw = params.get(name)
    return raw if raw else None


def _choice(params: QueryParams, name: str, allowed: tuple[str, ...]) -> str | None:
    raw = _text(params, name)
    if raw is not None and raw not in allowed:
        raise _bad(f"{name}: must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _csv(params: QueryParams, name: str) -> list[str]:
    return [part.strip() for raw in params.getlist(name) for part in raw.split(",") if part.strip()]


def _many(params: QueryParams, name: str) -> list[str]:
    return [raw for raw in params.getlist(name) if raw]


def _query(params: QueryParams, *, traces_only: bool) -> q.ScoreQuery:
    """The list filters from the query string; FilterError or ApiError when malformed."""
    query = q.ScoreQuery(traces_only=traces_only)
    for attr, name in (
        ("user_id", "userId"),
        ("name", "name"),
        ("config_id", "configId"),
        ("session_id", "sessionId"),
        ("dataset_run_id", "datasetRunId"),
        ("trace_id", "traceId"),
        ("queue_id", "queueId"),
    ):
        setattr(query, attr, _text(params, name))
    query.from_timestamp = parse_time(_text(params, "fromTimestamp"), "fromTimestamp")
    query.to_timestamp = parse_time(_text(params, "toTimestamp"), "toTimestamp")
    query.source = _choice(params, "source", SCORE_SOURCES)
    query.data_type = _choice(params, "dataType", SCORE_DATA_TYPES)
    query.environments = _many(params, "environment")
    query.trace_tags = _many(params, "traceTags")
    query.score_ids = _csv(params, "scoreIds")
    query.observation_ids = _csv(params, "observationId")
    query.filters = parse_filter(params.get("filter"))
    operator, raw_value = _text(params, "operator"), _text(params, "value")
    if (operator is None) != (raw_value is None):
        raise _bad("operator and value must be given together")
    if operator is not None and raw_value is not None:
        if operator not in q.VALUE_OPERATORS:
            raise _bad(f"operator: must be one of {', '.join(q.VALUE_OPERATORS)}")
        try:
            value = float(raw_value)
        except ValueError:
            raise _bad(f"value: expected a number, got {raw_value!r}") from None
        if not math.isfinite(value):
            raise _bad("value: must be a finite number")
        query.operator, query.value = operator, value
    return query


# --- shapes --------------------------------------------------------------------------


def _trace_part(d: Dialect, row: dict[str, Any]) -> dict[str, Any] | None:
    """``trace: {userId, tags, environment, sessionId}`` for a score on a trace."""
    if row["trace_id"] is None:
        return None
    return {
        "userId": row["trace_user_id"],
        "tags": d.json_out(row["trace_tags"]) or [],
        "environment": row["trace_environment"],
        "sessionId": row["trace_session_id"],
    }


def _v1(d: Dialect, row: dict[str, Any]) -> dict[str, Any]:
    """ScoreV1: the legacy trace-score shape (no session or dataset-run target)."""
    out = score_json(d, row)
    del out["sessionId"], out["datasetRunId"]
    return out


def _list(request: Request, project_id: str, *, v1: bool) -> JSON:
    params = request.query_params
    paging = page_of(_int(params, "page"), _int(params, "limit"))
    groups = field_groups(params.get("fields"), ("score", "trace"), ("score", "trace"))
    with_trace = "trace" in groups
    rt = runtime(request)
    with bad_request():
        query = _query(params, traces_only=v1)
        if not with_trace and query.reads_trace(query.conditions()):
            raise _bad("filters on the trace (userId, traceTags) need 'trace' in fields")
        rows, total = rt.read_sync(
            lambda c: q.list_scores(c, project_id, query, limit=paging.limit, offset=paging.offset)
        )
    d = rt.db.dialect
    data = []
    for row in rows:
        item = _v1(d, row) if v1 else score_json(d, row)
        if with_trace:
            # Older generated clients require the trace object on every v1 item.
            item["trace"] = _trace_part(d, row)
        data.append(item)
    return JSON(paging.envelope(data, total))


# --- read and delete ---------------------------------------------------------------


@router.get("/api/public/v2/scores")
def list_scores_v2(request: Request, principal: ProjectKey) -> JSON:
    """A page of scores (trace, observation, session and dataset-run scores), newest first."""
    return _list(request, principal.project_id, v1=False)


@router.get("/api/public/v2/scores/{score_id:path}")
def get_score_v2(request: Request, score_id: str, principal: ProjectKey) -> JSON:
    """One score of any target; 404 when the project has no such score."""
    rt = runtime(request)
    row = rt.read_sync(lambda c: q.get_score(c, principal.project_id, score_id))
    if row is None:
        raise not_found(f"Score {score_id}")
    return JSON(score_json(rt.db.dialect, row))


@router.get("/api/public/scores")
def list_scores_v1(request: Request, principal: ProjectKey) -> JSON:
    """The legacy list: trace scores only, in the ScoreV1 shape, each with its trace."""
    return _list(request, principal.project_id, v1=True)


@router.get("/api/public/scores/{score_id:path}")
def get_score_v1(request: Request, score_id: str, principal: ProjectKey) -> JSON:
    """One trace score in the ScoreV1 shape; 404 for other targets or unknown ids."""
    rt = runtime(request)
    row = rt.read_sync(lambda c: q.get_score(c, principal.project_id, score_id, traces_only=True))
    if row is None:
        raise not_found(f"Score {score_id}")
    return JSON(_v1(rt.db.dialect, row))


@router.delete("/api/public/scores/{score_id:path}")
async def delete_score(request: Request, score_id: str, principal: ProjectKey) -> JSON:
    """Delete a score once committed; 404 when the project has no such score.

    Langfuse answers 202 with a JSON message (its spec says 204); clients accept any 2xx.
    """
    project_id = principal.project_id
    deleted = await runtime(request).write(lambda c: q.delete_score(c, project_id, score_id))
    if not deleted:
        raise not_found(f"Score {score_id}")
    return JSON({"message": "Score deleted"}, status_code=202)
