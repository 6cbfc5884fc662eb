"""The caller-side shortcuts of capture keep what the general walk records and charges.

``capture`` copies a small dict of numbers directly, ``capture_args`` takes positional
strings and numbers without a walk per argument (``begin`` a lone text argument, and
``end`` a text result, without a call at all), and ``update_current_observation``
puts model, parameters, usage and costs straight onto the running record. Each must
give exactly what the general path gives (same values, same key order, same size
charged against the budget), whatever the values and however tight the limit.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lanterna import context, observe
from lanterna.sdk.capture import _Budget, _walk, capture, capture_args, positional
from lanterna.sdk.fields import OBSERVATION_FIELDS, to_wire
from lanterna.sdk.handles import apply_observation
from lanterna.sdk.observe import CURRENT

_numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
_keys = st.one_of(st.text(max_size=12), st.integers(0, 5))
_values = st.one_of(_numbers, st.text(max_size=40), st.lists(st.integers(), max_size=3))
_limits = st.integers(-5, 200)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_keys, st.one_of(_numbers, _values), max_size=20), _limits)
def test_capture_of_a_dict_is_what_the_walk_gives(value: dict[Any, Any], limit: int):
    expected = _walk(value, _Budget(limit), 0)
    got = capture(value, limit)
    assert got == expected
    assert list(got) == list(expected)  # key order too
    assert got is not value  # a copy: the caller may change theirs afterwards


def test_capture_of_a_dict_at_every_limit_around_its_size():
    # Whole or cut exactly where the walk cuts: every limit near the size it charges.
    for n in range(1, 18):
        value = {f"k{i}": i for i in range(n)}
        for limit in range(-1, 14 * n + 3):
            assert capture(value, limit) == _walk(value, _Budget(limit), 0), (n, limit)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.one_of(_numbers, st.text(max_size=60), st.lists(st.text())), max_size=5),
    _limits,
)
def test_positional_arguments_are_captured_and_charged_as_by_the_walk(args: list[Any], limit: int):
    names = ("a", "b", "c", "d")
    # The definition: each argument walked in turn under its parameter's name (extra
    # positionals under "args"), all charged to one budget.
    walked = _Budget(limit)
    expected: dict[str, Any] = {}
    for i, value in enumerate(args):
        item = _walk(value, walked, 1)
        if i < len(names):
            expected[names[i]] = item
        else:
            expected.setdefault("args", []).append(item)
    budget = _Budget(limit)
    got = capture_args(names, tuple(args), {}, limit, budget)
    assert got == expected and list(got) == list(expected)
    assert budget.left == walked.left
    # The shortcut @observe takes first: the same dict and charge, or None (the walk).
    simple = positional(names, tuple(args), limit)
    if simple is not None:
        assert simple[0] == expected and list(simple[0]) == list(expected)
        assert simple[1] == limit - walked.left


def test_the_positional_shortcut_takes_strings_and_numbers_that_fit():
    names = ("a", "b", "c")
    assert positional(names, ("x" * 10, 2, None), 100) == ({"a": "x" * 10, "b": 2, "c": None}, 26)
    assert positional(names, ("x" * 10,), 10) == ({"a": "x" * 10}, 10)
    assert positional(names, ("x" * 11,), 10) is None  # cut: the walk's job
    assert positional(names, (["x"],), 100) is None  # a container
    assert positional(names, (1, 2, 3, 4), 100) is None  # more than the parameters


def test_an_observed_call_records_and_sizes_its_arguments_either_way(lanterna_capture):
    sizes: list[int] = []

    @observe()
    def f(text: str, n: int, flag: bool = False) -> None:
        obs = CURRENT.get()
        assert obs is not None
        sizes.append(obs.size)  # what counts against the exporter's memory budget

    f("x" * 70_000, 3)  # positional strings and numbers: the shortcut
    f("x" * 70_000, n=3)  # a keyword: the walk
    first, second = lanterna_capture.observations()
    assert first["input"] == {"text": "x" * 70_000, "n": 3}
    assert second["input"] == {"text": "x" * 70_000, "n": 3}
    assert sizes == [70_008, 70_008]  # both over LARGE, charged alike


@pytest.mark.parametrize(
    "given_keys",
    [
        ("model", "model_parameters", "usage_details", "cost_details"),
        ("model", "usage_details"),
        ("model",),
        ("usage_details",),
        ("model_parameters", "cost_details"),
        ("cost_details",),
    ],
)
def test_the_generation_update_sets_what_the_general_path_sets(lanterna_capture, given_keys):
    usage = {"input": 200, "output": 100, "total": 300}
    params = {"temperature": 0.2, "max_tokens": 64, "stop": ["\n"]}  # a list: the walk
    costs = {"input": 0.001, "output": 0.002}
    everything = {
        "model": "gpt-4o",
        "model_parameters": params,
        "usage_details": usage,
        "cost_details": costs,
    }
    given_fields = {key: everything[key] for key in given_keys}
    seen: list[tuple[list[tuple[str, Any]], list[tuple[str, Any]]]] = []

    @observe(as_type="generation")
    def generate() -> str:
        obs = CURRENT.get()
        assert obs is not None
        obs.extra = {"model": "before", "promptName": "p"}  # as a prompt link leaves it
        context.update_current_observation(**given_fields)
        fast = list(obs.extra.items())
        obs.extra = {"model": "before", "promptName": "p"}
        wire = to_wire(dict(given_fields), OBSERVATION_FIELDS, obs.trace.client.max_field_size)
        apply_observation(obs, wire)
        seen.append((fast, list(obs.extra.items())))
        return "done"

    generate()
    usage["input"] = 999  # changed after the call: the record keeps what was passed
    params["temperature"] = 9.0
    ((fast, general),) = seen
    assert fast == general
    (obs,) = lanterna_capture.observations()
    assert obs["model"] == ("gpt-4o" if "model" in given_keys else "before")
    assert obs["promptName"] == "p"
    if "usage_details" in given_keys:
        assert obs["usageDetails"] == {"input": 200, "output": 100, "total": 300}
    if "model_parameters" in given_keys:
        assert obs["modelParameters"] == {"temperature": 0.2, "max_tokens": 64, "stop": ["\n"]}
    if "cost_details" in given_keys:
        assert obs["costDetails"] == costs


def test_an_empty_generation_update_adds_no_fields(lanterna_capture):
    @observe()
    def f() -> None:
        context.update_current_observation(model=None)

    f()
    (obs,) = lanterna_capture.observations()
    assert "model" not in obs and "usageDetails" not in obs


class _Keep:
    """An exporter keeping the submitted records themselves."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    def bind(self, options: Any) -> None:
        pass

    def submit(self, item: Any) -> bool:
        self.records.append(item)
        return True


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30), st.text(max_size=30), st.integers(0, 40))
def test_one_text_argument_and_a_text_result_are_taken_as_the_walk_takes_them(
    text: str, result: str, limit: int
):
    """``begin`` takes a lone text argument, and ``end`` a text result, without the
    capture functions: the same value, cut the same way, and the same size charged as
    ``capture_args`` and ``captured_size``, at every limit around the text's length."""
    from lanterna import Lanterna, set_client
    from lanterna.sdk.capture import captured_size

    kept = _Keep()
    client = Lanterna(exporter=kept, public_key="pk", secret_key="sk", max_field_size=limit)
    previous = set_client(client)
    try:

        @observe()
        def f(prompt: str) -> str:
            return result

        class C:
            @observe()
            def m(self, prompt: str) -> str:
                return result

        f(text)
        C().m(text)
    finally:
        set_client(previous)
    for obs in kept.records:
        budget = _Budget(limit)
        assert obs.input == capture_args(("prompt",), (text,), {}, limit, budget)
        want_output, out_size = captured_size(result, limit)
        assert obs.output == want_output
        used = limit - budget.left
        assert obs.size == (used if used >= 64 * 1024 else 0) + out_size


def test_large_text_arguments_and_results_are_charged_to_the_queue(lanterna_capture):
    """Text of 64 Ki characters or more counts against the exporter's memory budget on
    the shortcuts as on the general path."""
    from lanterna.sdk.capture import LARGE

    sizes: list[int] = []

    @observe()
    def f(prompt: str) -> str:
        obs = CURRENT.get()
        assert obs is not None
        sizes.append(obs.size)
        return prompt

    f("x" * LARGE)
    f("x" * (LARGE - 1))
    assert sizes == [LARGE, 0]
    big, small = lanterna_capture.observations()
    assert big["input"] == {"prompt": "x" * LARGE} and big["output"] == "x" * LARGE
    assert small["output"] == "x" * (LARGE - 1)
