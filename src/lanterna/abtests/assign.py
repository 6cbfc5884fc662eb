"""Deterministic weighted assignment of units to variants, shared by the SDK and the server.

A unit's point is the first 8 bytes of ``sha256("<test id>:<salt>:<unit id>")`` read as
an unsigned integer and divided by 2**64: uniform on [0, 1), the same in every process
and on every machine (no ``hash()`` randomisation). The variants split [0, 1) in their
order, each by its weight's share of the total, and the unit gets the variant whose
interval holds its point. Changing the weights moves the interval borders and with
them some units, which is why a running test's weights cannot change (``rules``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

_SCALE = float(2**64)


def point(test_id: str, salt: str, unit_id: str) -> float:
    """The unit's place in [0, 1) for this test and salt."""
    digest = hashlib.sha256(f"{test_id}:{salt}:{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def pick(weights: Sequence[tuple[str, float]], at: float) -> str:
    """The variant whose share of [0, 1) holds ``at`` (``weights``: name and weight, in
    order; the total must be positive)."""
    total = float(sum(w for _, w in weights))
    if total <= 0:
        raise ValueError("the weights must sum to a positive total")
    edge = 0.0
    for name, weight in weights:
        edge += weight / total
        if at < edge:
            return name
    # Rounding can leave the last edge a hair under 1: the last weighted variant.
    return next(name for name, w in reversed(weights) if w > 0)


def variant_for(test: Mapping[str, Any], unit_id: str) -> str:
    """The variant a unit sees under an A/B test as the API shows it (``id``, ``salt``,
    ``state``, ``variants``, ``control``, ``winner``): a running test hashes the unit;
    a concluded one gives everyone its winner; a draft or stopped one gives the control.
    """
    state = test.get("state")
    if state == "concluded" and test.get("winner"):
        return str(test["winner"])
    if state != "running":
        return str(test["control"])
    weights = [(str(v["name"]), float(v["weight"])) for v in test["variants"]]
    return pick(weights, point(str(test["id"]), str(test["salt"]), str(unit_id)))
