"""JSON Schema (draft 2020-12) whose regexes run on RE2, for every schema a user writes:
a dataset's input and expected-output schemas and the JSON-schema evaluator.

``pattern`` and ``patternProperties`` are matched with RE2 (linear time), so a schema
such as ``{"pattern": "^(a+)+$"}`` cannot stall the server; ``format`` is not checked
(its checkers use Python's ``re``). A schema whose pattern RE2 cannot compile is refused
when it is saved (:func:`schema_problem`).

References stay inside the schema: a ``$ref`` or ``$dynamicRef`` that is not a
fragment (``#...``) is refused when the schema is saved, and the validators' registry
retrieves nothing, so no schema makes the server fetch a URL or read a file. A schema
that refers to itself without end (``{"$ref": "#"}``), or to a part it does not hold,
is refused when saved where a sample value shows it, and otherwise makes the value it
is checked against invalid, with that reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import re2

if TYPE_CHECKING:  # jsonschema (about 11 MB) loads when a schema is first checked
    from jsonschema.exceptions import ValidationError


def re2_options(case_sensitive: bool = True) -> Any:
    """RE2 options: quiet (no stderr logging), case-sensitive or not."""
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = case_sensitive
    return options


@lru_cache(maxsize=512)
def compile_pattern(pattern: str, case_sensitive: bool = True) -> Any:
    """A compiled RE2 regex (cached); raises ``re2.error`` for one RE2 refuses."""
    return re2.compile(pattern, re2_options(case_sensitive))


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    from jsonschema.exceptions import ValidationError

    if isinstance(instance, str) and not compile_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not isinstance(instance, dict):
        return
    for pattern, subschema in patterns.items():
        regex = compile_pattern(pattern)
        for key, value in instance.items():
            if regex.search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _retrieve_nothing(uri: str) -> Any:
    from referencing.exceptions import NoSuchResource

    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


@lru_cache(maxsize=1)
def _registry() -> Any:
    """A registry that resolves references inside the schema and retrieves nothing."""
    from referencing import Registry

    return Registry(retrieve=_retrieve_nothing)  # type: ignore[call-arg]


def validator(schema: Any) -> Any:
    """A validator of ``schema`` (draft 2020-12, RE2 patterns, no retrieval)."""
    return validator_class()(schema, registry=_registry())


@lru_cache(maxsize=1)
def validator_class() -> Any:
    """Draft 2020-12 with ``pattern`` and ``patternProperties`` on RE2 (a jsonschema
    validator class, built on first use)."""
    import jsonschema
    from jsonschema import validators

    return validators.extend(
        jsonschema.Draft202012Validator,
        {"pattern": _pattern, "patternProperties": _pattern_properties},
    )


def patterns_of(schema: Any) -> Iterator[str]:
    """Every regex inside a schema (``pattern`` values, ``patternProperties`` keys)."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            elif key == "patternProperties" and isinstance(value, dict):
                yield from value
            yield from patterns_of(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from patterns_of(value)


def references_of(schema: Any) -> Iterator[str]:
    """Every ``$ref`` and ``$dynamicRef`` inside a schema."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield value
            else:
                yield from references_of(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from references_of(value)


#: Values a saved schema is tried on: one of each JSON type.
_SAMPLES: tuple[Any, ...] = (None, True, 0, 1.5, "", [], {}, [{}], {"": {}})


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` cannot be used (not a schema, invalid, a pattern RE2 refuses, a
    reference outside the schema, or one that cannot be followed); None when it can."""
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, (dict, bool)):
        return "must be a JSON Schema object"
    try:
        validator_class().check_schema(schema)
    except SchemaError as exc:
        return f"not a valid JSON Schema: {exc.message}"
    for pattern in patterns_of(schema):
        try:
            compile_pattern(pattern)
        except re2.error as exc:
            return f"RE2 cannot compile the pattern {pattern!r}: {exc}"
    return reference_problem(schema)


def reference_problem(schema: Any) -> str | None:
    """Why the references of a valid ``schema`` cannot be used (one outside the schema,
    one to a part it does not hold, or a loop without end, as the samples of each JSON
    type show); None when they can."""
    for ref in references_of(schema):
        if not ref.startswith("#"):
            return f"the reference {ref[:200]!r} is outside the schema (only #... references)"
    check = validator(schema)
    for sample in _SAMPLES:
        problem = _unusable(check, sample)
        if problem is not None:
            return problem
    return None


def _unusable(check: Any, value: Any) -> str | None:
    """Why the validator ``check`` cannot evaluate ``value`` at all, or None."""
    from referencing.exceptions import Unresolvable

    try:
        for _ in check.iter_errors(value):
            pass
    except RecursionError:
        return "the schema refers to itself without end"
    except Unresolvable as exc:
        return f"a reference cannot be followed: {str(exc)[:200]}"
    return None


def value_problem(schema: Any, value: Any) -> str | None:
    """Why ``value`` does not match ``schema`` (the best-matching error and where);
    None when it does. A schema that cannot evaluate ``value`` (it refers to itself
    without end, or to a part it does not hold) gives that as the reason."""
    from jsonschema.exceptions import best_match
    from referencing.exceptions import Unresolvable

    try:
        error = best_match(validator(schema).iter_errors(value))
    except RecursionError:
        return "the schema refers to itself without end"
    except Unresolvable as exc:
        return f"a reference of the schema cannot be followed: {str(exc)[:200]}"
    if error is None:
        return None
    where = "".join(f"[{p!r}]" for p in error.absolute_path) or "(root)"
    return f"{error.message} at {where}"
