"""LLM connections: the upsert body checked, the key (and extra headers' values) sealed
with the server key (``alerts/secretbox.py``, the channels' AES-GCM box) before they
are stored, opened only to call the endpoint, and shown masked (``displaySecretKey``)."""

from __future__ import annotations

from typing import Any

from .. import _json
from ..alerts.message import DeliveryError
from ..alerts.outbound import check_url
from ..alerts.secretbox import SecretBox
from ..errors import InvalidRequestData
from .llm import Endpoint

#: The adapters Langfuse's spec names (``LlmAdapter``); calls work for ``openai``.
ADAPTERS = ("anthropic", "openai", "azure", "bedrock", "google-vertex-ai", "google-ai-studio")


class ConnectionError_(InvalidRequestData, ValueError):
    """An LLM connection body that cannot be stored (400 naming the field)."""


def _context(connection_id: str) -> str:
    return f"llm-connection:{connection_id}"


def mask(secret: str) -> str:
    """The key as shown: its last four characters after an ellipsis (``...abcd``)."""
    return "..." + secret[-4:] if len(secret) > 8 else "..."


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConnectionError_(f"{where}: expected a list of non-empty strings")
    return list(dict.fromkeys(value))


def check_connection(body: Any) -> dict[str, Any]:
    """The checked fields of a ``PUT /api/public/llm-connections`` body (secrets still
    in clear: :func:`seal` them before storing)."""
    if not isinstance(body, dict):
        raise ConnectionError_("expected a JSON object")
    provider = body.get("provider")
    if not isinstance(provider, str) or not provider.strip() or len(provider) > 200:
        raise ConnectionError_("provider: required, a non-empty string of at most 200 characters")
    adapter = body.get("adapter")
    if adapter not in ADAPTERS:
        raise ConnectionError_(f"adapter: must be one of {', '.join(ADAPTERS)}")
    secret = body.get("secretKey")
    if not isinstance(secret, str) or not secret:
        raise ConnectionError_("secretKey: required, a non-empty string")
    base_url = body.get("baseURL")
    if base_url is not None:
        if not isinstance(base_url, str):
            raise ConnectionError_("baseURL: expected a string or null")
        try:
            check_url(base_url)
        except DeliveryError as exc:
            raise ConnectionError_(f"baseURL: {exc}") from None
    headers = body.get("extraHeaders")
    headers = {} if headers is None else headers
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in headers.items()
    ):
        raise ConnectionError_("extraHeaders: expected an object of string values")
    with_defaults = body.get("withDefaultModels", True)
    if with_defaults is None:
        with_defaults = True
    if not isinstance(with_defaults, bool):
        raise ConnectionError_("withDefaultModels: expected true or false")
    config = body.get("config")
    if config is not None and not isinstance(config, dict):
        raise ConnectionError_("config: expected an object or null")
    return {
        "provider": provider.strip(),
        "adapter": adapter,
        "secret": secret,
        "base_url": base_url,
        "custom_models": _strings(body.get("customModels"), "customModels"),
        "with_default_models": with_defaults,
        "extra_headers": dict(headers),
        "config": config,
    }


def seal(box: SecretBox, connection_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The stored fields: the key and the extra headers sealed, bound to the id."""
    headers = fields["extra_headers"]
    return {
        "provider": fields["provider"],
        "adapter": fields["adapter"],
        "secret_sealed": box.seal(fields["secret"], _context(connection_id)),
        "display_secret_key": mask(fields["secret"]),
        "base_url": fields["base_url"],
        "custom_models": fields["custom_models"],
        "with_default_models": fields["with_default_models"],
        "extra_headers_sealed": box.seal(_json.dumps(headers), _context(connection_id))
        if headers
        else None,
        "extra_header_keys": sorted(headers),
        "config": fields["config"],
    }


def endpoint_of(box: SecretBox, row: dict[str, Any]) -> Endpoint:
    """What to call for a stored connection, its secrets opened."""
    context = _context(row["id"])
    headers: dict[str, str] = {}
    if row["extra_headers_sealed"]:
        headers = _json.loads(box.open(row["extra_headers_sealed"], context))
    return Endpoint(
        row["adapter"], row["base_url"], box.open(row["secret_sealed"], context), headers
    )
