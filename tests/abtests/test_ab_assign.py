"""Assignment of units to A/B test variants: weighted, deterministic, the same in every
process (a second Python process computes the same variants), and unaffected by the
order or repetition of calls."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from lanterna.abtests.assign import pick, point, variant_for

TEST = {
    "id": "0b7f3c1e-2f1a-4a8e-9a51-6f7b1d2c3e4f",
    "salt": "5e1d",
    "state": "running",
    "control": "A",
    "winner": None,
    "variants": [
        {"name": "A", "weight": 50},
        {"name": "B", "weight": 30},
        {"name": "C", "weight": 20},
    ],
}


@pytest.mark.parametrize(
    "weights", [{"A": 50, "B": 50}, {"A": 50, "B": 30, "C": 20}, {"A": 90, "B": 10}]
)
def test_ten_thousand_users_split_within_two_percent_of_the_weights(weights):
    test = {**TEST, "variants": [{"name": n, "weight": w} for n, w in weights.items()]}
    counts = Counter(variant_for(test, f"user-{i}") for i in range(10_000))
    total = sum(weights.values())
    for name, weight in weights.items():
        share = counts[name] / 10_000
        print(f"{name}: {share:.4f} (weight {weight / total:.4f})")
        assert abs(share - weight / total) <= 0.02


def test_a_user_sees_the_same_variant_on_every_call_in_any_order():
    users = [f"user-{i}" for i in range(2_000)]
    first = {u: variant_for(TEST, u) for u in users}
    again = {u: variant_for(TEST, u) for u in reversed(users)}
    assert first == again


def test_another_process_assigns_every_user_the_same_variant():
    users = [f"user-{i}" for i in range(2_000)]
    here = [variant_for(TEST, u) for u in users]
    script = (
        "import json, sys\n"
        "from lanterna.abtests.assign import variant_for\n"
        "test, users = json.load(sys.stdin)\n"
        "print(json.dumps([variant_for(test, u) for u in users]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps([TEST, users]),
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},  # hash() randomisation must not matter
    )
    assert json.loads(out.stdout) == here


def test_salt_and_test_id_reshuffle_but_states_fix_the_variant():
    users = [f"user-{i}" for i in range(1_000)]
    base = [variant_for(TEST, u) for u in users]
    salted = [variant_for({**TEST, "salt": "other"}, u) for u in users]
    assert sum(a != b for a, b in zip(base, salted, strict=True)) > 300
    assert {variant_for({**TEST, "state": "draft"}, u) for u in users} == {"A"}
    assert {variant_for({**TEST, "state": "stopped"}, u) for u in users} == {"A"}
    assert {variant_for({**TEST, "state": "concluded", "winner": "C"}, u) for u in users} == {"C"}


def test_points_are_uniform_and_zero_weights_get_nobody():
    points = [point("t", "s", str(i)) for i in range(10_000)]
    assert min(points) >= 0 and max(points) < 1
    assert abs(sum(points) / len(points) - 0.5) < 0.01
    assert {pick([("A", 0), ("B", 1), ("C", 0)], p) for p in points} == {"B"}
    with pytest.raises(ValueError, match="positive total"):
        pick([("A", 0), ("B", 0)], 0.5)
