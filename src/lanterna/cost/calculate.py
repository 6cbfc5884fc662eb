"""Usage and cost of one observation, from its merged record (contract 5.2, 5.3).

:class:`Pricing` is made once per write batch (one project); ``apply(record, old)``
fills the derived fields of an observation record after merging:

- ``usage_details``: the provided usage in our vocabulary (:mod:`.usage`), or, when
  none was provided, a token count (:mod:`.tokens`) for a model-bearing observation;
- ``cost_details`` / ``total_cost``: the provided cost when there is one (it always
  wins), else usage x the matched model's prices in the matching tier, in decimal
  arithmetic, per usage key plus ``total``;
- ``model_id`` and ``cost_info``: which model and tier priced it, the unit prices used,
  where the usage came from, or why there is no cost;
- ``usage_input/usage_output/usage_total``: token sums for aggregate queries.

Everything is derived from the record alone, so re-sending an event changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from . import builtin
from .prices import PriceModel, Tier, match_custom
from .tokens import count_usage
from .usage import TOTAL, canonical_usage, split_totals

log = logging.getLogger(__name__)

#: Fields this module owns on an observation record.
DERIVED = (
    "usage_details",
    "cost_details",
    "total_cost",
    "model_id",
    "cost_info",
    "usage_input",
    "usage_output",
    "usage_total",
)
# What the derived fields depend on: when none of these changed, nothing is recomputed.
_INPUTS = (
    "model",
    "provided_usage_details",
    "provided_cost_details",
    "model_parameters",
    "metadata",
    "start_time",
    "level",
    "input",
    "output",
)


def _text(d: Decimal) -> str:
    return format(d.normalize(), "f")


class Calculation:
    """The result for one record (also what the explain/match API shows)."""

    __slots__ = ("cost", "info", "model", "tier", "total", "usage")

    def __init__(self) -> None:
        self.usage: dict[str, Any] = {}
        self.cost: dict[str, Decimal] = {}
        self.total: Decimal | None = None
        self.model: PriceModel | None = None
        self.tier: Tier | None = None
        self.info: dict[str, Any] = {}


class _Plan:
    """What pricing a set of usage keys in a tier takes (cached: keys repeat a lot)."""

    __slots__ = ("priced", "prices_text", "tier", "total_price")

    def __init__(self, tier: Tier, keys: tuple[str, ...]) -> None:
        self.tier = tier
        self.priced = tuple(
            (key, price) for key in keys if key != TOTAL and (price := tier.price(key)) is not None
        )
        self.total_price = tier.prices.get(TOTAL)
        self.prices_text = _prices_text(tier, keys)


_plans: dict[tuple[int, tuple[str, ...]], _Plan] = {}


def _plan(tier: Tier, keys: tuple[str, ...]) -> _Plan:
    # Keyed on the tier's identity, checked on a hit (ids are reused after deletion).
    found = _plans.get((id(tier), keys))
    if found is not None and found.tier is tier:
        return found
    if len(_plans) > 10_000:
        _plans.clear()
    found = _plans[(id(tier), keys)] = _Plan(tier, keys)
    return found


def price_usage(
    model: PriceModel, usage: Mapping[str, Any], record: Mapping[str, Any]
) -> tuple[Tier, dict[str, Decimal], Decimal | None]:
    """``(tier, cost per key, total)`` for usage in our vocabulary; keys without a
    price cost nothing. ``total`` is None when no key had a price."""
    tier = model.tier_for(usage, record)
    plan = _plan(tier, tuple(usage))
    cost = {key: price * Decimal(usage[key]) for key, price in plan.priced}
    if plan.total_price is not None and TOTAL in usage:
        total: Decimal | None = plan.total_price * Decimal(usage[TOTAL])
    elif cost:
        total = sum(cost.values(), Decimal(0))
    else:
        total = None
    return tier, cost, total


class Pricing:
    """Prices for one write batch of one project: custom models are loaded once.

    ``load_custom`` returns the project's custom models in matching order; it is called
    at most once, and only when an observation names a model.
    """

    def __init__(self, load_custom: Callable[[], list[PriceModel]]) -> None:
        self._load = load_custom
        self._custom: list[PriceModel] | None = None

    def custom(self) -> list[PriceModel]:
        """The project's custom models (loaded on first use)."""
        if self._custom is None:
            self._custom = self._load()
        return self._custom

    def match(self, name: str, at: datetime | None) -> PriceModel | None:
        """The model a name resolves to at a time: custom first, then built-in."""
        custom = self.custom()
        found = match_custom(custom, name, at) if custom else None
        return found if found is not None else builtin.find(name, at)

    def calculate(self, record: Mapping[str, Any]) -> Calculation:
        """Usage and cost for a merged observation record."""
        calc = Calculation()
        name = record.get("model")
        at = record.get("start_time")
        model = self.match(name, at) if isinstance(name, str) and name.strip() else None
        calc.model = model
        info = calc.info
        provided_usage = record.get("provided_usage_details")
        usage = canonical_usage(provided_usage) if provided_usage else {}
        if usage:
            info["usage"] = "provided"
        elif model is not None or (isinstance(name, str) and name.strip()):
            counted = None
            if record.get("level") != "ERROR" and not record.get("provided_cost_details"):
                counted = count_usage(
                    name,  # type: ignore[arg-type]
                    record.get("input"),
                    record.get("output"),
                    model.tokenizer_id if model is not None else None,
                    model.tokenizer_config if model is not None else None,
                )
            if counted is not None:
                usage, estimate = counted
                info["usage"] = "counted"
                info["usageEstimate"] = estimate
        calc.usage = usage
        if model is not None:
            info["modelId"] = model.id
            info["modelName"] = model.model_name
            info["builtIn"] = model.builtin
            if model.provider:
                info["provider"] = model.provider
        provided_cost = record.get("provided_cost_details")
        if provided_cost:
            info["source"] = "provided"
            calc.cost = {k: Decimal(str(v)) for k, v in provided_cost.items() if k != TOTAL}
            total = provided_cost.get(TOTAL)
            calc.total = Decimal(str(total)) if total is not None else None
            if model is not None:
                calc.tier = model.tier_for(usage, record)
                info["tier"] = calc.tier.name
                info["prices"] = _prices_used(calc.tier, usage)
            return calc
        if model is None:
            info["source"] = "none"
            info["reason"] = (
                f"no price matched model {name!r}"
                if isinstance(name, str) and name.strip()
                else "no model name"
            )
            return calc
        if not usage:
            info["source"] = "none"
            info["reason"] = "no usage"
            return calc
        tier, cost, total = price_usage(model, usage, record)
        calc.tier = tier
        info["tier"] = tier.name
        info["prices"] = _prices_used(tier, usage)
        if total is None:
            info["source"] = "none"
            info["reason"] = f"model {model.model_name!r} has no price for usage {sorted(usage)}"
            return calc
        info["source"] = "calculated"
        calc.cost, calc.total = cost, total
        return calc

    def apply(self, record: dict[str, Any], old: Mapping[str, Any] | None = None) -> None:
        """Fill the derived fields of ``record`` (in place); never raises."""
        if (
            old is not None
            and "cost_info" in old
            and all(record.get(k) == old.get(k) for k in _INPUTS)
        ):
            _copy_derived(record, old)  # nothing it depends on changed
            return
        if not (
            record.get("model")
            or record.get("provided_usage_details")
            or record.get("provided_cost_details")
        ):
            for key in DERIVED:
                record.pop(key, None)
            return
        try:
            calc = self.calculate(record)
        except Exception:  # a pricing bug must not lose the observation
            log.exception("cost calculation failed for observation %r", record.get("id"))
            return
        write(record, calc)


def _prices_used(tier: Tier, usage: Mapping[str, Any]) -> dict[str, str]:
    """The unit prices applied to each usage key (plus input/output/total if set)."""
    return dict(_plan(tier, tuple(usage)).prices_text)


def _prices_text(tier: Tier, usage: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in (*usage, "input", "output"):
        if key == TOTAL or key in out:
            continue
        price = tier.price(key)
        if price is not None:
            out[key] = _text(price)
    if TOTAL in tier.prices:
        out[TOTAL] = _text(tier.prices[TOTAL])
    return out


def _copy_derived(record: dict[str, Any], old: Mapping[str, Any]) -> None:
    for key in DERIVED:
        if key in old:
            record[key] = old[key]
        else:
            record.pop(key, None)


def write(record: dict[str, Any], calc: Calculation) -> None:
    """Store a calculation's results in the record's derived fields."""
    usage = calc.usage
    for key in DERIVED:
        record.pop(key, None)
    if usage:
        record["usage_details"] = usage
        inp, out, total = split_totals(usage)
        record["usage_input"], record["usage_output"], record["usage_total"] = inp, out, total
    if calc.total is not None or calc.cost:
        details = {k: float(v) for k, v in calc.cost.items()}
        if calc.total is not None:
            details[TOTAL] = float(calc.total)
            record["total_cost"] = float(calc.total)
        record["cost_details"] = details
    if calc.model is not None:
        record["model_id"] = calc.model.id
    record["cost_info"] = calc.info
