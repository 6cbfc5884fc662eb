"""Alert channels: ``/api/public/alert-channels`` (list, create, get, update, delete,
send a test). Project-scoped by the API key like every public route; secrets
(``config.secret``, a Slack ``config.url``, ``config.password``) are answered masked.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from .. import channel_ops as ops
from ..audit import audit
from ..auth import AlertsAdminKey, ProjectKey
from ..responses import JSON
from ..runtime import runtime
from .body import Deleted, json_body, ok, read_json

router = APIRouter(tags=["Alert channels"])

CHANNELS = "/api/public/alert-channels"


class AlertChannel(BaseModel):
    """A channel; each secret field in ``config`` is ``"********"`` when set, else null."""

    id: str
    name: str
    type: str
    config: dict[str, Any]
    createdAt: str
    updatedAt: str


class AlertChannelBody(BaseModel):
    """Create (``name``, ``type``, ``config`` required) or update (any of them; ``type``
    cannot change) a channel. ``config`` by type: ``webhook`` ``{url, secret}`` (secret
    at least 16 characters); ``slack`` ``{url}`` (the incoming-webhook URL, https);
    ``email`` ``{host, port (587), security (starttls|tls|none), username, password,
    from, to: [addresses]}``. In an update, a secret left out or sent as ``"********"``
    keeps the stored one."""

    name: str | None = None
    type: str | None = None
    config: dict[str, Any] | None = None


class AlertChannelList(BaseModel):
    """The project's channels, by name."""

    data: list[AlertChannel]


class ChannelTestResult(BaseModel):
    """The outcome of a "send test": ``delivered``, and ``error`` saying why not."""

    delivered: bool
    error: str | None = None


_BODY = json_body(AlertChannelBody)


@router.get(CHANNELS, responses=ok(AlertChannelList))
async def list_channels(request: Request, principal: ProjectKey) -> JSON:
    """The project's alert channels, secrets masked."""
    return JSON({"data": await ops.list_channels(runtime(request), principal.project_id)})


@router.post(CHANNELS, responses=ok(AlertChannel), openapi_extra=_BODY)
async def create_channel(request: Request, principal: AlertsAdminKey) -> JSON:
    """Create a channel; 400 naming the field that is wrong."""
    body = await read_json(request)
    created = await ops.create_channel(runtime(request), principal.project_id, body)
    await audit(runtime(request), principal, "alert_channel.create", created["id"])
    return JSON(created)


@router.get(CHANNELS + "/{channel_id}", responses=ok(AlertChannel))
async def get_channel(request: Request, channel_id: str, principal: ProjectKey) -> JSON:
    """One channel (404 when missing), secrets masked."""
    return JSON(await ops.get_channel(runtime(request), principal.project_id, channel_id))


@router.patch(CHANNELS + "/{channel_id}", responses=ok(AlertChannel), openapi_extra=_BODY)
async def update_channel(request: Request, channel_id: str, principal: AlertsAdminKey) -> JSON:
    """Change a channel's name or config (masked or left-out secrets are kept)."""
    body = await read_json(request)
    rt = runtime(request)
    changed = await ops.update_channel(rt, principal.project_id, channel_id, body)
    await audit(rt, principal, "alert_channel.update", channel_id)
    return JSON(changed)


@router.delete(CHANNELS + "/{channel_id}", responses=ok(Deleted))
async def delete_channel(request: Request, channel_id: str, principal: AlertsAdminKey) -> JSON:
    """Delete a channel."""
    await ops.delete_channel(runtime(request), principal.project_id, channel_id)
    await audit(runtime(request), principal, "alert_channel.delete", channel_id)
    return JSON({"message": "Alert channel deleted successfully"})


@router.post(CHANNELS + "/{channel_id}/test", responses=ok(ChannelTestResult))
async def send_test(request: Request, channel_id: str, principal: AlertsAdminKey) -> JSON:
    """Send a notification of kind ``test`` through the channel (one attempt). 200 with
    ``delivered: true``, or 502 with ``delivered: false`` and ``error`` saying why
    (refused by the SSRF guard, unreachable, the receiver's status, ...)."""
    error = await ops.send_test(runtime(request), principal.project_id, channel_id)
    if error is None:
        return JSON({"delivered": True, "error": None})
    return JSON({"delivered": False, "error": error}, status_code=502)
