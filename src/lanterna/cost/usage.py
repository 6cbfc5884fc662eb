"""Usage maps in one vocabulary, so a token is priced once and never dropped.

Ingestion keeps the usage a client sent (``provided_usage_details``) with the key names
it used: Langfuse's own (``input``, ``input_cached_tokens``), OpenAI's details split out
by ingestion (``input_cached_tokens``, ``output_reasoning_tokens``), Anthropic's
(``input_tokens`` without the cache, ``cache_read_input_tokens``,
``cache_creation_input_tokens``), Gemini's usage metadata (``promptTokenCount``
*including* ``cachedContentTokenCount``), or any free map. :func:`canonical_usage`
turns any of them into disjoint parts with fixed names:

=====================================  ==========================================
``input``                              input tokens not counted by a key below
``input_cached_tokens``                input tokens read from a prompt cache
``input_cache_creation``               input tokens written to a prompt cache (5 min)
``input_cache_creation_1h``            input tokens written to a 1-hour prompt cache
``input_audio_tokens``                 uncached audio input tokens
``input_cached_audio_tokens``          audio input tokens read from a cache
``input_image``                        image input tokens
``input_tool_use``                     tool-use prompt tokens (Gemini)
``output``                             output tokens not counted by a key below
``output_reasoning_tokens``            reasoning / thinking tokens
``output_audio_tokens``                audio output tokens
``output_image``                       image output tokens
``output_accepted_prediction_tokens``  accepted predicted-output tokens (OpenAI)
``output_rejected_prediction_tokens``  rejected predicted-output tokens (OpenAI)
``web_search_queries``                 web search calls
``total``                              all tokens (as sent, else the sum of parts)
=====================================  ==========================================

The names are those of Langfuse's model price table (and of what ingestion makes of
OpenAI usage), so OpenAI usage passes through unchanged. The parts are disjoint, so a
sum over keys counts every token once; keys we do not know are kept unchanged. Every
name holds ``input`` or ``output`` where Langfuse's read API sums "keys containing
input/output", so those sums stay right.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

INPUT = "input"
OUTPUT = "output"
TOTAL = "total"
CACHE_READ = "input_cached_tokens"
CACHE_WRITE = "input_cache_creation"
CACHE_WRITE_1H = "input_cache_creation_1h"
INPUT_AUDIO = "input_audio_tokens"
CACHE_READ_AUDIO = "input_cached_audio_tokens"
INPUT_IMAGE = "input_image"
INPUT_TOOL_USE = "input_tool_use"
REASONING = "output_reasoning_tokens"
OUTPUT_AUDIO = "output_audio_tokens"
OUTPUT_IMAGE = "output_image"
ACCEPTED_PREDICTION = "output_accepted_prediction_tokens"
REJECTED_PREDICTION = "output_rejected_prediction_tokens"
WEB_SEARCHES = "web_search_queries"

#: A part without a price of its own costs what its parent costs: cached or audio
#: input tokens are still input tokens (pricing them at 0 would drop them).
PARENT: dict[str, str] = {
    CACHE_READ: INPUT,
    CACHE_WRITE: INPUT,
    CACHE_WRITE_1H: CACHE_WRITE,
    INPUT_AUDIO: INPUT,
    CACHE_READ_AUDIO: CACHE_READ,
    INPUT_IMAGE: INPUT,
    INPUT_TOOL_USE: INPUT,
    REASONING: OUTPUT,
    OUTPUT_AUDIO: OUTPUT,
    OUTPUT_IMAGE: OUTPUT,
    ACCEPTED_PREDICTION: OUTPUT,
    REJECTED_PREDICTION: OUTPUT,
}

# Names clients use for each part (compared lower-cased). When a map holds several
# names of one part they are the same tokens reported twice: the first one listed wins.
_ALIASES: dict[str, tuple[str, ...]] = {
    INPUT: ("input", "input_tokens", "prompt", "inputtokens", "prompttokens"),
    OUTPUT: ("output", "output_tokens", "completion", "outputtokens", "completiontokens"),
    TOTAL: ("total", "total_tokens", "totaltokens"),
    CACHE_READ: (
        "input_cached_tokens",
        "input_cache_read",
        "input_cached",
        "input_cache_read_tokens",
        "cache_read_input_tokens",
        "cache_read_tokens",
        "cached_tokens",
        "cache_read",
        "cachereadinputtokens",
        "cachedinputtokens",
    ),
    CACHE_WRITE: (
        "input_cache_creation",
        "input_cache_write",
        "input_cache_write_tokens",
        "input_cache_creation_tokens",
        "cache_creation_input_tokens",
        "cache_write_tokens",
        "cache_creation",
        "cache_write",
        "cachewriteinputtokens",
        "cachecreationinputtokens",
        "input_cache_creation_5m",
        "input_cache_write_5m",
        "ephemeral_5m_input_tokens",
    ),
    CACHE_WRITE_1H: (
        "input_cache_creation_1h",
        "input_cache_write_1h",
        "ephemeral_1h_input_tokens",
    ),
    INPUT_AUDIO: ("input_audio_tokens", "input_audio"),
    CACHE_READ_AUDIO: ("input_cached_audio_tokens", "input_cached_audio", "input_cache_read_audio"),
    INPUT_IMAGE: ("input_image", "input_image_tokens"),
    INPUT_TOOL_USE: ("input_tool_use",),
    REASONING: (
        "output_reasoning_tokens",
        "output_reasoning",
        "reasoning_tokens",
        "reasoning",
        "reasoningtokens",
    ),
    OUTPUT_AUDIO: ("output_audio_tokens", "output_audio"),
    OUTPUT_IMAGE: ("output_image", "output_image_tokens"),
    ACCEPTED_PREDICTION: (
        "output_accepted_prediction_tokens",
        "output_accepted_prediction",
        "accepted_prediction_tokens",
    ),
    REJECTED_PREDICTION: (
        "output_rejected_prediction_tokens",
        "output_rejected_prediction",
        "rejected_prediction_tokens",
    ),
    WEB_SEARCHES: (
        "web_search_queries",
        "web_searches",
        "websearchqueries",
        "web_search_requests",
        "web_search",
    ),
}
# Names that are already ours. Web searches are left out: they are no tokens, so a total
# that includes them must be recomputed.
_CANONICAL = frozenset(names[0] for part, names in _ALIASES.items() if part != WEB_SEARCHES)
_PART_OF: dict[str, str] = {alias: part for part, names in _ALIASES.items() for alias in names}
_RANK: dict[str, int] = {alias: i for names in _ALIASES.values() for i, alias in enumerate(names)}

# Gemini usage metadata, camelCase (REST) and snake_case (Python SDK).
_GEMINI = {
    "prompttokencount": "prompt",
    "prompt_token_count": "prompt",
    "candidatestokencount": "candidates",
    "candidates_token_count": "candidates",
    "thoughtstokencount": "thoughts",
    "thoughts_token_count": "thoughts",
    "cachedcontenttokencount": "cached",
    "cached_content_token_count": "cached",
    "tooluseprompttokencount": "tool_use",
    "tool_use_prompt_token_count": "tool_use",
    "totaltokencount": "total",
    "total_token_count": "total",
}


def canonical_key(key: str) -> str:
    """The vocabulary name of a usage (or price) key; unknown keys are returned as is."""
    return _PART_OF.get(key.lower(), key)


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return value


def _gemini(provided: Mapping[str, Any]) -> dict[str, Any]:
    """Gemini counts cached tokens inside the prompt and thoughts beside the candidates."""
    got: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for key, raw in provided.items():
        value = _number(raw)
        if value is None:
            continue
        name = _GEMINI.get(key.lower())
        if name is not None:
            got.setdefault(name, value)
        else:
            rest[key] = value
    cached = got.get("cached", 0)
    out: dict[str, Any] = {}
    if "prompt" in got or cached:
        out[INPUT] = max(got.get("prompt", 0) - cached, 0)
    if cached:
        out[CACHE_READ] = cached
    if got.get("tool_use"):
        out[INPUT_TOOL_USE] = got["tool_use"]
    if "candidates" in got:
        out[OUTPUT] = got["candidates"]
    if got.get("thoughts"):
        out[REASONING] = got["thoughts"]
    # Anything else (e.g. an explicit ``total``) goes through the general path.
    for key, value in _exclusive(rest).items():
        if key == TOTAL and "total" in got:
            continue
        out.setdefault(key, value)
    if "total" in got:
        out[TOTAL] = got["total"]
    return out


def _exclusive(provided: Mapping[str, Any]) -> dict[str, Any]:
    """Maps whose keys are already disjoint parts (Langfuse's convention, Anthropic's)."""
    out: dict[str, Any] = {}
    rank: dict[str, int] = {}
    for key, raw in provided.items():
        value = _number(raw)
        if value is None:
            continue
        lowered = key.lower()
        part = _PART_OF.get(lowered)
        if part is None:
            out.setdefault(key, value)
            continue
        r = _RANK[lowered]
        if part not in out or r < rank[part]:
            out[part] = value
            rank[part] = r
    return out


def canonical_usage(provided: Mapping[str, Any] | None) -> dict[str, Any]:
    """``provided`` (any usage shape ingestion keeps) as disjoint parts plus ``total``.

    ``total`` is the one sent. Ingestion fills a missing total with the sum of all sent
    values, which double counts Gemini's cached tokens; a total equal to that sum is
    therefore recomputed as the sum of the parts.
    """
    if not provided:
        return {}
    if (
        TOTAL in provided
        and provided.keys() <= _CANONICAL
        and all(type(v) is int and v >= 0 for v in provided.values())
    ):
        return dict(provided)  # already our vocabulary (the common case): nothing to do
    lowered = {k.lower() for k in provided}
    out = _gemini(provided) if lowered & _GEMINI.keys() else _exclusive(provided)
    sent_total = out.get(TOTAL)
    others = [v for k, v in provided.items() if k.lower() not in _ALIASES[TOTAL]]
    derived = sent_total is None or sent_total == sum(v for v in others if _number(v) is not None)
    if derived:
        parts = sum(v for k, v in out.items() if k != TOTAL and k != WEB_SEARCHES)
        if parts or sent_total is not None:
            out[TOTAL] = parts
    return out


def split_totals(usage: Mapping[str, Any]) -> tuple[int, int, int]:
    """``(input, output, total)`` token counts as the read API sums them."""
    inp: float = 0
    out: float = 0
    for key, value in usage.items():
        if key == TOTAL or not isinstance(value, (int, float)):
            continue
        if "input" in key:
            inp += value
        elif "output" in key:
            out += value
    total = usage.get(TOTAL)
    return int(inp), int(out), int(total if isinstance(total, (int, float)) else inp + out)
