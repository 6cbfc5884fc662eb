"""Usage and cost maps from the shapes Langfuse ingestion bodies carry (contract 2.4).

The result is always a flat map of usage key -> integer count and cost key -> USD.
OpenAI detail keys (cached, reasoning, audio tokens) are split out of ``input`` and
``output`` so that a sum over keys never counts a token twice.
"""

from __future__ import annotations

import math
from typing import Any


class UsageError(ValueError):
    """A usage object that cannot be read."""


#: The largest usage count one observation may report (a trillion: far past any model,
#: and small enough that sums over millions of observations fit a 64-bit integer).
MAX_COUNT = 10**12
#: The largest cost in USD one observation may report.
MAX_COST = 1e12


def check_bounds(values: dict[str, Any] | None, field: str, limit: float) -> None:
    """Raise :class:`UsageError` naming ``field.key`` when a value is over ``limit``."""
    for key, value in (values or {}).items():
        if value > limit:
            raise UsageError(f"{field}.{key}: must be at most {limit:,.0f}, got {value}")


_OPENAI_CHAT = ("prompt_tokens", "completion_tokens")
_OPENAI_RESPONSES = ("input_tokens", "output_tokens")


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return None
        if parsed.is_integer() and parsed >= 0:
            return int(parsed)
    return None


def _openai(
    usage: dict[str, Any], inp: str, out: str, inp_details: str, out_details: str
) -> dict[str, int]:
    result: dict[str, int] = {}
    input_count = _count(usage.get(inp)) or 0
    output_count = _count(usage.get(out)) or 0
    for details_key, prefix in ((inp_details, "input"), (out_details, "output")):
        details = usage.get(details_key)
        if not isinstance(details, dict):
            continue
        for key, raw in details.items():
            count = _count(raw)
            if count is None:
                continue
            # The detail key is kept whole: "cached_tokens" -> "input_cached_tokens",
            # the name the model price table uses.
            result[f"{prefix}_{key}"] = count
            if prefix == "input":
                input_count -= count
            else:
                output_count -= count
    result["input"] = max(input_count, 0)
    result["output"] = max(output_count, 0)
    total = _count(usage.get("total_tokens"))
    result["total"] = total if total is not None else sum(result.values())
    return result


def normalize_usage_details(value: Any) -> dict[str, int] | None:
    """``usageDetails``: OpenAI chat, OpenAI responses, or a free map of key -> count."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UsageError("usageDetails must be an object of usage type -> token count")
    if any(k in value for k in _OPENAI_CHAT):
        result = _openai(
            value,
            "prompt_tokens",
            "completion_tokens",
            "prompt_tokens_details",
            "completion_tokens_details",
        )
    elif any(k in value for k in _OPENAI_RESPONSES) and not any(
        isinstance(v, (int, float)) and k not in ("input_tokens", "output_tokens", "total_tokens")
        for k, v in value.items()
    ):
        result = _openai(
            value, "input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details"
        )
    else:
        result = {}
        for key, raw in value.items():
            count = _count(raw)
            if count is not None:
                result[str(key)] = count
    if not result:
        return None
    check_bounds(result, "usageDetails", MAX_COUNT)
    if "total" not in result:
        result["total"] = sum(result.values())
    return result


def normalize_legacy_usage(value: Any) -> tuple[dict[str, int] | None, dict[str, float] | None]:
    """The legacy ``usage`` object: counts ``input/output/total`` and costs ``*Cost``."""
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise UsageError("usage must be an object")
    counts: dict[str, int] = {}
    costs: dict[str, float] = {}
    if any(k in value for k in ("promptTokens", "completionTokens", "totalTokens")):
        pairs = (
            ("promptTokens", "input"),
            ("completionTokens", "output"),
            ("totalTokens", "total"),
        )
    else:
        pairs = (("input", "input"), ("output", "output"), ("total", "total"))
    for wire, key in pairs:
        raw = value.get(wire)
        if raw is None:
            continue
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < 0:
            raise UsageError(f"usage.{wire} must be a non-negative integer")
        if isinstance(raw, float) and not raw.is_integer():
            raise UsageError(f"usage.{wire} must be an integer, got {raw}")
        counts[key] = int(raw)
    for wire, key in (("inputCost", "input"), ("outputCost", "output"), ("totalCost", "total")):
        cost = _cost(value.get(wire))
        if cost is not None:
            costs[key] = cost
    check_bounds(counts, "usage", MAX_COUNT)
    check_bounds(costs, "usage", MAX_COST)
    if counts and "total" not in counts:
        counts["total"] = sum(counts.values())
    return counts or None, costs or None


def _cost(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    if math.isnan(value) or math.isinf(value) or value < 0:
        return None
    return value


def normalize_cost_details(value: Any) -> dict[str, float] | None:
    """``costDetails``: key -> USD; negative, NaN and non-numeric values are dropped."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UsageError("costDetails must be an object of cost type -> USD")
    result = {str(k): c for k, v in value.items() if (c := _cost(v)) is not None}
    if not result:
        return None
    check_bounds(result, "costDetails", MAX_COST)
    if "total" not in result:
        result["total"] = sum(result.values())
    return result
