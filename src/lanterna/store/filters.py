"""Langfuse's ``filter`` query parameter -> SQL, shared by every list query.

A filter is a JSON array of conditions ``{type, column, operator, value, key?}``. Each
resource declares the columns a user may filter on as a whitelist of :class:`Column`
(public name -> trusted SQL expression and kind); nothing a client sends ever becomes
SQL text except through that whitelist. Every value is bound as a parameter.

Simple query parameters (``userId=...``, ``tags=...``) are turned into the same
:class:`Condition` objects, so one compiler serves both; a ``filter`` condition on a
column replaces the simple parameter for that column (Langfuse: "filter takes
precedence").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .. import _json
from ..errors import InvalidRequestData
from ..schema import Entity
from ..timeutil import parse_ts
from .dialect import Dialect

Kind = Literal["string", "datetime", "number", "boolean", "array", "object"]

#: Operators each filter type accepts (Langfuse's names).
OPERATORS: dict[str, tuple[str, ...]] = {
    "datetime": (">", "<", ">=", "<="),
    "string": ("=", "contains", "does not contain", "starts with", "ends with"),
    "stringOptions": ("any of", "none of"),
    "categoryOptions": ("any of", "none of"),
    "arrayOptions": ("any of", "none of", "all of"),
    "number": ("=", ">", "<", ">=", "<="),
    "stringObject": ("=", "contains", "does not contain", "starts with", "ends with"),
    "numberObject": ("=", ">", "<", ">=", "<="),
    "boolean": ("=", "<>"),
    "null": ("is null", "is not null"),
}

#: Filter types that fit a column of each kind.
_TYPES_FOR_KIND: dict[str, tuple[str, ...]] = {
    "string": ("string", "stringOptions", "null"),
    "datetime": ("datetime", "null"),
    "number": ("number", "null"),
    "boolean": ("boolean", "null"),
    "array": ("arrayOptions",),
    "object": ("stringObject", "numberObject", "categoryOptions", "null"),
}

_SQL_COMPARE = {"=": "=", ">": ">", "<": "<", ">=": ">=", "<=": "<=", "<>": "<>"}


class FilterError(InvalidRequestData, ValueError):
    """A query parameter or filter condition the server cannot use (a 400 in Langfuse's
    ``Invalid request data`` shape)."""


@dataclass(frozen=True, slots=True)
class Column:
    """A filterable column: its trusted SQL expression, kind and needed join."""

    sql: str
    kind: Kind
    join: str | None = None


def field_columns(entity: Entity) -> dict[str, Column]:
    """The whitelist of an entity's own filterable fields (its field table's ``filter``);
    list queries add their computed and joined columns to it."""
    return {
        name: Column(f"{entity.alias}.{column}", kind)  # type: ignore[arg-type]
        for name, (column, kind) in entity.filters.items()
    }


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition, either from ``filter`` or from a simple query parameter."""

    type: str
    column: str
    operator: str
    value: Any = None
    key: str | None = None


@dataclass(slots=True)
class Compiled:
    """SQL clauses (to AND together), their parameters, and the joins they need."""

    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    joins: set[str] = field(default_factory=set)

    def where(self) -> str:
        """The clauses as one SQL boolean (``1 = 1`` when empty)."""
        return " AND ".join(self.clauses) if self.clauses else "1 = 1"


def parse_filter(text: str | None) -> list[Condition]:
    """Parse the ``filter`` parameter (a JSON array); raise :class:`FilterError`."""
    if text is None or not text.strip():
        return []
    try:
        raw = _json.loads(text)
    except _json.JSONDecodeError:
        raise FilterError("Invalid JSON in filter parameter") from None
    return conditions_of(raw, "filter")


def conditions_of(raw: Any, name: str) -> list[Condition]:
    """Conditions from a decoded JSON array of ``{type, column, operator, value, key?}``
    (called ``name`` in error messages); raise :class:`FilterError`."""
    if not isinstance(raw, list):
        raise FilterError(f"{name}: expected a JSON array of conditions")
    out: list[Condition] = []
    for index, item in enumerate(raw):
        where = f"{name}[{index}]"
        if not isinstance(item, dict):
            raise FilterError(f"{where}: expected an object {{type, column, operator, value}}")
        for name in ("type", "column", "operator"):
            if not isinstance(item.get(name), str):
                raise FilterError(f"{where}.{name}: required, a string")
        key = item.get("key")
        if key is not None and not isinstance(key, str):
            raise FilterError(f"{where}.key: expected a string")
        if item["type"] != "null" and "value" not in item:
            raise FilterError(f"{where}.value: required for type {item['type']!r}")
        out.append(
            Condition(item["type"], item["column"], item["operator"], item.get("value"), key)
        )
    return out


def merge_conditions(simple: Iterable[Condition], advanced: Sequence[Condition]) -> list[Condition]:
    """``advanced`` (from ``filter``) plus the simple ones on columns it does not cover."""
    covered = {c.column for c in advanced}
    return [*(c for c in simple if c.column not in covered), *advanced]


def compile_conditions(
    conditions: Iterable[Condition],
    columns: Mapping[str, Column],
    dialect: Dialect,
    *,
    resource: str,
) -> Compiled:
    """SQL for ``conditions`` over the whitelisted ``columns``; raise :class:`FilterError`."""
    out = Compiled()
    for cond in conditions:
        column = columns.get(cond.column)
        if column is None:
            names = ", ".join(sorted(columns))
            raise FilterError(
                f"Unknown filter column {cond.column!r} for {resource}; available: {names}"
            )
        allowed_ops = OPERATORS.get(cond.type)
        if allowed_ops is None:
            raise FilterError(
                f"Unknown filter type {cond.type!r}; use one of {', '.join(OPERATORS)}"
            )
        if cond.type not in _TYPES_FOR_KIND[column.kind]:
            fits = ", ".join(_TYPES_FOR_KIND[column.kind])
            raise FilterError(
                f"Filter type {cond.type!r} does not fit column {cond.column!r} (use {fits})"
            )
        if cond.operator not in allowed_ops:
            raise FilterError(
                f"Operator {cond.operator!r} is not valid for filter type {cond.type!r}"
                f" (use one of: {', '.join(allowed_ops)})"
            )
        sql, params = _clause(cond, column, dialect)
        out.clauses.append(sql)
        out.params.extend(params)
        if column.join:
            out.joins.add(column.join)
    return out


# --- one condition --------------------------------------------------------------------


def _expr(cond: Condition, column: Column, dialect: Dialect) -> tuple[str, list[Any]]:
    """The SQL value a condition compares: the column, or one key of a JSON object."""
    if column.kind != "object":
        return column.sql, []
    if not cond.key:
        if cond.type == "null":
            return column.sql, []
        raise FilterError(f"Filter on {cond.column!r} needs a 'key' (the {cond.column} key)")
    if cond.type == "numberObject":  # only numbers compare; other values never match
        return dialect.json_number_at(column.sql), [cond.key, cond.key]
    # Values of other JSON types compare as their text (numbers as digits).
    return f"CAST({dialect.json_text_at(column.sql)} AS TEXT)", [cond.key]


def _clause(cond: Condition, column: Column, dialect: Dialect) -> tuple[str, list[Any]]:
    expr, eparams = _expr(cond, column, dialect)
    op = cond.operator
    if cond.type == "null":
        return f"{expr} IS {'NOT ' if op == 'is not null' else ''}NULL", eparams
    if cond.type == "datetime":
        value = _datetime_value(cond)
        return f"{expr} {_SQL_COMPARE[op]} ?", [*eparams, dialect.ts(value)]
    if cond.type in ("number", "numberObject"):
        return f"{expr} {_SQL_COMPARE[op]} ?", [*eparams, _number_value(cond)]
    if cond.type == "boolean":
        if not isinstance(cond.value, bool):
            raise FilterError(f"Filter on {cond.column!r}: value must be true or false")
        return f"{expr} {_SQL_COMPARE[op]} ?", [*eparams, cond.value]
    if cond.type in ("string", "stringObject"):
        return _string_clause(cond, expr, eparams, dialect)
    if cond.type == "arrayOptions":
        return _array_clause(cond, expr, dialect)
    # stringOptions / categoryOptions
    values = _string_list(cond)
    if not values:
        return ("1 = 0" if op == "any of" else "1 = 1"), []
    marks = ", ".join("?" * len(values))
    if op == "any of":
        return f"{expr} IN ({marks})", [*eparams, *values]
    # A row without a value is "none of" anything.
    return f"({expr} IS NULL OR {expr} NOT IN ({marks}))", [*eparams, *eparams, *values]


def _string_clause(
    cond: Condition, expr: str, eparams: list[Any], dialect: Dialect
) -> tuple[str, list[Any]]:
    value = cond.value
    if not isinstance(value, str):
        raise FilterError(f"Filter on {cond.column!r}: value must be a string")
    op = cond.operator
    if op == "=":
        return f"{expr} = ?", [*eparams, value]
    if op == "contains":
        return dialect.contains_text(expr), [*eparams, value]
    if op == "does not contain":
        return (
            f"({expr} IS NULL OR NOT {dialect.contains_text(expr)})",
            [*eparams, *eparams, value],
        )
    # Lengths are bound as integers so the comparison is exact and case-sensitive on
    # both backends (LIKE is case-insensitive on SQLite and would need escaping).
    if op == "starts with":
        return f"substr({expr}, 1, CAST(? AS INTEGER)) = ?", [*eparams, len(value), value]
    # ends with
    return (
        f"substr({expr}, length({expr}) - CAST(? AS INTEGER) + 1) = ?",
        [*eparams, *eparams, len(value), value],
    )


def _array_clause(cond: Condition, expr: str, dialect: Dialect) -> tuple[str, list[Any]]:
    values = _string_list(cond)
    op = cond.operator
    if not values:
        return ("1 = 0" if op == "any of" else "1 = 1"), []
    part, binds = dialect.json_array_filter(expr)
    parts = [part] * len(values)
    params = [v for v in values for _ in range(binds)]
    if op == "all of":
        return "(" + " AND ".join(parts) + ")", params
    joined = "(" + " OR ".join(parts) + ")"
    return (joined if op == "any of" else f"NOT {joined}"), params


def _string_list(cond: Condition) -> list[str]:
    value = cond.value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FilterError(f"Filter on {cond.column!r}: value must be an array of strings")
    return value


def _number_value(cond: Condition) -> float:
    value = cond.value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FilterError(f"Filter on {cond.column!r}: value must be a number")
    return float(value)


def _datetime_value(cond: Condition) -> datetime:
    if isinstance(cond.value, datetime):
        return cond.value
    try:
        return parse_ts(cond.value)
    except ValueError as exc:
        raise FilterError(f"Filter on {cond.column!r}: {exc}") from None


def parse_time(value: str | None, name: str) -> datetime | None:
    """A timestamp query parameter (ISO-8601 with offset) or None; raise :class:`FilterError`."""
    if value is None or value == "":
        return None
    try:
        return parse_ts(value)
    except ValueError as exc:
        raise FilterError(f"{name}: {exc}") from None
