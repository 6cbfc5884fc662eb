"""Price models: tiers of per-unit prices, tier conditions, a project's custom models.

One shape serves both price sources. A project's custom models come from
``/api/public/models`` (Langfuse's ``CreateModelRequest``: ``matchPattern`` regex,
``startDate``, flat prices or ``pricingTiers``); built-in ones are converted from
``genai-prices`` (see :mod:`.builtin`). Prices are USD per unit (per token) as
:class:`~decimal.Decimal`, keyed by the usage vocabulary of :mod:`.usage`.

Matching (contract 5.1): a project's custom models win over built-ins; among custom
models the one with the latest ``startDate`` not after the observation wins (models
without a start date last, then the newest). The pattern is searched in the model name
(PostgreSQL ``~`` semantics); ``(?i)`` makes it case-insensitive.

Every pattern here is user-supplied and runs on RE2 (``google-re2``), which matches in
time linear in the name: a pattern such as ``^(a+)+$`` cannot stall ingestion. RE2 has
no lookarounds or backreferences; such patterns are refused when a model is created.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import re2

from ..errors import InvalidRequestData
from ..timeutil import parse_ts
from .usage import PARENT, TOTAL, canonical_key

UNITS = ("CHARACTERS", "TOKENS", "MILLISECONDS", "SECONDS", "IMAGES", "REQUESTS")
OPERATORS = ("gt", "gte", "lt", "lte", "eq", "neq")
ATTRIBUTE_SOURCES = ("model_parameters", "metadata")
MAX_PATTERN = 1000


class ModelError(InvalidRequestData, ValueError):
    """A model definition that cannot be accepted (400, ``Invalid request data`` and the
    text)."""


def _options(case_sensitive: bool) -> Any:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is the caller's 400, not a log line
    options.case_sensitive = case_sensitive
    return options


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str, case_sensitive: bool = True) -> Any | None:
    """A compiled RE2 regex (linear-time matching), cached: patterns are matched on
    every priced observation. None for a pattern RE2 refuses (one stored before
    patterns were checked with RE2): it matches nothing."""
    try:
        return re2.compile(pattern, _options(case_sensitive))
    except re2.error:
        return None


def check_pattern(pattern: str, where: str) -> None:
    """Raise :class:`ModelError` naming ``where`` unless RE2 compiles ``pattern``."""
    try:
        re2.compile(pattern, _options(True))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ModelError(
            f"{where}: invalid regex: {reason} (patterns use RE2 syntax: no lookarounds"
            " or backreferences)"
        ) from None


@dataclass(frozen=True, slots=True)
class UsageCondition:
    """The sum of the usage values whose key matches ``pattern``, compared with ``value``."""

    pattern: str
    operator: str
    value: float
    case_sensitive: bool = False

    def holds(self, usage: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
        """Whether the condition holds for this usage."""
        rx = compile_pattern(self.pattern, self.case_sensitive)
        if rx is None:
            return False
        got = sum(v for k, v in usage.items() if rx.search(k))
        op = self.operator
        if op == "gt":
            return got > self.value
        if op == "gte":
            return got >= self.value
        if op == "lt":
            return got < self.value
        if op == "lte":
            return got <= self.value
        if op == "eq":
            return got == self.value
        return got != self.value

    def to_json(self) -> dict[str, Any]:
        """Langfuse's ``PricingTierUsageCondition``."""
        return {
            "usageDetailPattern": self.pattern,
            "operator": self.operator,
            "value": self.value,
            "caseSensitive": self.case_sensitive,
        }


@dataclass(frozen=True, slots=True)
class AttributeCondition:
    """A top-level model parameter or metadata key whose value is one of ``values``."""

    source: str
    key: str
    values: tuple[str, ...]

    def holds(self, usage: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
        """Whether the observation's attribute has one of the values."""
        bag = record.get(self.source)
        if not isinstance(bag, Mapping) or self.key not in bag:
            return False
        value = bag[self.key]
        text = value if isinstance(value, str) else _json_text(value)
        return text in self.values

    def to_json(self) -> dict[str, Any]:
        """Langfuse's ``PricingTierAttributeCondition``."""
        return {
            "source": self.source,
            "key": self.key,
            "operator": "in",
            "values": list(self.values),
        }


def _json_text(value: Any) -> str:
    from .. import _json

    return _json.dumps(value)


Condition = UsageCondition | AttributeCondition


@dataclass(frozen=True, slots=True)
class Tier:
    """Prices that apply when all ``conditions`` hold (the default tier has none)."""

    name: str
    priority: int
    prices: Mapping[str, Decimal]
    conditions: tuple[Condition, ...] = ()
    is_default: bool = False
    id: str = ""

    def price(self, key: str) -> Decimal | None:
        """The unit price of usage ``key``, or of the nearest part it belongs to."""
        while True:
            found = self.prices.get(key)
            if found is not None or key not in PARENT:
                return found
            key = PARENT[key]

    def to_json(self) -> dict[str, Any]:
        """Langfuse's ``PricingTier``."""
        return {
            "id": self.id,
            "name": self.name,
            "isDefault": self.is_default,
            "priority": self.priority,
            "conditions": [c.to_json() for c in self.conditions],
            "prices": {k: float(v) for k, v in self.prices.items()},
        }


@dataclass(frozen=True, slots=True)
class PriceModel:
    """A model definition: how names match it and what its usage costs."""

    id: str
    model_name: str
    match_pattern: str
    default: Tier
    tiers: tuple[Tier, ...] = ()  # conditional tiers, by ascending priority
    builtin: bool = False
    provider: str | None = None
    start_date: datetime | None = None
    unit: str | None = "TOKENS"
    tokenizer_id: str | None = None
    tokenizer_config: Any = None
    created_at: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def tier_for(self, usage: Mapping[str, Any], record: Mapping[str, Any]) -> Tier:
        """The first conditional tier whose conditions all hold, else the default."""
        for tier in self.tiers:
            if all(c.holds(usage, record) for c in tier.conditions):
                return tier
        return self.default

    def all_tiers(self) -> list[Tier]:
        """Default tier first, then the conditional ones."""
        return [self.default, *self.tiers]


# --- matching ---------------------------------------------------------------------------


def _newest_first(model: PriceModel) -> tuple[bool, float, float]:
    start = model.start_date.timestamp() if model.start_date else 0.0
    created = model.created_at.timestamp() if model.created_at else 0.0
    return (model.start_date is None, -start, -created)


def order_custom(models: Sequence[PriceModel]) -> list[PriceModel]:
    """Custom models in matching order: latest start date first, undated ones last."""
    return sorted(models, key=_newest_first)


def match_custom(models: Sequence[PriceModel], name: str, at: datetime | None) -> PriceModel | None:
    """The first of ``models`` (already ordered) whose pattern matches and has started."""
    for model in models:
        if model.start_date is not None and at is not None and model.start_date > at:
            continue
        rx = compile_pattern(model.match_pattern)
        if rx is not None and rx.search(name):
            return model
    return None


# --- custom models: API input -> stored form -> PriceModel ------------------------------


def _price(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ModelError(f"{where}: expected a non-negative number")
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise ModelError(f"{where}: expected a non-negative number") from None
    # A decimal string beyond a double (``"1e400"``) could be stored but not shown: the
    # answers give prices as JSON numbers.
    if not price.is_finite() or price < 0 or not math.isfinite(float(price)):
        raise ModelError(f"{where}: expected a non-negative number")
    return price


def _prices(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, dict) or not raw:
        raise ModelError(f"{where}: at least one price is required")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key:
            raise ModelError(f"{where}: usage types must be non-empty strings")
        out[key] = str(_price(value, f"{where}.{key}"))
    return out


def _condition(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ModelError(f"{where}: expected an object")
    if "usageDetailPattern" in raw:
        pattern = raw["usageDetailPattern"]
        if not isinstance(pattern, str) or not pattern:
            raise ModelError(f"{where}.usageDetailPattern: expected a regex")
        if len(pattern) > MAX_PATTERN:
            raise ModelError(f"{where}.usageDetailPattern: at most {MAX_PATTERN} characters")
        check_pattern(pattern, f"{where}.usageDetailPattern")
        op = raw.get("operator")
        if op not in OPERATORS:
            raise ModelError(f"{where}.operator: must be one of {', '.join(OPERATORS)}")
        value = raw.get("value")
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise ModelError(f"{where}.value: expected a number")
        case = raw.get("caseSensitive", False)
        if not isinstance(case, bool):
            raise ModelError(f"{where}.caseSensitive: expected a boolean")
        return {
            "usageDetailPattern": pattern,
            "operator": op,
            "value": value,
            "caseSensitive": case,
        }
    source = raw.get("source")
    if source not in ATTRIBUTE_SOURCES:
        raise ModelError(
            f"{where}: expected usageDetailPattern, or source {' or '.join(ATTRIBUTE_SOURCES)}"
        )
    key = raw.get("key")
    if not isinstance(key, str) or not key:
        raise ModelError(f"{where}.key: expected a non-empty string")
    if raw.get("operator", "in") != "in":
        raise ModelError(f"{where}.operator: attribute conditions support only 'in'")
    values = raw.get("values")
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise ModelError(f"{where}.values: expected a non-empty array of strings")
    return {"source": source, "key": key, "operator": "in", "values": values}


def _tiers(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise ModelError("pricingTiers: expected a non-empty array")
    tiers = []
    for i, item in enumerate(raw):
        where = f"pricingTiers[{i}]"
        if not isinstance(item, dict):
            raise ModelError(f"{where}: expected an object")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ModelError(f"{where}.name: expected a non-empty string")
        is_default = item.get("isDefault")
        if not isinstance(is_default, bool):
            raise ModelError(f"{where}.isDefault: expected a boolean")
        priority = item.get("priority")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ModelError(f"{where}.priority: expected an integer")
        conditions = item.get("conditions", [])
        if not isinstance(conditions, list):
            raise ModelError(f"{where}.conditions: expected an array")
        if is_default and (priority != 0 or conditions):
            raise ModelError(f"{where}: the default tier needs priority 0 and no conditions")
        if not is_default and not conditions:
            raise ModelError(f"{where}: a tier that is not the default needs conditions")
        tiers.append(
            {
                "name": name,
                "isDefault": is_default,
                "priority": priority,
                "conditions": [
                    _condition(c, f"{where}.conditions[{j}]") for j, c in enumerate(conditions)
                ],
                "prices": _prices(item.get("prices"), f"{where}.prices"),
            }
        )
    if sum(1 for t in tiers if t["isDefault"]) != 1:
        raise ModelError("pricingTiers: exactly one tier must have isDefault true")
    if len({t["name"] for t in tiers}) != len(tiers):
        raise ModelError("pricingTiers: tier names must be unique")
    if len({t["priority"] for t in tiers}) != len(tiers):
        raise ModelError("pricingTiers: tier priorities must be unique")
    return tiers


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ModelError(f"{key}: expected a string")
    return value


def check_create(body: Any) -> dict[str, Any]:
    """Validate a ``CreateModelRequest``; return the fields to store.

    Rules (Langfuse's): ``modelName`` and a valid ``matchPattern`` are required; either
    flat prices (``inputPrice``/``outputPrice`` or ``totalPrice``, which become a
    default tier named "Standard") or ``pricingTiers`` with exactly one default tier.
    """
    if not isinstance(body, dict):
        raise ModelError("expected a JSON object")
    name = body.get("modelName")
    if not isinstance(name, str) or not name.strip():
        raise ModelError("modelName: required, a non-empty string")
    pattern = body.get("matchPattern")
    if not isinstance(pattern, str) or not pattern:
        raise ModelError("matchPattern: required, a regex")
    if len(pattern) > MAX_PATTERN:
        raise ModelError(f"matchPattern: at most {MAX_PATTERN} characters")
    check_pattern(pattern, "matchPattern")
    start = body.get("startDate")
    start_date = None
    if start is not None:
        try:
            start_date = parse_ts(start)
        except ValueError as exc:
            raise ModelError(f"startDate: {exc}") from None
    unit = body.get("unit")
    if unit is not None and unit not in UNITS:
        raise ModelError(f"unit: must be one of {', '.join(UNITS)}")
    flat = {k: body.get(k) for k in ("inputPrice", "outputPrice", "totalPrice")}
    flat = {k: v for k, v in flat.items() if v is not None}
    raw_tiers = body.get("pricingTiers")
    if raw_tiers is not None and flat:
        raise ModelError(
            "give either pricingTiers or flat prices (inputPrice/outputPrice/totalPrice)"
        )
    if "totalPrice" in flat and len(flat) > 1:
        raise ModelError("totalPrice cannot be set together with inputPrice or outputPrice")
    if raw_tiers is not None:
        tiers = _tiers(raw_tiers)
    elif flat:
        keys = {"inputPrice": "input", "outputPrice": "output", "totalPrice": "total"}
        prices = {keys[k]: str(_price(v, k)) for k, v in flat.items()}
        tiers = [
            {
                "name": "Standard",
                "isDefault": True,
                "priority": 0,
                "conditions": [],
                "prices": prices,
            }
        ]
    else:
        raise ModelError("prices required: give pricingTiers or inputPrice/outputPrice/totalPrice")
    tokenizer_id = _optional_str(body, "tokenizerId")
    return {
        "model_name": name.strip(),
        "match_pattern": pattern,
        "start_date": start_date,
        "unit": unit,
        "tokenizer_id": tokenizer_id,
        "tokenizer_config": body.get("tokenizerConfig"),
        "pricing_tiers": tiers,
    }


def _condition_of(raw: Mapping[str, Any]) -> Condition:
    if "usageDetailPattern" in raw:
        return UsageCondition(
            raw["usageDetailPattern"],
            raw["operator"],
            float(raw["value"]),
            bool(raw.get("caseSensitive", False)),
        )
    return AttributeCondition(raw["source"], raw["key"], tuple(raw["values"]))


def _tier_of(raw: Mapping[str, Any], model_id: str, index: int) -> Tier:
    # Prices are stored under the names the user gave and priced under our vocabulary,
    # so a price for "cache_read_input_tokens" applies to cached input tokens.
    prices = {canonical_key(k): Decimal(str(v)) for k, v in raw["prices"].items()}
    return Tier(
        name=raw["name"],
        priority=int(raw["priority"]),
        prices=prices,
        conditions=tuple(_condition_of(c) for c in raw.get("conditions") or ()),
        is_default=bool(raw["isDefault"]),
        id=f"{model_id}-tier-{index}",
    )


def custom_model(row: Mapping[str, Any]) -> PriceModel:
    """A stored custom model row (JSON and timestamps already decoded) as a PriceModel."""
    tiers = [_tier_of(t, row["id"], i) for i, t in enumerate(row["pricing_tiers"])]
    default = next(t for t in tiers if t.is_default)
    others = tuple(sorted((t for t in tiers if not t.is_default), key=lambda t: t.priority))
    return PriceModel(
        id=row["id"],
        model_name=row["model_name"],
        match_pattern=row["match_pattern"],
        default=default,
        tiers=others,
        builtin=False,
        start_date=row.get("start_date"),
        unit=row.get("unit"),
        tokenizer_id=row.get("tokenizer_id"),
        tokenizer_config=row.get("tokenizer_config"),
        created_at=row.get("created_at"),
    )


def price_of(tier: Tier, key: str) -> Decimal | None:
    """A tier's unit price for ``key`` (``total`` has no fallback)."""
    return tier.prices.get(TOTAL) if key == TOTAL else tier.price(key)
