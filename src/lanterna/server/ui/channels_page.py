"""Alert channels in the project settings: list, create, edit, delete, send a test.
Everyone with access sees the list (secrets masked); admins and owners change it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...alerts.channels import MASK, InvalidChannel
from .. import channel_ops as ops
from ..audit import audit
from .web import Form, Page, page_form, project_page, redirect, render, rt_of

router = APIRouter()


def _base(pid: str) -> str:
    return f"/project/{pid}/settings/channels"


def _body(form: Form, kind: str) -> dict[str, Any]:
    """A channel body from the form: only the fields of ``kind``; an empty secret field
    is left out (on edit: keep the stored secret)."""
    config: dict[str, Any] = {}
    if kind == "webhook":
        config = {"url": form.get("url"), "secret": form.raw("secret")}
    elif kind == "slack":
        config = {"url": form.get("url")}
    elif kind == "email":
        port = form.get("port") or "587"
        config = {
            "host": form.get("host"),
            "port": int(port) if port.isdigit() else port,
            "security": form.get("security") or "starttls",
            "username": form.get("username"),
            "password": form.raw("password"),
            "from": form.get("from"),
            "to": form.get("to"),
        }
    for secret in ("secret", "password"):
        if config.get(secret) == "":
            config.pop(secret)
    if kind == "slack" and config["url"] == "":
        config.pop("url")
    return {"name": form.get("name"), "type": kind, "config": config}


async def _render(request: Request, page: Page, *, status: int = 200, **extra: Any) -> Response:
    channels = await ops.list_channels(rt_of(request), page.pid)
    context = {"channels": channels, "error": "", "notice": "", "mask": MASK, **extra}
    return render(request, "channels.html", context, page=page, status=status)


@router.get("/project/{project_id}/settings/channels")
async def channels(request: Request, project_id: str) -> Response:
    """The project's alert channels."""
    return await _render(request, await project_page(request, project_id))


async def _save(request: Request, project_id: str, channel_id: str | None) -> Response:
    """Create (``channel_id`` None) or update a channel from the posted form; the page
    again with the field named when it is wrong."""
    page, form = await page_form(request, project_id, "manage_project")
    rt = rt_of(request)
    try:
        if channel_id is None:
            created = await ops.create_channel(rt, page.pid, _body(form, form.get("type")))
            await audit(rt, page, "alert_channel.create", created["id"])
        else:
            kind = (await ops.get_channel(rt, page.pid, channel_id))["type"]
            await ops.update_channel(rt, page.pid, channel_id, _body(form, kind))
            await audit(rt, page, "alert_channel.update", channel_id)
    except InvalidChannel as exc:
        return await _render(request, page, status=400, error=str(exc))
    return redirect(_base(page.pid))


@router.post("/project/{project_id}/settings/channels")
async def create_channel(request: Request, project_id: str) -> Response:
    """Create a channel from the form."""
    return await _save(request, project_id, None)


@router.post("/project/{project_id}/settings/channels/{channel_id}")
async def update_channel(request: Request, project_id: str, channel_id: str) -> Response:
    """Save an edited channel (empty secret fields keep the stored secrets)."""
    return await _save(request, project_id, channel_id)


@router.post("/project/{project_id}/settings/channels/{channel_id}/delete")
async def delete_channel(request: Request, project_id: str, channel_id: str) -> Response:
    """Delete a channel."""
    page, _ = await page_form(request, project_id, "manage_project")
    await ops.delete_channel(rt_of(request), page.pid, channel_id)
    await audit(rt_of(request), page, "alert_channel.delete", channel_id)
    return redirect(_base(page.pid))


@router.post("/project/{project_id}/settings/channels/{channel_id}/test")
async def send_test(request: Request, project_id: str, channel_id: str) -> Response:
    """Send a test notification; the page with the outcome."""
    page, _ = await page_form(request, project_id, "manage_project")
    rt = rt_of(request)
    name = (await ops.get_channel(rt, page.pid, channel_id))["name"]
    error = await ops.send_test(rt, page.pid, channel_id)
    if error is None:
        return await _render(request, page, notice=f"Test notification sent through {name}.")
    return await _render(request, page, status=502, error=f"{name}: not delivered: {error}")
