"""Between stored channel rows and deliverable channels: sealing secrets on the way in,
opening them on the way out, the per-server delivery settings (the SSRF allowlist).

The API, the settings page and the evaluator all go through these functions, so a
channel's secrets are sealed and opened in one place.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .. import _json
from .channels import ChannelFields, Delivery, open_channel
from .message import Channel
from .outbound import OutboundPolicy
from .secretbox import SecretBox, load_key


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
