"""Alert rules and their history: ``/api/public/alerts/rules`` (create, list, read,
change, delete) and ``/api/public/alerts/history``. :mod:`lanterna.alerts.rules` checks
a rule (a 400 naming the field, nothing written); ``store.alerts`` stores it; the
evaluator (:mod:`lanterna.alerts.evaluator`) keeps its state and history.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from ...alerts.rules import (
    BASELINES,
    COMPARATORS,
    INTERVAL_MAX,
    INTERVAL_MIN,
    MODES,
    NAME_MAX,
    QUIET_MAX,
    WINDOW_MAX,
    WINDOW_MIN,
    api_fields,
    check_rule,
)
from ...analytics.alert_metrics import FILTERS, METRICS
from ...store.db import Conn
from ..audit import audit
from ..auth import AlertsAdminKey, ProjectKey
from ..doc_models import DocModel, answer, request_body
from ..errors import not_found
from ..openapi import NO_NUL
from ..responses import JSON
from ..runtime import runtime
from ..shapes import alert_event_json, alert_rule_json
from .body import NOT_BLANK, json_body, read_json
from .params import LimitParam, Message, Meta, PageParam, page_of

router = APIRouter(tags=["Alerts"])

RULES = "/api/public/alerts/rules"
HISTORY = "/api/public/alerts/history"


class RuleBody(DocModel):
    """Create (``name``, ``metric`` and ``threshold`` or ``baseline`` + ``factor``
    required) or change (the fields given; the rest stay) an alert rule. See
    docs/alerts.md for every field, its range and its default."""

    name: str | None = None
    description: str | None = None
    metric: str | None = None
    scoreName: str | None = None
    filters: dict[str, Any] | None = None
    comparator: str | None = None
    threshold: float | None = None
    mode: str | None = None
    baseline: str | None = None
    factor: float | None = None
    windowSeconds: int | None = None
    intervalSeconds: int | None = None
    minSamples: int | None = None
    cooldownSeconds: int | None = None
    renotifySeconds: int | None = None
    notifyResolved: bool | None = None
    channelIds: list[str] | None = None
    enabled: bool | None = None


class RuleState(DocModel):
    """The rule's last evaluation."""

    status: str
    value: float | None
    threshold: float | None
    samples: int | None
    evaluatedAt: str | None
    firingSince: str | None
    notifiedAt: str | None
    nextEvaluationAt: str | None


class Rule(DocModel):
    """An alert rule with its condition in words and its state."""

    id: str
    name: str
    description: str
    metric: str
    scoreName: str | None
    filters: dict[str, Any]
    comparator: str
    threshold: float | None
    mode: str
    baseline: str | None
    factor: float | None
    windowSeconds: int
    intervalSeconds: int
    minSamples: int
    cooldownSeconds: int
    renotifySeconds: int
    notifyResolved: bool
    channelIds: list[str]
    enabled: bool
    condition: str
    state: RuleState
    createdAt: str
    updatedAt: str


class Event(DocModel):
    """One entry of the alert history: ``fired``, ``resolved``, ``notified``,
    ``delivery_error`` (the channel's message) or ``evaluation_error``. ``source``:
    ``rule``, or ``budget`` for a budget's crossing (``ruleId`` is then the budget's
    id)."""

    id: str
    source: str
    ruleId: str
    at: str
    kind: str
    value: float | None
    threshold: float | None
    channelId: str | None
    message: str


class RuleList(DocModel):
    """A page of rules, by name."""

    data: list[Rule]
    meta: Meta


class EventList(DocModel):
    """A page of the history, newest first."""

    data: list[Event]
    meta: Meta


_BODY = request_body(RuleBody.model_json_schema)


def _filter_schema(kind: str) -> dict[str, Any]:
    """A filter's value: ``{key: value}`` pairs (strings or numbers) for metadata, else
    a non-empty string."""
    if kind == "object":
        scalar = {"anyOf": [{"type": "string"}, {"type": "number"}]}
        return {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"minLength": 1, "pattern": NO_NUL},
            "additionalProperties": scalar,
        }
    return {"type": "string", "minLength": 1}


#: The rules between a new rule's fields: ``scoreName`` with ``score_avg``; a number
#: ``threshold`` in threshold mode (the default), ``baseline`` and ``factor`` in
#: baseline mode.
_RULE_CONDITIONS: list[dict[str, Any]] = [
    {
        "if": {"properties": {"metric": {"const": "score_avg"}}},
        "then": {
            "required": ["scoreName"],
            "properties": {"scoreName": {"type": "string", "pattern": NOT_BLANK}},
        },
    },
    {
        "if": {"properties": {"mode": {"const": "baseline"}}, "required": ["mode"]},
        "then": {
            "required": ["baseline", "factor"],
            "properties": {"baseline": {"type": "string"}, "factor": {"type": "number"}},
        },
        "else": {"required": ["threshold"], "properties": {"threshold": {"type": "number"}}},
    },
]


class RuleCreate(DocModel):
    """A new alert rule: ``name`` and ``metric`` required; ``scoreName`` (not blank) with
    ``metric`` ``score_avg``; ``threshold`` in ``threshold`` mode (the default),
    ``baseline`` and ``factor`` in ``baseline`` mode; no other fields. Defaults as in
    docs/alerts.md."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"allOf": _RULE_CONDITIONS},  # type: ignore[dict-item]
    )

    name: Annotated[str, Field(max_length=NAME_MAX, pattern=NOT_BLANK)]
    description: Annotated[str | None, Field(max_length=2000)] = ""
    metric: Literal[tuple(METRICS)]  # type: ignore[valid-type]
    scoreName: Annotated[str | None, Field(max_length=NAME_MAX)] = None
    filters: Annotated[
        dict[str, Any],
        Field(
            json_schema_extra={
                "properties": {name: _filter_schema(f[2]) for name, f in FILTERS.items()},
                "additionalProperties": False,
            }
        ),
    ] = {}
    comparator: Literal[COMPARATORS] = ">"  # type: ignore[valid-type]
    threshold: float | None = None
    mode: Literal[MODES] = "threshold"  # type: ignore[valid-type]
    baseline: Literal[BASELINES] | None = None  # type: ignore[valid-type]
    factor: Annotated[float | None, Field(gt=0)] = None
    windowSeconds: Annotated[int, Field(ge=WINDOW_MIN, le=WINDOW_MAX)] = 300
    intervalSeconds: Annotated[int, Field(ge=INTERVAL_MIN, le=INTERVAL_MAX)] = 60
    minSamples: Annotated[int, Field(ge=0, le=10**9)] = 1
    cooldownSeconds: Annotated[int, Field(ge=0, le=QUIET_MAX)] = 600
    renotifySeconds: Annotated[int, Field(ge=0, le=QUIET_MAX)] = 0
    notifyResolved: bool = True
    channelIds: list[Annotated[str, Field(min_length=1)]] = []
    enabled: bool = True


def _ok(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {200: answer(model, "OK")}


@router.get(RULES, responses=_ok(RuleList))
async def list_rules(
    request: Request, principal: ProjectKey, page: PageParam = None, limit: LimitParam = None
) -> JSON:
    """The project's alert rules with their state, by name."""
    paging = page_of(page, limit)
    rt = runtime(request)

    def read(conn: Conn) -> dict[str, Any]:
        rows, total = rt.store.alerts.page_rules(
            conn, principal.project_id, paging.limit, paging.offset
        )
        return paging.envelope([alert_rule_json(r) for r in rows], total)

    return JSON(await rt.read(read))


@router.post(RULES, responses=_ok(Rule), openapi_extra=json_body(RuleCreate))
async def create_rule(request: Request, principal: AlertsAdminKey) -> JSON:
    """Create a rule; it is evaluated at the evaluator's next tick. 400 naming the
    field when the body is wrong (nothing is stored)."""
    fields = check_rule(await read_json(request))
    rt = runtime(request)
    row = await rt.write(lambda c: rt.store.alerts.create_rule(c, principal.project_id, fields))
    await audit(rt, principal, "alert_rule.create", row["id"], {"name": row["name"]})
    return JSON(alert_rule_json(row))


@router.get(RULES + "/{rule_id}", responses=_ok(Rule))
async def get_rule(request: Request, rule_id: str, principal: ProjectKey) -> JSON:
    """One rule of the project with its state (404 when missing)."""
    rt = runtime(request)
    row = await rt.read(lambda c: rt.store.alerts.get_rule(c, principal.project_id, rule_id))
    if row is None:
        raise not_found(f"Alert rule {rule_id}")
    return JSON(alert_rule_json(row))


@router.patch(RULES + "/{rule_id}", responses=_ok(Rule), openapi_extra=_BODY)
async def update_rule(request: Request, rule_id: str, principal: AlertsAdminKey) -> JSON:
    """Change the fields given (the rule is checked whole again, and due at once);
    400 naming the field, 404 when missing."""
    patch = await read_json(request)
    rt = runtime(request)
    alerts = rt.store.alerts

    def work(conn: Conn) -> dict[str, Any] | None:
        stored = alerts.get_rule(conn, principal.project_id, rule_id)
        if stored is None:
            return None
        fields = check_rule(patch, api_fields(stored))
        return alerts.update_rule(conn, principal.project_id, rule_id, fields)

    row = await rt.write(work)
    if row is None:
        raise not_found(f"Alert rule {rule_id}")
    await audit(rt, principal, "alert_rule.update", rule_id, {"fields": sorted(patch or {})})
    return JSON(alert_rule_json(row))


@router.delete(RULES + "/{rule_id}", responses=_ok(Message))
async def delete_rule(request: Request, rule_id: str, principal: AlertsAdminKey) -> JSON:
    """Delete a rule and its history (404 when missing)."""
    rt = runtime(request)
    if not await rt.write(lambda c: rt.store.alerts.delete_rule(c, principal.project_id, rule_id)):
        raise not_found(f"Alert rule {rule_id}")
    await audit(rt, principal, "alert_rule.delete", rule_id)
    return JSON({"message": "Alert rule deleted successfully"})


async def _history(
    request: Request, project_id: str, rule_id: str | None, page: int | None, limit: int | None
) -> JSON:
    paging = page_of(page, limit)
    rt = runtime(request)

    def read(conn: Conn) -> dict[str, Any] | None:
        if rule_id is not None and rt.store.alerts.get_rule(conn, project_id, rule_id) is None:
            return None
        rows, total = rt.store.alerts.page_events(
            conn, project_id, rule_id, paging.limit, paging.offset
        )
        return paging.envelope([alert_event_json(r) for r in rows], total)

    found = await rt.read(read)
    if found is None:
        raise not_found(f"Alert rule {rule_id}")
    return JSON(found)


@router.get(RULES + "/{rule_id}/history", responses=_ok(EventList))
async def rule_history(
    request: Request,
    rule_id: str,
    principal: ProjectKey,
    page: PageParam = None,
    limit: LimitParam = None,
) -> JSON:
    """One rule's history, newest first (404 when the rule is missing)."""
    return await _history(request, principal.project_id, rule_id, page, limit)


@router.get(HISTORY, responses=_ok(EventList))
async def project_history(
    request: Request, principal: ProjectKey, page: PageParam = None, limit: LimitParam = None
) -> JSON:
    """The project's alert history over every rule, newest first."""
    return await _history(request, principal.project_id, None, page, limit)
