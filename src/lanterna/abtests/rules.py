"""What an A/B test may hold, checked into stored fields; its states and transitions.

An A/B test (API JSON, camelCase):

- ``name``: unique in the project, fixed once created (the SDK and the URLs use it);
- ``description``; ``unit``: ``user`` (default) or ``session``, what a unit id is;
- ``variants``: at least two, each ``{"name", "weight", "promptVersion" | "promptLabel"}``
  (weights zero or more, summing to a positive total; names unique);
- ``control``: the variant the others are compared with (default the first);
- ``prompt``: the prompt whose versions or labels the variants name (optional: a test
  may split on any variant key);
- ``primaryMetric``: a score name, or ``cost``, ``latency`` or ``errorRate``;
  ``guardrailMetrics``: more of the same, reported beside it;
- ``minimumDetectableEffect`` (absolute, in the metric's unit) and ``alpha`` (default
  0.05) for the sample size still needed; ``salt`` (default random).

States: ``draft`` -> ``running`` <-> ``stopped`` -> ``concluded`` (with a ``winner``).
While a test is running, stopped or concluded its variants, weights, salt and prompt
are fixed: changing them would move units between variants (``assign``), so a change
is refused with a 409 naming the field. Create a new test instead.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from .._json import integral
from ..errors import Conflict, InvalidInput

#: Metrics every trace has (besides score names).
BUILTIN_METRICS = ("cost", "latency", "errorRate")
STATES = ("draft", "running", "stopped", "concluded")
UNITS = ("user", "session")
#: Names the URL scheme reserves (``/api/public/ab-tests/compare``).
RESERVED = ("compare", "new")
#: Fields that decide assignment: fixed once a test has left ``draft``.
ASSIGNMENT_FIELDS = ("variants", "salt", "prompt", "control")
MAX_VARIANTS = 20
TEST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
VARIANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:-]{0,49}$")
#: State -> the actions allowed from it and the state each leads to.
TRANSITIONS = {
    "start": (("draft", "stopped"), "running"),
    "stop": (("running",), "stopped"),
    "conclude": (("running", "stopped"), "concluded"),
}


class AbTestError(InvalidInput):
    """A bad A/B test definition or readout request (400 naming the field)."""


def _text(value: Any, field: str, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AbTestError(f"{field} must be a non-empty string")
    if pattern is not None and not pattern.match(value):
        raise AbTestError(
            f"{field} {value!r} may hold letters, digits and . _ : - (at most"
            f" {100 if pattern is TEST_NAME else 50} characters, starting with a letter or digit)"
        )
    return value


def check_metric(value: Any, field: str) -> str:
    """A metric name: a builtin or a score name (whether the score exists is the
    caller's check, it needs the store)."""
    name = _text(value, field)
    if len(name) > 200:
        raise AbTestError(f"{field} is longer than 200 characters")
    return name


def _variants(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) < 2:
        raise AbTestError("variants must be a list of at least two variants")
    if len(value) > MAX_VARIANTS:
        raise AbTestError(f"variants: at most {MAX_VARIANTS}")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        where = f"variants[{i}]"
        if not isinstance(item, Mapping):
            raise AbTestError(f"{where} must be an object with name and weight")
        unknown = set(item) - {"name", "weight", "promptVersion", "promptLabel"}
        if unknown:
            raise AbTestError(f"{where}: unknown field {sorted(unknown)[0]!r}")
        name = _text(item.get("name"), f"{where}.name", VARIANT_NAME)
        weight = item.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight != weight:
            raise AbTestError(f"{where}.weight must be a number")
        if weight < 0 or weight == float("inf"):
            raise AbTestError(f"{where}.weight must be zero or more (and finite)")
        version = integral(item.get("promptVersion"))
        label = item.get("promptLabel")
        if version is not None and (
            isinstance(version, bool) or not isinstance(version, int) or version < 1
        ):
            raise AbTestError(f"{where}.promptVersion must be a positive integer")
        if label is not None:
            _text(label, f"{where}.promptLabel")
        if version is not None and label is not None:
            raise AbTestError(f"{where}: give promptVersion or promptLabel, not both")
        out.append(
            {"name": name, "weight": float(weight), "promptVersion": version, "promptLabel": label}
        )
    names = [v["name"] for v in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise AbTestError(f"variants: the name {twice[0]!r} is used twice")
    if sum(v["weight"] for v in out) <= 0:
        raise AbTestError("variants: the weights must sum to a positive total")
    return out


def _number(value: Any, field: str, low: float, high: float | None = None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise AbTestError(f"{field} must be a number")
    if value <= low or (high is not None and value >= high) or value == float("inf"):
        bound = f"above {low:g}" + (f" and below {high:g}" if high is not None else "")
        raise AbTestError(f"{field} must be {bound}")
    return float(value)


#: The API's name of each stored field (what a body may hold).
_STORED = {
    "name": "name",
    "description": "description",
    "unit": "unit",
    "variants": "variants",
    "control": "control",
    "prompt": "prompt",
    "primaryMetric": "primary_metric",
    "guardrailMetrics": "guardrails",
    "minimumDetectableEffect": "mde",
    "alpha": "alpha",
    "salt": "salt",
}


def check_test(body: Any, before: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A create body (``before`` None) or a PATCH body over ``before`` (a stored test) ->
    the stored fields. 400 naming the field when wrong; 409 when a started test's
    assignment would change."""
    if not isinstance(body, Mapping):
        raise AbTestError("the body must be a JSON object")
    unknown = set(body) - set(_STORED)
    if unknown:
        raise AbTestError(f"unknown field {sorted(unknown)[0]!r}")
    merged = {} if before is None else {api: before[col] for api, col in _STORED.items()}
    if before is not None and "name" in body and body["name"] != before["name"]:
        raise AbTestError("name cannot change (the SDK and URLs use it)")
    merged.update(body)
    name = _text(merged.get("name"), "name", TEST_NAME)
    if name in RESERVED:
        raise AbTestError(f"name {name!r} is reserved")
    description = merged.get("description")
    if description is not None and not isinstance(description, str):
        raise AbTestError("description must be a string")
    unit = merged.get("unit") or "user"
    if unit not in UNITS:
        raise AbTestError(f"unit must be one of {', '.join(UNITS)}")
    variants = _variants(merged.get("variants"))
    control = merged.get("control") or variants[0]["name"]
    if control not in [v["name"] for v in variants]:
        raise AbTestError(f"control {control!r} is not one of the variants")
    prompt = merged.get("prompt")
    if prompt is not None:
        _text(prompt, "prompt")
        for i, v in enumerate(variants):
            if v["promptVersion"] is None and v["promptLabel"] is None:
                raise AbTestError(
                    f"variants[{i}] needs promptVersion or promptLabel (the test names a prompt)"
                )
    if "primaryMetric" not in merged or merged["primaryMetric"] is None:
        raise AbTestError("primaryMetric is required (a score name, cost, latency or errorRate)")
    primary = check_metric(merged["primaryMetric"], "primaryMetric")
    guardrails = merged.get("guardrailMetrics") or []
    if not isinstance(guardrails, list):
        raise AbTestError("guardrailMetrics must be a list of metric names")
    guards = [check_metric(g, f"guardrailMetrics[{i}]") for i, g in enumerate(guardrails)]
    salt = merged.get("salt") or secrets.token_hex(8)
    _text(salt, "salt")
    if before is not None and before["state"] != "draft":
        now = {"variants": variants, "salt": salt, "prompt": prompt, "control": control}
        for key in ASSIGNMENT_FIELDS:
            if now[key] != before[key]:
                raise Conflict(
                    f"{key} cannot change while the A/B test is {before['state']}:"
                    " changing variants, weights or salt would move users to another"
                    " variant; create a new A/B test instead"
                )
    return {
        "name": name,
        "description": description,
        "unit": unit,
        "variants": variants,
        "control": control,
        "prompt": prompt,
        "primary_metric": primary,
        "guardrails": guards,
        "mde": _number(merged.get("minimumDetectableEffect"), "minimumDetectableEffect", 0),
        "alpha": _number(merged.get("alpha"), "alpha", 0, 0.5) or 0.05,
        "salt": salt,
    }


def transition(test: Mapping[str, Any], action: str) -> str:
    """The state ``action`` (``start``, ``stop``, ``conclude``) leads to; 409 when the
    test's state does not allow it."""
    if action not in TRANSITIONS:
        raise AbTestError(f"unknown action {action!r}")
    allowed, target = TRANSITIONS[action]
    if test["state"] not in allowed:
        raise Conflict(f"cannot {action} an A/B test that is {test['state']}")
    return target


def check_winner(test: Mapping[str, Any], winner: Any) -> str:
    """The winner named when concluding: one of the test's variants."""
    names = [v["name"] for v in test["variants"]]
    if winner not in names:
        raise AbTestError(f"winner must be one of the variants ({', '.join(names)})")
    return str(winner)
