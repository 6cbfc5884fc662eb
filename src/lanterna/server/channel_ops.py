"""Alert channel operations shared by the API (``api/channels.py``) and the settings
page (``ui/channels_page.py``): check, seal and store; list masked; send a test.

Secrets are sealed with the server key before they reach the store and opened only to
deliver; nothing here logs a channel's config or secrets.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from ..alerts.channels import ChannelFields, Delivery, check_channel, make_test_message
from ..alerts.message import Channel, DeliveryError
from ..alerts.outbound import RetryPolicy
from ..alerts.secretbox import SecretBox, SecretKeyError
from ..alerts.stored import (
    channel_lookup,
    channel_of,
    from_row,
    outbound_policy,
    secret_box,
    to_row,
)
from ..store.db import Conn
from ..timeutil import now
from .errors import not_found
from .runtime import Runtime
from .shapes import channel_json


def box_of(rt: Runtime) -> SecretBox:
    """The server's key for channel secrets."""
    return secret_box(rt.settings.secret_key, rt.settings.data_dir)


def delivery_of(rt: Runtime, retry: RetryPolicy | None = None) -> Delivery:
    """How this server delivers: its SSRF allowlist (``LANTERNA_OUTBOUND_ALLOW``)."""
    return Delivery(
        policy=outbound_policy(rt.settings.outbound_allow), retry=retry or RetryPolicy()
    )


def rule_channels(rt: Runtime) -> Callable[[dict[str, Any]], list[tuple[str, Channel]]]:
    """The evaluator's ``channels_for`` on this server: a rule's channels read through
    the store, secrets opened with the server key, sent with its SSRF allowlist and the
    default retries (run it in the evaluator's thread: it reads the database)."""
    store = rt.store.channels

    def fetch(project_id: str, ids: list[str]) -> list[dict[str, Any]]:
        def read(c: Conn) -> list[dict[str, Any]]:
            rows = (store.get_channel(c, project_id, i) for i in dict.fromkeys(ids))
            return [r for r in rows if r is not None]

        return rt.read_sync(read)

    return channel_lookup(fetch, box_of(rt), delivery_of(rt))


def stored_channels_of_rules(
    runtime_of: Callable[[], Runtime],
) -> Callable[[dict[str, Any]], list[tuple[str, Channel]]]:
    """The evaluator's ``channels_for`` for a runtime not built yet: :func:`rule_channels`
    made at the first rule that names a channel (so the key file is made only then)."""
    made: list[Callable[[dict[str, Any]], list[tuple[str, Channel]]]] = []

    def channels_for(rule: dict[str, Any]) -> list[tuple[str, Channel]]:
        if not rule.get("channel_ids"):
            return []
        if not made:
            made.append(rule_channels(runtime_of()))
        return made[0](rule)

    return channels_for


async def list_channels(rt: Runtime, project_id: str) -> list[dict[str, Any]]:
    """The project's channels, masked."""
    store = rt.store.channels
    return await rt.read(
        lambda c: [channel_json(c.dialect, r) for r in store.list_channels(c, project_id)]
    )


async def get_channel(rt: Runtime, project_id: str, channel_id: str) -> dict[str, Any]:
    """One channel, masked; 404 when missing."""
    row = await rt.read(lambda c: rt.store.channels.get_channel(c, project_id, channel_id))
    if row is None:
        raise not_found(f"Alert channel {channel_id}")
    return await rt.read(lambda c: channel_json(c.dialect, row))


async def create_channel(rt: Runtime, project_id: str, body: Any) -> dict[str, Any]:
    """Check, seal and store a new channel; the masked channel."""
    fields = check_channel(body)
    channel_id = str(uuid.uuid4())
    sealed = to_row(box_of(rt), channel_id, fields)
    store = rt.store.channels
    return await rt.write(
        lambda c: channel_json(c.dialect, store.create_channel(c, project_id, channel_id, sealed))
    )


async def update_channel(
    rt: Runtime, project_id: str, channel_id: str, body: Any
) -> dict[str, Any]:
    """Change a channel (fields left out, and masked secrets, keep their values)."""
    box = box_of(rt)
    store = rt.store.channels

    def work(c: Conn) -> dict[str, Any] | None:
        row = store.get_channel(c, project_id, channel_id)
        if row is None:
            return None
        try:
            stored = from_row(box, row)
        except SecretKeyError:  # the key changed: the secrets must be entered again
            stored = ChannelFields(row["name"], row["kind"], dict(row["config"]), {})
        fields = check_channel(body, stored=stored)
        updated = store.update_channel(c, project_id, channel_id, to_row(box, channel_id, fields))
        return None if updated is None else channel_json(c.dialect, updated)

    found = await rt.write(work)
    if found is None:
        raise not_found(f"Alert channel {channel_id}")
    return found


async def delete_channel(rt: Runtime, project_id: str, channel_id: str) -> None:
    """Delete a channel; 404 when missing."""
    store = rt.store.channels
    if not await rt.write(lambda c: store.delete_channel(c, project_id, channel_id)):
        raise not_found(f"Alert channel {channel_id}")


async def send_test(rt: Runtime, project_id: str, channel_id: str) -> str | None:
    """Deliver a ``test`` message through the channel; None when delivered, else why
    not (the DeliveryError's message: never a secret)."""
    row = await rt.read(lambda c: rt.store.channels.get_channel(c, project_id, channel_id))
    if row is None:
        raise not_found(f"Alert channel {channel_id}")
    # One attempt: the person who pressed the button sees the outcome at once.
    try:
        channel = channel_of(box_of(rt), row, delivery_of(rt, RetryPolicy(attempts=1)))
    except SecretKeyError as exc:
        return exc.message
    url = f"{rt.settings.base_url}/project/{project_id}/settings/channels"
    message = make_test_message(project_id, row["name"], url, now())
    try:
        await run_in_threadpool(channel.deliver, message)
    except DeliveryError as exc:
        return str(exc)
    return None
