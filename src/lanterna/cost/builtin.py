"""Built-in prices: ``genai-prices`` (offline, bundled data) as :class:`PriceModel`.

genai-prices names its usage units by dimensions (``input_tokens`` includes every input
token; ``cache_read_tokens`` is the cached part of it, ...) and charges each token at
the price of the most specific priced unit that contains it. Our usage parts
(:mod:`.usage`) are disjoint, so the same rule becomes one price per part: the price
of the most specific priced unit whose dimensions the part's unit has. Long-context
prices (``TieredPrices``: all tokens cost the tier price once the request's input
tokens exceed the tier's start) become tiers with the condition "usage keys matching
``^input`` sum to more than the start". The tests check the result against
``genai_prices.calc_price`` for real models.

Lookups are cached per model name; a name genai-prices does not resolve by itself is
tried as ``provider/model`` (LiteLLM, OpenRouter style) and then against the providers
that host open models (Meta's Llama has no provider of its own).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from .prices import PriceModel, Tier, UsageCondition
from .usage import (
    ACCEPTED_PREDICTION,
    CACHE_READ,
    CACHE_READ_AUDIO,
    CACHE_WRITE,
    CACHE_WRITE_1H,
    INPUT,
    INPUT_AUDIO,
    INPUT_IMAGE,
    INPUT_TOOL_USE,
    OUTPUT,
    OUTPUT_AUDIO,
    OUTPUT_IMAGE,
    REASONING,
    REJECTED_PREDICTION,
    WEB_SEARCHES,
)

ID_PREFIX = "builtin:"
INPUT_PATTERN = "^input"

#: Our usage part -> the genai-prices usage unit it is a part of.
GENAI_UNIT: dict[str, str] = {
    INPUT: "input_tokens",
    CACHE_READ: "cache_read_tokens",
    CACHE_WRITE: "cache_write_tokens",
    CACHE_WRITE_1H: "cache_write_1h_tokens",
    INPUT_AUDIO: "input_audio_tokens",
    CACHE_READ_AUDIO: "cache_audio_read_tokens",
    INPUT_IMAGE: "input_image_tokens",
    INPUT_TOOL_USE: "input_tokens",
    OUTPUT: "output_tokens",
    REASONING: "output_reasoning_tokens",
    OUTPUT_AUDIO: "output_audio_tokens",
    OUTPUT_IMAGE: "output_image_tokens",
    ACCEPTED_PREDICTION: "output_tokens",
    REJECTED_PREDICTION: "output_tokens",
    WEB_SEARCHES: "web_searches",
}

# Parts whose genai unit is theirs alone (input_tool_use shares input_tokens' price).
_OWN_UNIT = frozenset(
    part for part, unit in GENAI_UNIT.items() if list(GENAI_UNIT.values()).count(unit) == 1
) | {INPUT, OUTPUT}

# Providers tried, in this order, for names no provider claims (open-weight models).
_HOSTS = (
    "groq",
    "together",
    "fireworks",
    "aws",
    "azure",
    "cerebras",
    "novita",
    "avian",
    "perplexity",
    "cloudflare",
    "databricks",
)
_lock = threading.Lock()


class _Unit:
    __slots__ = ("dims", "per", "usage_key")

    def __init__(self, usage_key: str, per: int, dims: dict[str, str]) -> None:
        self.usage_key = usage_key
        self.per = per
        self.dims = frozenset(dims.items())


@lru_cache(maxsize=1)
def _units() -> tuple[dict[str, _Unit], dict[str, _Unit]]:
    """genai-prices' unit table: by usage key and by price key."""
    from genai_prices.data_units import unit_data

    by_usage: dict[str, _Unit] = {}
    by_price: dict[str, _Unit] = {}
    for usage_key, raw in unit_data.items():
        unit = _Unit(usage_key, int(raw["per"]), dict(raw.get("dimensions", {})))
        by_usage[usage_key] = unit
        by_price[raw.get("price_key", usage_key)] = unit
    return by_usage, by_price


def _snapshot() -> Any:
    from genai_prices import data_snapshot

    return data_snapshot.get_snapshot()


# --- name -> (provider, model) -----------------------------------------------------------


@lru_cache(maxsize=8192)
def lookup(name: str) -> tuple[Any, Any] | None:
    """The genai-prices ``(Provider, ModelInfo)`` a model name resolves to, or None."""
    ref = name.strip()
    if not ref:
        return None
    from genai_prices.data_snapshot import find_provider_by_id

    with _lock:  # genai-prices fills its own lookup caches: one writer at a time
        snap = _snapshot()
        try:
            return snap.find_provider_model(ref, None, None, None)
        except LookupError:
            pass
        if "/" in ref:
            prefix, rest = ref.split("/", 1)
            provider = find_provider_by_id(snap.providers, prefix)
            if provider is not None:
                model = provider.find_model(rest, all_providers=snap.providers)
                if model is not None:
                    return provider, model
            try:
                return snap.find_provider_model(rest, None, None, None)
            except LookupError:
                pass
        by_id = {p.id: p for p in snap.providers}
        for provider_id in _HOSTS:
            provider = by_id.get(provider_id)
            if provider is None:
                continue
            model = provider.find_model(ref)
            if model is not None:
                return provider, model
            if "/" in ref:
                model = provider.find_model(ref.split("/", 1)[1])
                if model is not None:
                    return provider, model
    return None


# --- genai-prices ModelPrice -> our tiers -------------------------------------------------


def _part_prices(model_price: Any) -> tuple[dict[str, tuple[Any, int]], frozenset[str]]:
    """Per usage part: the genai price value (Decimal or TieredPrices) and its ``per``;
    and the parts priced by a unit of their own (the ones worth showing)."""
    by_usage, by_price = _units()
    priced = [
        (by_price[key], value)
        for key, value in vars(model_price).items()
        if value is not None and key in by_price
    ]
    out: dict[str, tuple[Any, int]] = {}
    own: set[str] = set()
    for part, usage_key in GENAI_UNIT.items():
        target = by_usage[usage_key].dims
        best = None
        best_rank: tuple[int, bool] = (-1, False)
        for unit, value in priced:
            if unit.dims <= target:
                # Most specific wins; between equals (cached audio), the cache price.
                rank = (len(unit.dims), any(k == "token_type" for k, _ in unit.dims))
                if rank > best_rank:
                    best, best_rank = (value, unit.per), rank
        if best is not None:
            out[part] = best
            if best_rank[0] == len(target) and part in _OWN_UNIT:
                own.add(part)
    return out, frozenset(own)


def _at(value: Any, threshold: int | None) -> Decimal:
    """The price of a genai value when the input tokens exceed ``threshold``."""
    from genai_prices.types import TieredPrices

    if not isinstance(value, TieredPrices):
        return value
    price = value.base
    if threshold is not None:
        for tier in value.tiers:  # ascending by start
            if tier.start <= threshold:
                price = tier.price
    return price


def _convert(provider: Any, model: Any, model_price: Any) -> PriceModel:
    from genai_prices.types import TieredPrices

    parts, shown = _part_prices(model_price)
    starts = sorted(
        {
            t.start
            for value, _ in parts.values()
            if isinstance(value, TieredPrices)
            for t in value.tiers
        },
        reverse=True,
    )
    model_id = f"{ID_PREFIX}{provider.id}:{model.id}"

    def prices(threshold: int | None) -> dict[str, Decimal]:
        return {part: _at(value, threshold) / per for part, (value, per) in parts.items()}

    tiers = tuple(
        Tier(
            name=f"Input over {start:,} tokens",
            priority=i + 1,
            prices=prices(start),
            conditions=(UsageCondition(INPUT_PATTERN, "gt", float(start)),),
            id=f"{model_id}:over-{start}",
        )
        for i, start in enumerate(starts)
    )
    return PriceModel(
        id=model_id,
        model_name=model.id,
        match_pattern=match_regex(model.match),
        default=Tier("Standard", 0, prices(None), is_default=True, id=f"{model_id}:standard"),
        tiers=tiers,
        builtin=True,
        provider=provider.id,
        tokenizer_id="openai" if provider.id in ("openai", "azure") else None,
        extra={"name": model.name, "contextWindow": model.context_window, "shown": shown},
    )


_converted: dict[int, tuple[Any, PriceModel]] = {}


def price_model(provider: Any, model: Any, at: datetime | None) -> PriceModel:
    """The built-in model's prices in force at ``at`` (now when None) as a PriceModel."""
    from ..timeutil import now

    model_price = model.get_prices(at or now())
    # Price objects of the bundled data live as long as the process: key on identity.
    hit = _converted.get(id(model_price))
    if hit is not None and hit[0] is model_price:
        return hit[1]
    converted = _convert(provider, model, model_price)
    _converted[id(model_price)] = (model_price, converted)
    return converted


# Names whose result does not depend on the time: no match, or a model with one price.
_timeless: dict[str, PriceModel | None] = {}


def find(name: str, at: datetime | None) -> PriceModel | None:
    """The built-in PriceModel for a model name at a time, or None when none matches."""
    try:
        return _timeless[name]
    except KeyError:
        pass
    found = lookup(name)
    if found is not None and isinstance(found[1].prices, list):
        return price_model(found[0], found[1], at)  # prices that change over time
    if len(_timeless) > 10_000:
        _timeless.clear()
    result = _timeless[name] = None if found is None else price_model(found[0], found[1], None)
    return result


def by_id(model_id: str) -> PriceModel | None:
    """A built-in model by its API id (``builtin:<provider>:<model>``), current prices."""
    if not model_id.startswith(ID_PREFIX):
        return None
    provider_id, sep, name = model_id[len(ID_PREFIX) :].partition(":")
    if not sep:
        return None
    for provider in _snapshot().providers:
        if provider.id == provider_id:
            for model in provider.models:
                if model.id == name:
                    return price_model(provider, model, None)
    return None


def all_models() -> Iterator[PriceModel]:
    """Every built-in model with its current prices (about 2,300)."""
    for provider in _snapshot().providers:
        for model in provider.models:
            yield price_model(provider, model, None)


# --- genai-prices match logic -> an equivalent regex (shown as matchPattern) ----------------


def match_regex(logic: Any) -> str:
    """A regex equivalent to a genai-prices match clause (on the lower-cased name)."""
    return "(?i)" + _clause(logic)


def _clause(logic: Any) -> str:
    from genai_prices import types as gp

    if isinstance(logic, gp.ClauseEquals):
        return "^" + re.escape(logic.equals.lower()) + "$"
    if isinstance(logic, gp.ClauseStartsWith):
        return "^" + re.escape(logic.starts_with.lower())
    if isinstance(logic, gp.ClauseEndsWith):
        return re.escape(logic.ends_with.lower()) + "$"
    if isinstance(logic, gp.ClauseContains):
        return re.escape(logic.contains.lower())
    if isinstance(logic, gp.ClauseRegex):
        return "(?:" + logic.regex + ")"
    if isinstance(logic, gp.ClauseOr):
        return "(?:" + "|".join(_clause(c) for c in logic.or_) + ")"
    if isinstance(logic, gp.ClauseAnd):
        return "^" + "".join(f"(?=.*?(?:{_clause(c)}))" for c in logic.and_)
    raise TypeError(f"unknown genai-prices clause {logic!r}")


def warm_up() -> threading.Thread:
    """Load genai-prices' data in a background thread, so the first priced observation
    does not wait for it (about half a second). Returns the (daemon) thread."""

    def load() -> None:
        try:
            _units()
            lookup("gpt-4o")
        except Exception:  # a failed warm-up only means a slower first lookup
            logging.getLogger(__name__).exception("loading genai-prices failed")

    thread = threading.Thread(target=load, name="lanterna-prices-warm-up", daemon=True)
    thread.start()
    return thread
