"""Alert channels: ``/api/public/alert-channels`` (list, create, get, update, delete,
send a test). Project-scoped by the API key like every public route; secrets
(``config.secret``, a Slack ``config.url``, ``config.password``) are answered masked.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field, RootModel

from .. import channel_ops as ops
from ..audit import audit
from ..auth import AlertsAdminKey, ProjectKey
from ..doc_models import DocModel
from ..responses import JSON
from ..runtime import runtime
from .body import NOT_BLANK, Deleted, json_body, ok, read_json

router = APIRouter(tags=["Alert channels"])

CHANNELS = "/api/public/alert-channels"


class AlertChannel(DocModel):
    """A channel; each secret field in ``config`` is ``"********"`` when set, else null."""

    id: str
    name: str
    type: str
    config: dict[str, Any]
    createdAt: str
    updatedAt: str


class AlertChannelBody(DocModel):
    """Create (``name``, ``type``, ``config`` required) or update (any of them; ``type``
    cannot change) a channel. ``config`` by type: ``webhook`` ``{url, secret}`` (secret
    at least 16 characters); ``slack`` ``{url}`` (the incoming-webhook URL, https);
    ``email`` ``{host, port (587), security (starttls|tls|none), username, password,
    from, to: [addresses]}``. In an update, a secret left out or sent as ``"********"``
    keeps the stored one."""

    name: str | None = None
    type: str | None = None
    config: dict[str, Any] | None = None


class AlertChannelList(DocModel):
    """The project's channels, by name."""

    data: list[AlertChannel]


class ChannelTestResult(DocModel):
    """The outcome of a "send test": ``delivered``, and ``error`` saying why not."""

    delivered: bool
    error: str | None = None


#: A character ``str.strip`` keeps (and not NUL): see ``body.NOT_BLANK``.
_KEPT = r"[^\s\x1c-\x1f\x85\x00]"
#: A channel's URL (``outbound.check_url``): http(s), a host, an optional port, no user
#: name or password. The pattern states a part of what the server takes (a DNS name or
#: IPv4 address; the server also takes IPv6 literals and other spellings ``urlsplit``
#: reads): every URL it allows is accepted.
URL = r"^https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,4})?([/?#][^\s\x00]*)?$"
#: An email address as the server takes it: an ``@``, none of CR, LF, ``,;<>``.
ADDRESS = r"^[^\r\n,;<>\x00]*@[^\r\n,;<>\x00]*$"
#: A webhook secret: at least 16 characters between its first and last kept character.
SECRET = rf"^[^\x00]*?{_KEPT}[^\x00]{{14,}}{_KEPT}[^\x00]*$"

_Closed = ConfigDict(extra="forbid")


class WebhookConfig(DocModel):
    """A webhook: the URL it POSTs to and the HMAC ``secret`` (16 characters or more)."""

    model_config = _Closed
    url: Annotated[str, Field(max_length=2000, pattern=URL)]
    secret: Annotated[str, Field(max_length=500, pattern=SECRET)]


class SlackConfig(DocModel):
    """A Slack incoming webhook: its https URL."""

    model_config = _Closed
    url: Annotated[str, Field(max_length=2000, pattern=URL.replace("https?", "https"))]


class EmailConfig(DocModel):
    """An SMTP server and the addresses (``to``: 1 to 50; the server also takes them as
    one string separated by commas or semicolons). ``password`` is required with a
    non-empty ``username``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {
                "required": ["username"],
                "properties": {"username": {"type": "string", "minLength": 1}},
            },
            "then": {
                "required": ["password"],
                "properties": {"password": {"type": "string", "minLength": 1}},
            },
        },
    )
    host: Annotated[str, Field(max_length=253, pattern=NOT_BLANK)]
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: Annotated[str | None, Field(max_length=254)] = None
    password: Annotated[str | None, Field(max_length=1000)] = None
    from_: Annotated[str, Field(alias="from", max_length=254, pattern=ADDRESS)]
    to: Annotated[
        list[Annotated[str, Field(max_length=254, pattern=ADDRESS)]],
        Field(min_length=1, max_length=50),
    ]


_NAME = Annotated[str, Field(max_length=200, pattern=NOT_BLANK)]


class WebhookChannelBody(DocModel):
    """A webhook channel to create."""

    model_config = _Closed
    name: _NAME
    type: Literal["webhook"]
    config: WebhookConfig


class SlackChannelBody(DocModel):
    """A Slack channel to create."""

    model_config = _Closed
    name: _NAME
    type: Literal["slack"]
    config: SlackConfig


class EmailChannelBody(DocModel):
    """An email channel to create."""

    model_config = _Closed
    name: _NAME
    type: Literal["email"]
    config: EmailConfig


class AlertChannelCreate(RootModel[WebhookChannelBody | SlackChannelBody | EmailChannelBody]):
    """Create a channel: ``name``, ``type`` and the ``config`` of that type."""


_BODY = json_body(AlertChannelBody)


@router.get(CHANNELS, responses=ok(AlertChannelList))
async def list_channels(request: Request, principal: ProjectKey) -> JSON:
    """The project's alert channels, secrets masked."""
    return JSON({"data": await ops.list_channels(runtime(request), principal.project_id)})


@router.post(CHANNELS, responses=ok(AlertChannel), openapi_extra=json_body(AlertChannelCreate))
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
