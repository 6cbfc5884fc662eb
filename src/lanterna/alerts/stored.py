"""Between stored channel rows and deliverable channels: sealing secrets on the way in,
opening them on the way out, the per-server delivery settings (the SSRF allowlist).

The API, the settings page and the evaluator all go through these functions, so a
channel's secrets are sealed and opened in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from .. import _json
from .channels import ChannelFields, Delivery, open_channel
from .message import AlertMessage, Channel, DeliveryError
from .outbound import OutboundPolicy
from .secretbox import SecretBox, SecretKeyError, load_key


@lru_cache(maxsize=8)
def secret_box(secret_key: str, data_dir: str) -> SecretBox:
    """The server's :class:`SecretBox` (``LANTERNA_SECRET_KEY`` or the data dir's key
    file), made once per key source."""
    return SecretBox(load_key(secret_key, data_dir))


@lru_cache(maxsize=8)
def outbound_policy(allow: str) -> OutboundPolicy:
    """The SSRF policy of ``LANTERNA_OUTBOUND_ALLOW``."""
    return OutboundPolicy.parse(allow)


def to_row(box: SecretBox, channel_id: str, fields: ChannelFields) -> dict[str, Any]:
    """What the store keeps of checked fields: secrets sealed, their names in clear."""
    return {
        "name": fields.name,
        "kind": fields.kind,
        "config": fields.config,
        "secrets": box.seal(_json.dumps(fields.secrets), channel_id),
        "secret_names": sorted(fields.secrets),
    }


def from_row(box: SecretBox, row: dict[str, Any]) -> ChannelFields:
    """The fields of a stored row, secrets decrypted (kept in memory only)."""
    secrets = _json.loads(box.open(row["secrets"], row["id"]))
    return ChannelFields(row["name"], row["kind"], dict(row["config"]), dict(secrets))


def channel_of(box: SecretBox, row: dict[str, Any], delivery: Delivery | None = None) -> Channel:
    """The deliverable channel of a stored row."""
    return open_channel(from_row(box, row), delivery)


class _Unusable:
    """A stored channel that cannot be opened (its secrets were sealed under another
    server key): every delivery fails with the reason, recorded in the alert history."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def deliver(self, message: AlertMessage) -> None:
        """Fail with the reason."""
        raise DeliveryError(self.reason)


#: ``(project id, channel ids) -> stored rows`` of those channels that exist.
FetchChannels = Callable[[str, list[str]], list[dict[str, Any]]]


def channel_lookup(
    fetch: FetchChannels, box: SecretBox, delivery: Delivery
) -> Callable[[dict[str, Any]], list[tuple[str, Channel]]]:
    """The evaluator's ``channels_for``: a stored rule (``project_id``,
    ``channel_ids``) -> its ``(channel id, channel)`` pairs, opened from the store at
    each call (an edited channel is used at once; a deleted one is skipped)."""

    def channels_for(rule: dict[str, Any]) -> list[tuple[str, Channel]]:
        ids = [str(i) for i in rule.get("channel_ids") or []]
        if not ids:
            return []
        found: list[tuple[str, Channel]] = []
        for row in fetch(rule["project_id"], ids):
            try:
                found.append((row["id"], channel_of(box, row, delivery)))
            except SecretKeyError as exc:
                found.append((row["id"], _Unusable(exc.message)))
        return found

    return channels_for
