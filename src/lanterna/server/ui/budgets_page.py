"""Budgets: each budget's spend in its current period against its limit (a bar with the
soft threshold marked), its recorded crossings; admins and owners create, change and
delete budgets, everyone else sees them."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...alerts import budgets as rules
from ...errors import InvalidInput
from ...store.db import Conn
from ...timeutil import now
from ..audit import audit
from ..shapes import budget_json, crossing_json
from .web import Form, Page, not_found, page_form, project_page, redirect, render, rt_of

router = APIRouter()


def _budgets(request: Request, page: Page) -> Any:
    rt = rt_of(request)
    at = now()

    def read(c: Conn) -> list[dict[str, Any]]:
        out = []
        for row in rt.store.budgets.list_all(c, page.pid):
            st = rules.status(c, page.pid, row, at, events=rt.store.events_conn(c))
            status = rules.status_json(st)
            crossings = rt.store.budgets.crossings(c, page.pid, row["id"], limit=5)
            out.append(
                {
                    **budget_json(row),
                    "status": status,
                    "bar": min(status["percent"], 100.0),
                    "describe": rules.describe(row),
                    "crossings": [crossing_json(r) for r in crossings],
                }
            )
        return out

    return rt.read(read)


async def _render(
    request: Request, page: Page, *, status: int = 200, error: str = "", form: Any = None
) -> Response:
    rt = rt_of(request)
    rows = await rt.read(lambda c: rt.store.channels.list_channels(c, page.pid))
    # Names only: a channel's config and sealed secrets stay out of the page.
    channels = [{"id": r["id"], "name": r["name"], "kind": r["kind"]} for r in rows]
    context = {
        "budgets": await _budgets(request, page),
        "channels": channels,
        "channel_names": {ch["id"]: ch["name"] for ch in channels},
        "error": error,
        "form": form or {},
        "scopes": rules.SCOPES,
        "periods": rules.PERIODS,
    }
    return render(request, "budgets.html", context, page=page, status=status)


def _base(page: Page) -> str:
    return f"/project/{page.pid}/budgets"


def _number(form: Form, name: str, field: str) -> float | None:
    text = form.get(name)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"{field}: enter a number") from None
    if not math.isfinite(value):
        raise InvalidInput(f"{field}: enter a number")
    return value


def _body(form: Form) -> dict[str, Any]:
    """The API body of a budget from the page's form."""
    scope = form.get("scope") or "project"
    body: dict[str, Any] = {
        "name": form.get("name") or None,
        "scope": scope,
        "period": form.get("period") or "month",
        "limitUsd": _number(form, "limit_usd", "limitUsd"),
        "softPercent": _number(form, "soft_percent", "softPercent"),
        "channelIds": form.getlist("channel_ids"),
    }
    if scope != "project":
        body["scopeValue"] = form.get("scope_value") or None
    return body


@router.get("/project/{project_id}/budgets")
async def budgets(request: Request, project_id: str) -> Response:
    """The budgets page."""
    page = await project_page(request, project_id)
    return await _render(request, page)


@router.post("/project/{project_id}/budgets")
async def create_budget(request: Request, project_id: str) -> Response:
    """Create a budget (admins and owners); the form again with the reason on bad input."""
    page, form = await page_form(request, project_id, "manage_project")
    rt = rt_of(request)
    created: list[str] = []

    def work(c: Conn) -> None:
        rules.check_channels(c, rt.store.channels, page.pid, fields)
        created.append(rt.store.budgets.create(c, page.pid, fields)["id"])

    try:
        fields = rules.check_budget(_body(form))
        await rt.write(work)
    except InvalidInput as exc:
        shown = {**dict(form.pairs), "channel_ids": form.getlist("channel_ids")}
        return await _render(request, page, status=400, error=str(exc), form=shown)
    await audit(rt, page, "budget.create", created[0], {"name": fields.get("name")})
    return redirect(_base(page))


@router.post("/project/{project_id}/budgets/{budget_id}/update")
async def update_budget(request: Request, project_id: str, budget_id: str) -> Response:
    """Change a budget's fields (admins and owners)."""
    page, form = await page_form(request, project_id, "manage_project")
    rt = rt_of(request)

    def work(c: Conn) -> dict[str, Any] | None:
        rules.check_channels(c, rt.store.channels, page.pid, fields)
        return rt.store.budgets.update(c, page.pid, budget_id, fields)

    try:
        fields = rules.check_budget(_body(form))
        changed = await rt.write(work)
    except InvalidInput as exc:
        return await _render(request, page, status=400, error=str(exc))
    if changed is None:
        raise not_found("Budget")
    await audit(rt, page, "budget.update", budget_id)
    return redirect(_base(page))


@router.post("/project/{project_id}/budgets/{budget_id}/delete")
async def delete_budget(request: Request, project_id: str, budget_id: str) -> Response:
    """Delete a budget (admins and owners)."""
    page, _ = await page_form(request, project_id, "manage_project")
    rt = rt_of(request)
    if not await rt.write(lambda c: rt.store.budgets.delete(c, page.pid, budget_id)):
        raise not_found("Budget")
    await audit(rt, page, "budget.delete", budget_id)
    return redirect(_base(page))
