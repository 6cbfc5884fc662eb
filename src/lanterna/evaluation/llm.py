"""Calls to a project's LLM connection: OpenAI-compatible chat completions, through
the SSRF guard (``alerts/outbound.py``: the host resolved once and checked, the
connection made to the checked address, no redirects).

The connection's key arrives here already opened (``secrets.py``) and goes only into
the ``Authorization`` header; no error message ever holds it (messages name the
endpoint's status and the start of its answer, and an answer echoing the key has it
masked).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import _json
from ..alerts.message import DeliveryError
from ..alerts.outbound import OutboundPolicy, Resolver, post_for_answer, resolve_host
from ..errors import DomainError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: Adapters that speak the OpenAI chat-completions wire format.
OPENAI_COMPATIBLE = frozenset({"openai"})


class LlmError(DomainError):
    """The LLM endpoint could not be used: refused by the guard, failed, timed out,
    answered an error or something that is not a completion (502 on the API)."""

    status = 502
    error = "LlmConnectionError"


@dataclass(frozen=True)
class Endpoint:
    """Where and how to call: from a stored connection, its secrets opened."""

    adapter: str
    base_url: str | None
    api_key: str = field(repr=False)
    extra_headers: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class Completion:
    """A chat completion: its text, the model that answered, token usage
    (``input``/``output``/``total``, empty when the endpoint gave none) and latency."""

    text: str
    model: str
    usage: dict[str, int]
    latency_ms: float


@dataclass(frozen=True)
class Caller:
    """Makes the calls: the outbound policy, a timeout, and (tests) a resolver and a
    clock for the latency."""

    policy: OutboundPolicy
    timeout: float = 30.0
    resolver: Resolver = resolve_host
    clock: Callable[[], float] = time.perf_counter

    def chat(
        self,
        endpoint: Endpoint,
        model: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any] | None = None,
    ) -> Completion:
        """One chat completion; :class:`LlmError` saying why not."""
        if endpoint.adapter not in OPENAI_COMPATIBLE:
            raise LlmError(
                f"the {endpoint.adapter!r} adapter is not supported yet: use an"
                " OpenAI-compatible endpoint with the 'openai' adapter"
            )
        url = (endpoint.base_url or DEFAULT_BASE_URL).rstrip("/") + "/chat/completions"
        body = _json.dumpb({**(params or {}), "model": model, "messages": messages})
        headers = {
            **endpoint.extra_headers,
            "Content-Type": "application/json",
            "Authorization": f"Bearer {endpoint.api_key}",
        }
        start = self.clock()
        try:
            status, answer = post_for_answer(
                url, body, headers, policy=self.policy, timeout=self.timeout,
                resolver=self.resolver,
            )  # fmt: skip
        except DeliveryError as exc:
            raise LlmError(self._clean(f"the LLM endpoint failed: {exc}", endpoint)) from None
        latency = (self.clock() - start) * 1000.0
        if status >= 400:
            head = answer[:300].decode(errors="replace").strip()
            raise LlmError(self._clean(f"the LLM endpoint answered {status}: {head}", endpoint))
        return _completion(answer, model, latency)

    @staticmethod
    def _clean(message: str, endpoint: Endpoint) -> str:
        if endpoint.api_key and len(endpoint.api_key) >= 4:
            message = message.replace(endpoint.api_key, "***")
        return message


def _completion(answer: bytes, model: str, latency_ms: float) -> Completion:
    try:
        data = _json.loads(answer)
        message = data["choices"][0]["message"]
        text = message.get("content") or ""
        if not isinstance(text, str):
            text = _json.dumps(text)
    except (_json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        raise LlmError("the LLM endpoint's answer is not a chat completion") from None
    usage: dict[str, int] = {}
    raw = data.get("usage") if isinstance(data, dict) else None
    if isinstance(raw, dict):
        for ours, theirs in (("input", "prompt_tokens"), ("output", "completion_tokens"),
                             ("total", "total_tokens")):  # fmt: skip
            value = raw.get(theirs)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                usage[ours] = value
    answered = data.get("model") if isinstance(data.get("model"), str) else model
    return Completion(text, answered, usage, latency_ms)
