"""Deterministic evaluators: exact match, contains, regex, JSON valid, JSON-schema
valid, numeric tolerance and Levenshtein similarity.

Each compares the evaluated ``output`` (text; a JSON value that is not a string is
compared as its compact JSON text) with its ``config`` (or, where the config does not
name one, an ``expected`` variable: a dataset item's expected output). User regexes
(``regex``, and ``pattern`` / ``patternProperties`` inside JSON schemas) run on RE2:
linear time, so a pattern such as ``^(a+)+$`` cannot stall the worker
(docs/security.md). :func:`check_config` validates a config when the evaluator is
created (a 400 naming the field); :func:`run` scores one output.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import re2

from .. import _json
from ..errors import InvalidRequestData
from ..ingest.json_schema import (
    compile_pattern,
    patterns_of,
    reference_problem,
    validator,
    validator_class,
    value_problem,
)

#: The deterministic evaluator types (the API's ``type``) and the score type each gives.
TYPES: dict[str, str] = {
    "exact_match": "BOOLEAN",
    "contains": "BOOLEAN",
    "regex": "BOOLEAN",
    "json_valid": "BOOLEAN",
    "json_schema": "BOOLEAN",
    "numeric": "BOOLEAN",
    "levenshtein": "NUMERIC",
}


class EvaluatorConfigError(InvalidRequestData, ValueError):
    """A deterministic evaluator's ``config`` that cannot be used (400 naming why)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """One evaluation's score value (1/0 for BOOLEAN), its type and the reason."""

    value: float
    data_type: str
    comment: str


def compile_regex(pattern: str, case_sensitive: bool = True) -> Any:
    """An RE2 regex; :class:`EvaluatorConfigError` for one RE2 refuses."""
    try:
        return compile_pattern(pattern, case_sensitive)
    except re2.error as exc:
        raise EvaluatorConfigError(
            f"config.pattern: RE2 cannot compile {pattern!r}: {exc}"
        ) from None


def check_schema(schema: Any, where: str = "config.schema") -> None:
    """Raise :class:`EvaluatorConfigError` unless ``schema`` is a usable JSON schema."""
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, (dict, bool)):
        raise EvaluatorConfigError(f"{where}: expected a JSON schema object")
    try:
        validator_class().check_schema(schema)
    except SchemaError as exc:
        raise EvaluatorConfigError(f"{where}: not a valid JSON schema: {exc.message}") from None
    for pattern in patterns_of(schema):
        compile_regex(pattern)
    problem = reference_problem(schema)
    if problem is not None:
        raise EvaluatorConfigError(f"{where}: {problem}")


def _text_of(config: dict[str, Any], key: str, required: bool = True) -> str | None:
    value = config.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise EvaluatorConfigError(f"config.{key}: expected a string")
    return value


def _flag(config: dict[str, Any], key: str, default: bool) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise EvaluatorConfigError(f"config.{key}: expected true or false")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise EvaluatorConfigError(f"{where}: expected a finite number")
    return float(value)


def check_config(kind: str, config: Any) -> dict[str, Any]:
    """The checked ``config`` of a deterministic evaluator of type ``kind``."""
    if kind not in TYPES:
        raise EvaluatorConfigError(f"type: unknown evaluator type {kind!r}")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise EvaluatorConfigError("config: expected a JSON object")
    if kind in ("exact_match", "levenshtein"):
        _text_of(config, "expected", required=False)
        _flag(config, "caseSensitive", True)
    elif kind == "contains":
        _text_of(config, "value")
        _flag(config, "caseSensitive", True)
    elif kind == "regex":
        compile_regex(_text_of(config, "pattern") or "", _flag(config, "caseSensitive", True))
    elif kind == "json_schema":
        check_schema(config.get("schema"))
    elif kind == "numeric":
        if "expected" in config:
            _number(config["expected"], "config.expected")
        tolerance = _number(config.get("tolerance", 0), "config.tolerance")
        if tolerance < 0:
            raise EvaluatorConfigError("config.tolerance: must be 0 or more")
        _flag(config, "relative", False)
    return config


def as_text(value: Any) -> str:
    """A value as evaluated text: a string as is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return _json.dumps(value)


def _expected(config: dict[str, Any], variables: dict[str, Any]) -> Any:
    if config.get("expected") is not None:
        return config["expected"]
    if variables.get("expected") is not None:
        return variables["expected"]
    raise EvaluatorConfigError("nothing to compare with: set config.expected or map 'expected'")


def _fold(text: str, case_sensitive: bool) -> str:
    return text if case_sensitive else text.casefold()


def _bool(holds: bool, why: str) -> Verdict:
    return Verdict(1.0 if holds else 0.0, "BOOLEAN", why)


def _exact(config: dict[str, Any], output: str, variables: dict[str, Any]) -> Verdict:
    case = config.get("caseSensitive", True)
    expected = as_text(_expected(config, variables))
    same = _fold(output.strip(), case) == _fold(expected.strip(), case)
    return _bool(same, "the output equals the expected text" if same else "the output differs")


def _contains(config: dict[str, Any], output: str, variables: dict[str, Any]) -> Verdict:
    case = config.get("caseSensitive", True)
    found = _fold(config["value"], case) in _fold(output, case)
    return _bool(found, f"the output {'contains' if found else 'lacks'} {config['value']!r}")


def _regex(config: dict[str, Any], output: str, variables: dict[str, Any]) -> Verdict:
    regex = compile_regex(config["pattern"], config.get("caseSensitive", True))
    found = regex.search(output) is not None
    return _bool(found, f"the output {'matches' if found else 'does not match'} the pattern")


def _parse(output: str) -> tuple[bool, Any, str]:
    try:
        return True, _json.loads(output), ""
    except _json.JSONDecodeError as exc:
        return False, None, str(exc)


def _json_valid(config: dict[str, Any], output: str, variables: dict[str, Any]) -> Verdict:
    ok, _value, why = _parse(output)
    return _bool(ok, "the output is valid JSON" if ok else f"the output is not JSON: {why}")


def _json_schema(config: dict[str, Any], output: str, variables: dict[str, Any]) -> Verdict:
    ok, value, why = _parse(output)
    if not ok:
        return _bool(False, f"the output is not JSON: {why}")
    from jsonschema.exceptions import best_match
    from referencing.exceptions import Unresolvable

    try:
        error = best_match(validator(config["schema"]).iter_errors(value))
    except (RecursionError, Unresolvable):
        reason = value_problem(config["schema"], value)
        return _bool(False, f"the schema cannot evaluate the output: {reason}")
    if error is None:
        return _bool(True, "the output is valid against the schema")
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return _bool(False, f"the output is not valid against the schema at {where}: {error.message}")


def _numeric(config: dict[str, Any], output: str, variables: dict[str, Any]) -> Verdict:
    try:
        expected = float(_expected(config, variables))
        got = float(output.strip())
    except (TypeError, ValueError):
        return _bool(False, f"the output {output.strip()[:100]!r} is not a number")
    tolerance = float(config.get("tolerance", 0))
    if config.get("relative", False):
        tolerance *= abs(expected)
    ok = abs(got - expected) <= tolerance
    return _bool(ok, f"|{got:g} - {expected:g}| {'<=' if ok else '>'} {tolerance:g}")


def _levenshtein(config: dict[str, Any], output: str, variables: dict[str, Any]) -> Verdict:
    case = config.get("caseSensitive", True)
    expected = _fold(as_text(_expected(config, variables)), case)
    got = _fold(output, case)
    from rapidfuzz.distance import Levenshtein  # loaded on first use, not at start

    distance = Levenshtein.distance(got, expected)
    similarity = Levenshtein.normalized_similarity(got, expected)
    return Verdict(round(similarity, 6), "NUMERIC", f"edit distance {distance}")


_RUN: dict[str, Callable[[dict[str, Any], str, dict[str, Any]], Verdict]] = {
    "exact_match": _exact,
    "contains": _contains,
    "regex": _regex,
    "json_valid": _json_valid,
    "json_schema": _json_schema,
    "numeric": _numeric,
    "levenshtein": _levenshtein,
}


def run(kind: str, config: dict[str, Any], variables: dict[str, Any]) -> Verdict:
    """Score ``variables["output"]`` with the evaluator ``kind`` and its ``config``."""
    return _RUN[kind](config, as_text(variables.get("output")), variables)
