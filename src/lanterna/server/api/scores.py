"""Scores (contract 4.2): create, list (v1 legacy, v2, and the v3 cursor list), get, delete.

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
from ...ingest.langfuse_events import Invalid
from ...ingest.score_configs import check_named, config_ids
from ...ingest.score_request import score_event
from ...store.db import Conn
from ...store.filters import Condition, parse_filter, parse_time
from ...store.interface import VALUE_OPERATORS, ScoreQuery
from ...timeutil import format_ts, now
from ..audit import audit
from ..auth import AnyKey, ProjectKey
from ..doc_models import answer
from ..errors import ApiError, not_found
from ..responses import JSON
from ..runtime import Runtime, runtime
from ..shapes import score_json, score_trace_json, score_v1_json, score_v3_json
from .body import Deleted, ok, read_json
from .params import (
    DEFAULT_LIMIT,
    MAX_PAGE,
    MAX_PAGE_LIMIT,
    decode_cursor,
    encode_cursor,
    field_groups,
    page_of,
)
from .score_schemas import (
    CreatedScore,
    Score,
    ScoreList,
    ScoresAccepted,
    ScoresPartly,
    ScoreV1,
    ScoreV1List,
    ScoreV3List,
    list_parameters,
    scores_body,
)

router = APIRouter()


# --- create ------------------------------------------------------------------------


def _score_error(index: int, body: Any, exc: Invalid) -> dict[str, Any]:
    raw_id = body.get("id") if isinstance(body, dict) else None
    return {
        "message": f"score {index}: {exc}",
        "index": index,
        "id": raw_id if isinstance(raw_id, str) else None,
    }


async def _configs(
    rt: Runtime, project_id: str, events: list[DomainEvent]
) -> dict[str, dict[str, Any]]:
    """The configs the scores name, by id (no query when none names one)."""
    wanted = config_ids(events)
    if not wanted:
        return {}
    return await rt.read(lambda conn: rt.store.score_configs.get_many(conn, project_id, wanted))


#: Its body stays looser in the document than the route's checks: rules between fields
#: (exactly one target; ``value`` typed by ``dataType``; a ``configId`` that names a
#: config of the project, whose range or categories the value fits) are not JSON Schema.
@router.post(
    "/api/public/scores",
    responses={
        200: answer(CreatedScore, "One score (an object) created"),
        202: answer(ScoresAccepted, "Every score of a list created"),
        207: answer(ScoresPartly, "Some scores of a list refused"),
    },
    openapi_extra=scores_body(),
)
async def create_scores(request: Request, principal: AnyKey) -> JSON:
    """Create one score (``200 {id}``) or a list of scores (``202`` / ``207``)."""
    # score_event checks each score's depth (a list's deep one is refused alone).
    payload = await read_json(request, depth_checked=False)
    received = format_ts(now())
    project_id = principal.project_id
    rt = runtime(request)
    if isinstance(payload, dict):
        event = score_event(payload, received)  # Invalid: a 400 naming the field
        check_named(event.fields, await _configs(rt, project_id, [event]))
        await rt.write(lambda conn: rt.store.ingest.apply_events(conn, project_id, [event]))
        return JSON({"id": event.entity_id})
    if not isinstance(payload, list):
        raise ApiError(400, "expected a score object or a list of score objects")
    if not payload:
        raise ApiError(400, "expected at least one score")
    errors: list[dict[str, Any]] = []
    indexed: list[tuple[int, DomainEvent]] = []
    for index, body in enumerate(payload):
        try:
            event = score_event(body, received)
        except Invalid as exc:
            errors.append(_score_error(index, body, exc))
            continue
        indexed.append((index, event))
    configs = await _configs(rt, project_id, [event for _index, event in indexed])
    valid: list[DomainEvent] = []
    for index, event in indexed:
        try:
            check_named(event.fields, configs)
        except Invalid as exc:
            errors.append(_score_error(index, payload[index], exc))
            continue
        valid.append(event)
    events = valid
    errors.sort(key=lambda e: e["index"])
    if events:
        await rt.write(lambda conn: rt.store.ingest.apply_events(conn, project_id, events))
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


def _query(params: QueryParams, *, traces_only: bool) -> ScoreQuery:
    """The list filters from the query string; FilterError or ApiError when malformed."""
    query = ScoreQuery(traces_only=traces_only)
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
        if operator not in VALUE_OPERATORS:
            raise _bad(f"operator: must be one of {', '.join(VALUE_OPERATORS)}")
        try:
            value = float(raw_value)
        except ValueError:
            raise _bad(f"value: expected a number, got {raw_value!r}") from None
        if not math.isfinite(value):
            raise _bad("value: must be a finite number")
        query.operator, query.value = operator, value
    return query


#: The v1/v2 lists' query parameters in the document (the routes read them themselves).
_LIST_PARAMETERS = list_parameters(tuple(VALUE_OPERATORS), MAX_PAGE, MAX_PAGE_LIMIT)


def _list(request: Request, project_id: str, *, v1: bool) -> JSON:
    params = request.query_params
    paging = page_of(_int(params, "page"), _int(params, "limit"))
    groups = field_groups(params.get("fields"), ("score", "trace"), ("score", "trace"))
    with_trace = "trace" in groups
    rt = runtime(request)
    query = _query(params, traces_only=v1)
    if not with_trace and query.reads_trace(query.conditions()):
        raise _bad("filters on the trace (userId, traceTags) need 'trace' in fields")
    rows, total = rt.read_sync(
        lambda c: rt.store.scores.list_scores(
            c, project_id, query, limit=paging.limit, offset=paging.offset
        )
    )
    d = rt.db.dialect
    data = []
    for row in rows:
        item = score_v1_json(d, row) if v1 else score_json(d, row)
        if with_trace:
            # Older generated clients require the trace object on every v1 item.
            item["trace"] = score_trace_json(d, row)
        data.append(item)
    return JSON(paging.envelope(data, total))


# --- v3: cursor list -----------------------------------------------------------------

V3_GROUPS = ("details", "subject", "annotation")
#: Data types whose scores ``value`` may match exactly (TEXT/CORRECTION cannot).
V3_VALUE_TYPES = ("NUMERIC", "BOOLEAN", "CATEGORICAL")

#: v3 list parameters (comma-separated, any of) -> the ``SCORE_COLUMNS`` they filter.
_V3_LISTS = (
    ("id", "id"),
    ("name", "name"),
    ("environment", "environment"),
    ("configId", "configId"),
    ("queueId", "queueId"),
    ("authorUserId", "authorUserId"),
    ("traceId", "traceId"),
    ("sessionId", "sessionId"),
    ("observationId", "observationId"),
    ("experimentId", "datasetRunId"),
)


def _v3_groups(value: str | None) -> frozenset[str]:
    """The groups of ``fields``; unlike the v2 lists, an unknown group is a 400."""
    asked = {part.strip() for part in (value or "").split(",") if part.strip()}
    unknown = sorted(asked - {"core", *V3_GROUPS})
    if unknown:
        raise _bad(f"fields: unknown group(s) {', '.join(unknown)}; use {', '.join(V3_GROUPS)}")
    return frozenset(asked)


def _upper_choices(params: QueryParams, name: str, allowed: tuple[str, ...]) -> list[str]:
    """A comma-separated enum parameter, case-insensitive, as upper-case values."""
    values = [v.upper() for v in _csv(params, name)]
    wrong = [v for v in values if v not in allowed]
    if wrong:
        raise _bad(f"{name}: must be one of {', '.join(allowed)}, got {wrong[0]!r}")
    return values


def _number(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise _bad(f"{name}: expected a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise _bad(f"{name}: must be a finite number, got {raw!r}")
    return value


def _v3_targets(params: QueryParams) -> None:
    """The spec's rules between the target filters (observation ids live in a trace)."""
    given = {
        n for n in ("traceId", "sessionId", "observationId", "experimentId") if _csv(params, n)
    }
    if "observationId" in given and "traceId" not in given:
        raise _bad("observationId: requires traceId (observation ids are scoped to a trace)")
    for one, others in (
        ("sessionId", ("traceId", "observationId", "experimentId")),
        ("experimentId", ("traceId", "sessionId", "observationId")),
    ):
        clash = [o for o in others if o in given]
        if one in given and clash:
            raise _bad(f"{one}: cannot be combined with {', '.join(clash)}")


def _v3_values(params: QueryParams, data_types: list[str], query: ScoreQuery) -> None:
    """``value`` / ``valueMin`` / ``valueMax`` into ``query``, checked against dataType."""
    values = _csv(params, "value")
    bounds = {n: _text(params, n) for n in ("valueMin", "valueMax")}
    if not values and not any(bounds.values()):
        return
    if len(data_types) != 1:
        raise _bad("value, valueMin and valueMax require exactly one dataType")
    (data_type,) = data_types
    if values:
        if data_type not in V3_VALUE_TYPES:
            raise _bad(f"value: needs dataType {', '.join(V3_VALUE_TYPES)}, not {data_type}")
        if data_type == "NUMERIC":
            query.values = [_number(v, "value") for v in values]
        elif data_type == "BOOLEAN":
            wrong = [v for v in values if v.lower() not in ("true", "false")]
            if wrong:
                raise _bad(f"value: BOOLEAN values must be true or false, got {wrong[0]!r}")
            query.values = [1.0 if v.lower() == "true" else 0.0 for v in values]
        else:  # CATEGORICAL: the category is the string value
            query.filters.append(Condition("stringOptions", "stringValue", "any of", values))
    for name, op in (("valueMin", ">="), ("valueMax", "<=")):
        raw = bounds[name]
        if raw is None:
            continue
        if data_type != "NUMERIC":
            raise _bad(f"{name}: needs dataType NUMERIC, not {data_type}")
        query.filters.append(Condition("number", "value", op, _number(raw, name)))


def _v3_query(params: QueryParams) -> ScoreQuery:
    """The v3 filters; ApiError (or FilterError for timestamps) when malformed."""
    _v3_targets(params)
    query = ScoreQuery()
    for name, column in _V3_LISTS:
        values = _csv(params, name)
        if values:
            query.filters.append(Condition("stringOptions", column, "any of", values))
    sources = _upper_choices(params, "source", SCORE_SOURCES)
    data_types = _upper_choices(params, "dataType", SCORE_DATA_TYPES)
    for column, chosen in (("source", sources), ("dataType", data_types)):
        if chosen:
            query.filters.append(Condition("stringOptions", column, "any of", chosen))
    _v3_values(params, data_types, query)
    query.from_timestamp = parse_time(_text(params, "fromTimestamp"), "fromTimestamp")
    query.to_timestamp = parse_time(_text(params, "toTimestamp"), "toTimestamp")
    return query


@router.get("/api/public/v3/scores", responses=ok(ScoreV3List))
def list_scores_v3(request: Request, principal: ProjectKey) -> JSON:
    """Scores newest first, a cursor page at a time, with ``value`` typed by ``dataType``."""
    params = request.query_params
    limit = _int(params, "limit")
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise _bad(f"limit: must be between 1 and {MAX_PAGE_LIMIT}")
    groups = _v3_groups(params.get("fields"))
    cursor = _text(params, "cursor")
    query = _v3_query(params)
    after = decode_cursor(cursor) if cursor else None
    project_id = principal.project_id
    rt = runtime(request)

    def read(conn: Conn) -> dict[str, Any]:
        rows, more = rt.store.scores.scores_after(conn, project_id, query, limit=limit, after=after)
        d = conn.dialect
        meta: dict[str, Any] = {"limit": limit}
        if more:  # absent on the last page, as the spec says
            last = rows[-1]
            meta["cursor"] = encode_cursor(d.ts_out(last["timestamp"]) or "", last["id"])
        return {"data": [score_v3_json(d, r, groups) for r in rows], "meta": meta}

    return JSON(rt.read_sync(read))


# --- read and delete ---------------------------------------------------------------


@router.get("/api/public/v2/scores", responses=ok(ScoreList), openapi_extra=_LIST_PARAMETERS)
def list_scores_v2(request: Request, principal: ProjectKey) -> JSON:
    """A page of scores (trace, observation, session and dataset-run scores), newest first."""
    return _list(request, principal.project_id, v1=False)


@router.get(
    "/api/public/v2/scores/{score_id:path}",
    responses={200: answer(Score, "OK")},
)
def get_score_v2(request: Request, score_id: str, principal: ProjectKey) -> JSON:
    """One score of any target; 404 when the project has no such score."""
    rt = runtime(request)
    row = rt.read_sync(lambda c: rt.store.scores.get_score(c, principal.project_id, score_id))
    if row is None:
        raise not_found(f"Score {score_id}")
    return JSON(score_json(rt.db.dialect, row))


@router.get("/api/public/scores", responses=ok(ScoreV1List), openapi_extra=_LIST_PARAMETERS)
def list_scores_v1(request: Request, principal: ProjectKey) -> JSON:
    """The legacy list: trace scores only, in the ScoreV1 shape, each with its trace."""
    return _list(request, principal.project_id, v1=True)


@router.get(
    "/api/public/scores/{score_id:path}",
    responses={200: answer(ScoreV1, "OK")},
)
def get_score_v1(request: Request, score_id: str, principal: ProjectKey) -> JSON:
    """One trace score in the ScoreV1 shape; 404 for other targets or unknown ids."""
    rt = runtime(request)
    row = rt.read_sync(
        lambda c: rt.store.scores.get_score(c, principal.project_id, score_id, traces_only=True)
    )
    if row is None:
        raise not_found(f"Score {score_id}")
    return JSON(score_v1_json(rt.db.dialect, row))


@router.delete(
    "/api/public/scores/{score_id:path}",
    status_code=202,
    responses={202: answer(Deleted, "Deleted")},
)
async def delete_score(request: Request, score_id: str, principal: ProjectKey) -> JSON:
    """Delete a score once committed; 404 when the project has no such score.

    Langfuse answers 202 with a JSON message (its spec says 204); clients accept any 2xx.
    """
    project_id = principal.project_id
    rt = runtime(request)
    deleted = await rt.write(lambda c: rt.store.scores.delete_score(c, project_id, score_id))
    if not deleted:
        raise not_found(f"Score {score_id}")
    await audit(rt, principal, "score.delete", score_id)
    return JSON({"message": "Score deleted"}, status_code=202)
