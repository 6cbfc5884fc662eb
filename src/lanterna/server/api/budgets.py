"""Cost budgets: ``/api/public/budgets`` (create, list, read, change, delete) and each
budget's status (spent, limit, remaining, percent, period, state). Lanterna's own
routes (Langfuse has none), documented in docs/alerts.md and docs/api.md.

Every change runs in the writer, checked before anything is written (a 400 naming the
field, nothing stored). ``at`` (an ISO timestamp with an offset, default now) picks the
period a status is computed for.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field

from ...alerts import budgets as rules
from ...store.db import Conn
from ...store.filters import parse_time
from ...store.interface import Budgets
from ...timeutil import format_ts, now
from ..audit import audit
from ..auth import BudgetsAdminKey, ProjectKey
from ..doc_models import DocModel
from ..errors import not_found
from ..responses import JSON
from ..runtime import runtime
from ..shapes import budget_json, crossing_json
from .body import NOT_BLANK, Deleted, json_body, ok, read_json
from .params import LimitParam, Meta, PageParam, page_of

router = APIRouter(tags=["Budgets"])

BUDGETS = "/api/public/budgets"


class BudgetBody(DocModel):
    """Create a budget (``name`` and ``limitUsd`` required) or change one (PATCH: at
    least one field; the others keep their value). ``scope``: ``project`` (default),
    ``user``, ``session`` or ``tag``, with ``scopeValue`` naming the user id, session id
    or tag; ``period``: ``day``, ``week``, ``month`` (default) or ``total`` (UTC calendar
    periods); ``limitUsd``: the hard limit, above 0; ``softPercent``: the soft threshold
    as a percentage of the limit, above 0 and below 100 (default 80; null for none);
    ``channelIds``: the project's alert channels notified when the budget reaches its
    soft threshold or its limit (default none; 400 naming ``channelIds`` when one is not
    the project's)."""

    name: str | None = None
    scope: str | None = None
    scopeValue: str | None = None
    period: str | None = None
    limitUsd: float | None = None
    softPercent: float | None = None
    channelIds: list[str] | None = None


class BudgetStatus(DocModel):
    """A budget's spend in the period containing ``at``: ``state`` is ``ok``, ``soft``
    (at or over the soft threshold) or ``exceeded`` (at or over the limit); the period
    bounds are null for ``total``."""

    budgetId: str
    at: str
    spentUsd: float
    limitUsd: float
    remainingUsd: float
    percent: float
    softPercent: float | None
    state: str
    periodStart: str | None
    periodEnd: str | None


class Crossing(DocModel):
    """A recorded crossing (``soft`` or ``exceeded``) in the period from ``periodStart``."""

    level: str
    periodStart: str | None
    spentUsd: float
    limitUsd: float
    at: str


class Budget(DocModel):
    """A budget with its current status (and, for one budget, its recorded crossings,
    newest first)."""

    id: str
    name: str
    scope: str
    scopeValue: str | None
    period: str
    limitUsd: float
    softPercent: float | None
    channelIds: list[str]
    createdAt: str
    updatedAt: str
    status: BudgetStatus
    crossings: list[Crossing] | None = None


class BudgetList(DocModel):
    """A page of the project's budgets, by name."""

    data: list[Budget]
    meta: Meta


_BODY = json_body(BudgetBody)

_TEXT = Annotated[str, Field(max_length=rules.MAX_TEXT, pattern=NOT_BLANK)]


class BudgetCreate(DocModel):
    """A new budget: ``name`` and ``limitUsd`` required; ``scopeValue`` required with a
    ``user``, ``session`` or ``tag`` scope and absent (or null) with ``project``; no
    other fields. Each of ``channelIds`` must be an alert channel of the project (a 400
    otherwise: a rule JSON Schema cannot state)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {"properties": {"scope": {"const": "project"}}},
            "then": {"properties": {"scopeValue": {"type": "null"}}},
            "else": {"required": ["scopeValue"], "properties": {"scopeValue": {"type": "string"}}},
        },
    )

    name: _TEXT
    scope: Literal[rules.SCOPES] = "project"  # type: ignore[valid-type]
    scopeValue: _TEXT | None = None
    period: Literal[rules.PERIODS] = "month"  # type: ignore[valid-type]
    limitUsd: Annotated[float, Field(gt=0, le=rules.MAX_LIMIT_USD)]
    softPercent: Annotated[float | None, Field(gt=0, lt=100)] = rules.DEFAULT_SOFT_PERCENT
    channelIds: list[Annotated[str, Field(min_length=1)]] = []


def _at(value: str | None) -> datetime:
    return parse_time(value, "at") or now()


def _store(request: Request) -> Budgets:
    return runtime(request).store.budgets


def _shown(
    request: Request,
    conn: Conn,
    project_id: str,
    row: dict[str, Any],
    at: datetime,
    *,
    crossings: bool = False,
) -> dict[str, Any]:
    """A budget's JSON with its status at ``at`` (and its crossings)."""
    stores = runtime(request).store
    store = stores.budgets
    st = rules.status(conn, project_id, row, at, events=stores.events_conn(conn))
    out = {
        **budget_json(row),
        "status": {"budgetId": row["id"], "at": format_ts(at), **rules.status_json(st)},
    }
    if crossings:
        found = store.crossings(conn, project_id, row["id"])
        out["crossings"] = [crossing_json(r) for r in found]
    return out


@router.get(BUDGETS, responses=ok(BudgetList))
async def list_budgets(
    request: Request,
    principal: ProjectKey,
    page: PageParam = None,
    limit: LimitParam = None,
    at: str | None = None,
) -> JSON:
    """The project's budgets by name, each with its status at ``at`` (default now)."""
    paging = page_of(page, limit)
    when = _at(at)
    store = _store(request)

    def read(conn: Conn) -> dict[str, Any]:
        rows = store.list_all(conn, principal.project_id)
        shown = rows[paging.offset : paging.offset + paging.limit]
        data = [_shown(request, conn, principal.project_id, r, when) for r in shown]
        return paging.envelope(data, len(rows))

    return JSON(await runtime(request).read(read))


@router.post(BUDGETS, responses=ok(Budget), openapi_extra=json_body(BudgetCreate))
async def create_budget(request: Request, principal: BudgetsAdminKey) -> JSON:
    """Create a budget; 400 naming the field when the body is wrong (nothing stored)."""
    fields = rules.check_budget(await read_json(request))
    store = _store(request)
    channels = runtime(request).store.channels
    when = now()

    def work(conn: Conn) -> dict[str, Any]:
        rules.check_channels(conn, channels, principal.project_id, fields)
        return store.create(conn, principal.project_id, fields)

    row = await runtime(request).write(work)
    # The status is read after the commit, outside the writer (its spend may scan events).
    shown = await runtime(request).read(
        lambda c: _shown(request, c, principal.project_id, row, when)
    )
    await audit(runtime(request), principal, "budget.create", shown["id"], {"name": shown["name"]})
    return JSON(shown)


async def _one(
    request: Request, project_id: str, budget_id: str, at: str | None, *, whole: bool
) -> JSON:
    """The budget with its status and crossings (``whole``), or its status alone; 404
    when the project has no such budget."""
    when = _at(at)
    store = _store(request)

    def read(conn: Conn) -> dict[str, Any] | None:
        row = store.get(conn, project_id, budget_id)
        if row is None:
            return None
        shown = _shown(request, conn, project_id, row, when, crossings=whole)
        return shown if whole else dict(shown["status"])

    found = await runtime(request).read(read)
    if found is None:
        raise not_found(f"Budget {budget_id}")
    return JSON(found)


@router.get(BUDGETS + "/{budget_id}", responses=ok(Budget))
async def get_budget(
    request: Request, budget_id: str, principal: ProjectKey, at: str | None = None
) -> JSON:
    """One budget with its status at ``at`` and its recorded crossings (404 when
    missing)."""
    return await _one(request, principal.project_id, budget_id, at, whole=True)


@router.get(BUDGETS + "/{budget_id}/status", responses=ok(BudgetStatus))
async def budget_status(
    request: Request, budget_id: str, principal: ProjectKey, at: str | None = None
) -> JSON:
    """The budget's spend in the period containing ``at`` (default now): spent, limit,
    remaining, percent, period start and end, state (``ok``, ``soft``, ``exceeded``)."""
    return await _one(request, principal.project_id, budget_id, at, whole=False)


@router.patch(BUDGETS + "/{budget_id}", responses=ok(Budget), openapi_extra=_BODY)
async def update_budget(request: Request, budget_id: str, principal: BudgetsAdminKey) -> JSON:
    """Change a budget's fields (at least one; the others keep their value). A changed
    scope, period, limit or soft threshold starts its record of crossings afresh."""
    patch = await read_json(request)
    store = _store(request)
    channels = runtime(request).store.channels
    when = now()

    def work(conn: Conn) -> dict[str, Any] | None:
        row = store.get(conn, principal.project_id, budget_id)
        if row is None:
            return None
        fields = rules.check_update(row, patch)
        if "channelIds" in patch:
            rules.check_channels(conn, channels, principal.project_id, fields)
        return store.update(conn, principal.project_id, budget_id, fields)

    changed = await runtime(request).write(work)
    outcome = (
        None
        if changed is None
        else await runtime(request).read(
            lambda c: _shown(request, c, principal.project_id, changed, when)
        )
    )
    if outcome is None:
        raise not_found(f"Budget {budget_id}")
    await audit(runtime(request), principal, "budget.update", budget_id, {"fields": sorted(patch)})
    return JSON(outcome)


@router.delete(BUDGETS + "/{budget_id}", responses=ok(Deleted))
async def delete_budget(request: Request, budget_id: str, principal: BudgetsAdminKey) -> JSON:
    """Delete a budget and its recorded crossings."""
    store = _store(request)
    if not await runtime(request).write(
        lambda conn: store.delete(conn, principal.project_id, budget_id)
    ):
        raise not_found(f"Budget {budget_id}")
    await audit(runtime(request), principal, "budget.delete", budget_id)
    return JSON({"message": "Budget deleted successfully"})
