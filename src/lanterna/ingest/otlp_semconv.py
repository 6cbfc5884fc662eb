"""Semantic-convention keys -> metadata, model, parameters, usage, cost (contract 3.6).

Each reader takes a span's attributes (plus scope name and span events where a
convention needs them) and returns plain values; none of them raises on odd input:
an attribute that cannot be read is skipped, as Langfuse does.

Conventions covered: Langfuse's own ``langfuse.observation.*`` keys, OpenInference
(``input.value``, ``llm.*``), the OpenTelemetry GenAI conventions (``gen_ai.*``
attributes and message events, old and new forms), Traceloop/OpenLLMetry
(``gen_ai.prompt.N.*``, ``traceloop.entity.*``), the Vercel AI SDK (scope ``ai``),
Pydantic AI / Logfire, MLflow, Flue, LiveKit and Google ADK.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from .. import _json
from ..timeutil import NaiveTimestampError, check_ts, parse_ts
from .usage import (
    MAX_COST,
    MAX_COUNT,
    UsageError,
    normalize_cost_details,
    normalize_usage_details,
)

# --- small value helpers ---------------------------------------------------------------


# The characters a JSON text can start with (RFC 8259: whitespace, then a value).
# Other strings are not JSON; skipping the decoder saves raising and catching an error.
JSON_STARTS = frozenset(' \t\n\r{["-0123456789tfn')


def parse_json(value: Any) -> Any:
    """A string attribute holding JSON, decoded; anything else (or bad JSON) unchanged."""
    if isinstance(value, str) and value and value[0] in JSON_STARTS:
        try:
            return _json.loads(value)
        except _json.JSONDecodeError:
            return value
    return value


def parse_io(value: Any) -> Any:
    """An input/output attribute: JSON objects, arrays and quoted strings are decoded.

    SDKs JSON-encode structured values but send text as it is, so a text answer such
    as ``42`` or ``true`` stays text instead of turning into a number or a boolean.
    """
    if isinstance(value, str) and value[:1] in ("{", "[", '"'):
        return parse_json(value)
    return value


def _json_object(value: Any) -> dict[str, Any] | None:
    parsed = parse_json(value)
    return parsed if isinstance(parsed, dict) else None


def first(attrs: dict[str, Any], *keys: str) -> Any:
    """The value of the first key present with a non-empty value."""
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


def _count(value: Any) -> int | None:
    """A token count, or None when unreadable, negative or over ``MAX_COUNT`` (such a
    count is skipped, as the JSON route refuses it: no 64-bit overflow downstream)."""
    if isinstance(value, bool):
        return None
    count: int | None = None
    if isinstance(value, int):
        count = value
    elif isinstance(value, float) and value.is_integer():
        count = int(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        count = int(number) if number.is_integer() else None
    return count if count is not None and 0 <= count <= MAX_COUNT else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


# --- metadata ------------------------------------------------------------------------

METADATA_PREFIXES = (
    "langfuse.trace.metadata",
    "langfuse.observation.metadata",
    "langfuse.metadata",
    "ai.telemetry.metadata",
)


_METADATA_ROOTS = frozenset(METADATA_PREFIXES)
_UNKNOWN = object()
#: Attribute key -> (metadata prefix, key inside it, or None for the JSON-object key),
#: or None for keys of no metadata group. Attribute names repeat across spans and
#: exports, so each is classified once; the bound keeps odd senders from growing it.
_METADATA_KEYS: dict[str, tuple[str, str | None] | None] = {}
_METADATA_KEYS_MAX = 20_000


def _metadata_key(key: str) -> tuple[str, str | None] | None:
    # Every prefix ends with its only ".metadata", so the first ".metadata" of a key
    # that has one of them as a prefix ends exactly there.
    head, found, rest = key.partition(".metadata")
    if not found or head + ".metadata" not in _METADATA_ROOTS:
        return None
    if not rest:
        return head + ".metadata", None
    if rest[0] != ".":
        return None
    return head + ".metadata", rest[1:]


def metadata_groups(attrs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each metadata prefix's values, from ``prefix`` (a JSON object) and ``prefix.<key>``.

    One pass over the attributes; the per-key values win over the JSON object. Values
    are JSON-decoded when they are JSON: SDKs encode non-string values (5.x strings
    too), and Langfuse decodes them the same way when reading.
    """
    blobs: dict[str, dict[str, Any]] = {}
    keyed: dict[str, dict[str, Any]] = {}
    known = _METADATA_KEYS.get
    for key, value in attrs.items():
        kind: Any = known(key, _UNKNOWN)
        if kind is None:
            continue
        if kind is _UNKNOWN:
            kind = _metadata_key(key)
            if len(_METADATA_KEYS) < _METADATA_KEYS_MAX:
                _METADATA_KEYS[key] = kind
            if kind is None:
                continue
        prefix: str = kind[0]
        sub: str | None = kind[1]
        # parse_json(), inline: a call per value is a measurable share of this loop.
        if isinstance(value, str) and value and value[0] in JSON_STARTS:
            try:  # noqa: SIM105 (contextlib.suppress costs more on this hot path)
                value = _json.loads(value)
            except _json.JSONDecodeError:
                pass
        if sub is None:
            if isinstance(value, dict):
                blobs[prefix] = value
        else:
            group = keyed.get(prefix)
            if group is None:
                group = keyed[prefix] = {}
            group[sub] = value
    if not blobs:
        return {p: keyed.get(p) or {} for p in METADATA_PREFIXES}
    return {p: {**blobs.get(p, {}), **keyed.get(p, {})} for p in METADATA_PREFIXES}


# --- model -----------------------------------------------------------------------------

MODEL_KEYS = (
    "langfuse.observation.model.name",
    "gen_ai.response.model",
    "ai.model.id",
    "gen_ai.request.model",
    "llm.response.model",
    "llm.model_name",
    "model",
)
# Vercel AI SDK agent spans repeat their steps' model and usage: counting them twice
# would double the cost.
AGENT_OPERATIONS = frozenset({"invoke_agent", "agent_step"})


def is_agent_aggregate(attrs: dict[str, Any]) -> bool:
    """Whether model, usage and cost are skipped on this span (agent roll-ups)."""
    return attrs.get("gen_ai.operation.name") in AGENT_OPERATIONS


def model_name(attrs: dict[str, Any]) -> str | None:
    """The model name, from the first model key present."""
    value = first(attrs, *MODEL_KEYS)
    if value is None and attrs.get("genkit:metadata:subtype") == "model":
        value = attrs.get("genkit:name")
    return None if value is None else str(value)


# --- model parameters ------------------------------------------------------------------


def _param_value(value: Any) -> Any:
    # Langfuse's clients read model parameters as string | number | bool values.
    if isinstance(value, (str, int, float, bool)):
        return value
    return _json.dumps(value)


def _params(source: dict[str, Any]) -> dict[str, Any]:
    return {str(k): _param_value(v) for k, v in source.items() if v is not None}


_AI_PARAMS = (
    ("maxSteps", ("ai.settings.maxSteps",)),
    ("toolChoice", ("ai.prompt.toolChoice",)),
    ("maxTokens", ("gen_ai.request.max_tokens",)),
    ("finishReason", ("gen_ai.response.finish_reasons", "gen_ai.finishReason")),
    ("system", ("gen_ai.system", "ai.model.provider")),
    ("maxRetries", ("ai.settings.maxRetries",)),
    ("mode", ("ai.settings.mode",)),
    ("temperature", ("gen_ai.request.temperature",)),
    (
        "service_tier",
        ("ai.response.providerMetadata.openai.serviceTier", "gen_ai.request.service_tier"),
    ),
)


_PARAM_PREFIXES = ("gen_ai.request.", "llm.invocation_parameters.")


def model_parameters(attrs: dict[str, Any], scope: str) -> dict[str, Any] | None:
    """Model parameters: the Langfuse key, the Vercel set, OpenInference or GenAI keys."""
    explicit = _json_object(attrs.get("langfuse.observation.model.parameters"))
    if explicit is not None:
        return _params(explicit) or None
    if scope == "ai":
        found = {name: first(attrs, *keys) for name, keys in _AI_PARAMS}
        return _params({k: v for k, v in found.items() if v is not None}) or None
    for key in ("llm.invocation_parameters", "model_config"):
        blob = _json_object(attrs.get(key))
        if blob:
            return _params(blob)
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if not key.startswith(_PARAM_PREFIXES):  # one C-level test for most keys
            continue
        for prefix in _PARAM_PREFIXES:
            if key.startswith(prefix) and key != prefix + "model":
                out[key[len(prefix) :]] = value
    return _params(out) or None


# --- usage -----------------------------------------------------------------------------

_INPUT = ("prompt_tokens", "input_tokens", "prompt")
_OUTPUT = ("completion_tokens", "output_tokens", "completion")
_TOTAL = ("total_tokens", "total")
_CACHE_READ = (
    "cache_read.input_tokens",
    "cache_read_input_tokens",
    "cache_read_tokens",
    "details.cache_read_tokens",
    "details.cache_read_input_tokens",
    "prompt_details.cache_read",
    "input_cached_tokens",
)
_CACHE_CREATION = (
    "cache_creation.input_tokens",
    "cache_creation_input_tokens",
    "cache_write_tokens",
    "details.cache_write_tokens",
    "details.cache_creation_input_tokens",
    "prompt_details.cache_write",
    "input_cache_creation",
)
_REASONING = ("reasoning.output_tokens", "completion_details.reasoning")
_AUDIO = ("completion_details.audio",)


def _take(raw: dict[str, int], keys: tuple[str, ...]) -> int | None:
    found = None
    for key in keys:
        value = raw.pop(key, None)
        if found is None and value is not None:
            found = value
    return found


def _split(base: dict[str, int | None], subtract: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """Remove detail counts from ``input``/``output`` so no token is counted twice."""
    out = {k: v for k, v in base.items() if v is not None}
    for total_key, detail_keys in subtract.items():
        if total_key in out:
            taken = sum(out.get(k, 0) for k in detail_keys)
            out[total_key] = max(out[total_key] - taken, 0)
    return out


_USAGE_PREFIXES = ("gen_ai.usage.", "llm.token_count.")


def _generic_usage(attrs: dict[str, Any]) -> dict[str, int]:
    raw: dict[str, int] = {}
    for key, value in attrs.items():
        if not key.startswith(_USAGE_PREFIXES):  # one C-level test for most keys
            continue
        if key.startswith("gen_ai.usage."):
            name = key[len("gen_ai.usage.") :]
            if name == "cost":
                continue
        elif key.startswith("llm.token_count."):
            name = key[len("llm.token_count.") :]
        else:
            continue
        count = _count(value)
        if count is not None and count >= 0:
            raw[name] = count
    if not raw:
        return {}
    known = {
        "input": _take(raw, _INPUT),
        "output": _take(raw, _OUTPUT),
        "total": _take(raw, _TOTAL),
        "input_cached_tokens": _take(raw, _CACHE_READ),
        "input_cache_creation": _take(raw, _CACHE_CREATION),
        "output_reasoning_tokens": _take(raw, _REASONING),
        "output_audio_tokens": _take(raw, _AUDIO),
    }
    out = _split(
        known,
        {
            "input": ("input_cached_tokens", "input_cache_creation"),
            "output": ("output_reasoning_tokens", "output_audio_tokens"),
        },
    )
    for key, value in raw.items():
        out[key.removeprefix("details.")] = value
    return out


def _provider_usage(attrs: dict[str, Any]) -> dict[str, int]:
    """Cache and reasoning counts the Vercel AI SDK reports per provider."""
    meta = _json_object(attrs.get("ai.response.providerMetadata")) or {}
    out: dict[str, int] = {}

    def put(key: str, value: Any) -> None:
        count = _count(value)
        if count is not None and count >= 0:
            out[key] = count

    openai = meta.get("openai")
    if isinstance(openai, dict):
        put("input_cached_tokens", openai.get("cachedPromptTokens"))
        put("accepted_prediction_tokens", openai.get("acceptedPredictionTokens"))
        put("rejected_prediction_tokens", openai.get("rejectedPredictionTokens"))
        put("output_reasoning_tokens", openai.get("reasoningTokens"))
    anthropic = meta.get("anthropic")
    if isinstance(anthropic, dict):
        put("input_cache_creation", anthropic.get("cacheCreationInputTokens"))
        usage = anthropic.get("usage")
        if isinstance(usage, dict):
            put("input_cache_creation", usage.get("cache_creation_input_tokens"))
            put("input_cached_tokens", usage.get("cache_read_input_tokens"))
    bedrock = meta.get("bedrock")
    if isinstance(bedrock, dict) and isinstance(bedrock.get("usage"), dict):
        usage = bedrock["usage"]
        put("input_cache_read", usage.get("cacheReadInputTokens"))
        put("input_cache_write", usage.get("cacheWriteInputTokens"))
        put("input_cache_creation", usage.get("cacheCreationInputTokens"))
    return out


def _vercel_usage(attrs: dict[str, Any]) -> dict[str, int]:
    def count(*keys: str) -> int | None:
        return _count(first(attrs, *keys))

    base: dict[str, int | None] = {
        "input": count(
            "gen_ai.usage.prompt_tokens",
            "gen_ai.usage.input_tokens",
            "ai.usage.inputTokens",
            "ai.usage.promptTokens",
        ),
        "output": count(
            "gen_ai.usage.completion_tokens",
            "gen_ai.usage.output_tokens",
            "ai.usage.outputTokens",
            "ai.usage.completionTokens",
        ),
        "total": count("ai.usage.tokens", "ai.usage.totalTokens"),
        "input_cached_tokens": count("ai.usage.cachedInputTokens"),
        "output_reasoning_tokens": count("ai.usage.reasoningTokens"),
    }
    for key, value in _provider_usage(attrs).items():
        if base.get(key) is None:
            base[key] = value
    return _split(
        base,
        {
            "input": ("input_cached_tokens", "input_cache_read", "input_cache_creation"),
            "output": ("output_reasoning_tokens",),
        },
    )


def usage_details(attrs: dict[str, Any], scope: str) -> dict[str, int] | None:
    """Usage counts by usage key, with ``total`` (the sum when not reported)."""
    explicit = attrs.get("langfuse.observation.usage_details")
    if explicit is not None:
        parsed = parse_json(explicit)
        if isinstance(parsed, dict):
            try:
                return normalize_usage_details(parsed)
            except UsageError:
                return None
        if not isinstance(explicit, str) or parsed is not explicit:
            return None  # readable but not an object: Langfuse stores no usage
    usage = _vercel_usage(attrs) if scope == "ai" else _generic_usage(attrs)
    if not usage:
        return None
    if "total" not in usage:
        usage["total"] = sum(usage.values())
    return usage


def cost_details(attrs: dict[str, Any]) -> dict[str, float] | None:
    """Provided cost in USD by cost key (a provided cost is never recalculated)."""
    explicit = _json_object(attrs.get("langfuse.observation.cost_details"))
    if explicit is not None:
        try:
            return normalize_cost_details(explicit)
        except UsageError:
            return None
    for key in ("gen_ai.usage.cost", "llm.cost.total"):
        total = _number(attrs.get(key))
        if total is not None and math.isfinite(total) and 0 <= total <= MAX_COST:
            return {"total": total}
    return None


def completion_start_time(attrs: dict[str, Any], start: datetime) -> datetime | None:
    """When the first token arrived, from the Langfuse key or Vercel's ms-to-first-chunk."""
    value = attrs.get("langfuse.observation.completion_start_time")
    if isinstance(value, str):
        text = parse_json(value)
        if isinstance(text, str):
            try:
                try:
                    return parse_ts(text)
                except NaiveTimestampError:
                    return parse_ts(text + "Z")  # SDKs write UTC; an offset-less time is UTC
            except ValueError:  # unreadable or out of range (timeutil.MAX_TS): skipped
                pass
    ms = _number(first(attrs, "ai.response.msToFirstChunk", "ai.stream.msToFirstChunk"))
    if ms is not None and ms >= 0:
        try:
            return check_ts(start + timedelta(milliseconds=ms))
        except (OverflowError, ValueError):  # past the range of a timestamp: skipped
            pass
    return None
