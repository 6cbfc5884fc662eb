"""Langfuse's experiment read routes: ``GET /api/public/experiments`` and
``GET /api/public/experiment-items`` (cursor pages). An experiment is a dataset run;
an experiment item is one of its run items, with the linked trace's input and output
and the dataset item's expected output.

``fromStartTime`` is required; the range applies to the run items' times (a run is
listed with the items it has in range). ``id``/``name``/``datasetId`` (and, for items,
``experimentId``/``experimentName``/``experimentItemId``) take comma-separated values;
``filter`` takes the same as ``=`` or ``any of`` conditions on those columns.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ...store.db import Conn
from ...store.filters import parse_filter
from ...store.interface import ExperimentQuery
from ...timeutil import parse_ts
from ..auth import ProjectKey
from ..dataset_shapes import experiment_item_json, experiment_json
from ..errors import ApiError
from ..responses import JSON
from ..runtime import runtime
from .body import ok
from .dataset_models import ExperimentItemsResponse, ExperimentsResponse
from .params import MAX_PAGE_LIMIT, LimitParam, decode_cursor, encode_cursor

router = APIRouter(tags=["Experiments"])

#: How many scores an experiment or item lists: 1 to 50 (default 50).
ScoreLimit = Annotated[int | None, Query(json_schema_extra={"minimum": 1, "maximum": 50})]

_EXPERIMENT_GROUPS = ("core", "metadata", "scores")
_ITEM_GROUPS = ("core", "dataset", "io", "metadata", "itemMetadata", "experimentMetadata", "scores")


#: The whitespace ``str.strip`` removes, spelled out for any regex engine.
_SPACE = r"[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*"


def _fields_param(known: tuple[str, ...]) -> Any:
    """``fields``: comma-separated group names (whitespace around them and empty entries
    are ignored), documented as a pattern; the route checks it (its 400 names the
    unknown groups)."""
    group = f"{_SPACE}(?:{'|'.join(known)})?{_SPACE}"
    return Query(json_schema_extra={"pattern": f"^{group}(?:,{group})*$"})


# Not stated as schemas: ``filter`` (a JSON array of conditions in a string, parsed by
# the route) and ``cursor`` (opaque: one an earlier page answered). The ``filter``
# parameter keeps the fuzz test's "valid requests are accepted" check off for these
# routes (tests/test_openapi_fuzz.py, ``JSON_PARAMETERS``).

#: ``filter`` column -> the query's list it narrows.
_FILTER_COLUMNS = {
    "id": "run_ids",
    "experimentId": "run_ids",
    "name": "run_names",
    "experimentName": "run_names",
    "datasetId": "dataset_ids",
    "experimentItemId": "item_ids",
}


def _bad(why: str) -> ApiError:
    return ApiError(400, "Invalid request data", why)


def _groups(value: str | None, known: tuple[str, ...], default: tuple[str, ...]) -> frozenset[str]:
    asked = {p.strip() for p in (value or "").split(",") if p.strip()} or set(default)
    unknown = sorted(asked - set(known))
    if unknown:
        raise _bad(f"fields: unknown group(s) {', '.join(unknown)}; use {', '.join(known)}")
    return frozenset(asked | {"core"})


def _csv(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


def _bounded(value: int | None, name: str, default: int, most: int) -> int:
    value = default if value is None else value
    if not 1 <= value <= most:
        raise _bad(f"{name}: must be between 1 and {most}")
    return value


def _query(
    params: dict[str, str | None], allowed: set[str], filter_text: str | None
) -> ExperimentQuery:
    start = params.pop("fromStartTime")
    if not start:
        raise _bad("fromStartTime: required, an ISO-8601 timestamp")
    try:
        end = params.pop("toStartTime")
        q = ExperimentQuery(parse_ts(start), parse_ts(end) if end else None)
    except ValueError as exc:
        raise _bad(f"fromStartTime/toStartTime: {exc}") from None
    for name, target in (
        ("id", "run_ids"),
        ("experimentId", "run_ids"),
        ("name", "run_names"),
        ("experimentName", "run_names"),
        ("datasetId", "dataset_ids"),
        ("experimentItemId", "item_ids"),
    ):
        if name in params:
            getattr(q, target).extend(_csv(params[name]))
    for cond in parse_filter(filter_text):
        if cond.column not in allowed or cond.operator not in ("=", "any of"):
            raise _bad(
                f"filter: {cond.column!r} {cond.operator!r} is not supported; use '=' or"
                f" 'any of' on {', '.join(sorted(allowed))}"
            )
        values = cond.value if isinstance(cond.value, list) else [cond.value]
        getattr(q, _FILTER_COLUMNS[cond.column]).extend(str(v) for v in values)
    return q


def _grouped(scores: list[dict[str, Any]], key: str, most: int) -> dict[str, list[dict[str, Any]]]:
    """Score rows by their ``key`` column, at most ``most`` for each."""
    out: dict[str, list[dict[str, Any]]] = {}
    for score in scores:
        group = out.setdefault(score[key], [])
        if len(group) < most:
            group.append(score)
    return out


def _meta(rows: list[dict[str, Any]], more: bool, key: str, ts: Any) -> dict[str, Any]:
    if not more or not rows:
        return {}
    return {"cursor": encode_cursor(ts(rows[-1][key]), rows[-1]["id"])}


@router.get("/api/public/experiments", responses=ok(ExperimentsResponse))
async def list_experiments(
    request: Request,
    principal: ProjectKey,
    fromStartTime: str,
    toStartTime: str | None = None,
    fields: Annotated[str | None, _fields_param(_EXPERIMENT_GROUPS)] = None,
    limit: LimitParam = None,
    scoreLimit: ScoreLimit = None,
    cursor: str | None = None,
    id: str | None = None,
    name: str | None = None,
    datasetId: str | None = None,
    filter: str | None = None,
) -> JSON:
    """Dataset runs with items in the range, latest activity first."""
    groups = _groups(fields, _EXPERIMENT_GROUPS, ("core",))
    size = _bounded(limit, "limit", 50, MAX_PAGE_LIMIT)
    score_size = _bounded(scoreLimit, "scoreLimit", 50, 50)
    q = _query(
        {"fromStartTime": fromStartTime, "toStartTime": toStartTime, "id": id, "name": name,
         "datasetId": datasetId},
        {"id", "name", "datasetId"},
        filter,
    )  # fmt: skip
    after = decode_cursor(cursor) if cursor else None
    store = runtime(request).store
    project_id = principal.project_id

    def read(conn: Conn) -> dict[str, Any]:
        rows, more = store.experiments.experiments_after(
            conn, project_id, q, limit=size, after=after
        )
        scores = {}
        if "scores" in groups and rows:
            found = store.experiments.scores_on(conn, project_id, run_ids=[r["id"] for r in rows])
            scores = _grouped(found, "dataset_run_id", score_size)
        d = conn.dialect
        data = [experiment_json(d, r, groups, scores.get(r["id"])) for r in rows]
        return {"data": data, "meta": _meta(rows, more, "end_time", d.ts_out)}

    return JSON(await runtime(request).read(read))


@router.get("/api/public/experiment-items", responses=ok(ExperimentItemsResponse))
async def list_experiment_items(
    request: Request,
    principal: ProjectKey,
    fromStartTime: str,
    toStartTime: str | None = None,
    fields: Annotated[str | None, _fields_param(_ITEM_GROUPS)] = None,
    limit: LimitParam = None,
    scoreLimit: ScoreLimit = None,
    cursor: str | None = None,
    experimentId: str | None = None,
    experimentName: str | None = None,
    experimentItemId: str | None = None,
    datasetId: str | None = None,
    filter: str | None = None,
) -> JSON:
    """Run items in the range, newest first, with the field groups asked for."""
    groups = _groups(fields, _ITEM_GROUPS, ("core", "dataset"))
    size = _bounded(limit, "limit", 50, MAX_PAGE_LIMIT)
    score_size = _bounded(scoreLimit, "scoreLimit", 50, 50)
    q = _query(
        {"fromStartTime": fromStartTime, "toStartTime": toStartTime,
         "experimentId": experimentId, "experimentName": experimentName,
         "experimentItemId": experimentItemId, "datasetId": datasetId},
        {"experimentId", "experimentName", "experimentItemId", "datasetId"},
        filter,
    )  # fmt: skip
    after = decode_cursor(cursor) if cursor else None
    store = runtime(request).store
    project_id = principal.project_id

    def read(conn: Conn) -> dict[str, Any]:
        rows, more = store.experiments.experiment_items_after(
            conn, project_id, q, limit=size, after=after
        )
        scores = {}
        if "scores" in groups and rows:
            traces = sorted({r["trace_id"] for r in rows})
            found = store.experiments.scores_on(conn, project_id, trace_ids=traces)
            scores = _grouped(found, "trace_id", score_size)
        d = conn.dialect
        data = [experiment_item_json(d, r, groups, scores.get(r["trace_id"])) for r in rows]
        return {"data": data, "meta": _meta(rows, more, "created_at", d.ts_out)}

    return JSON(await runtime(request).read(read))
