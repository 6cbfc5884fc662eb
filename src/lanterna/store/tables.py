"""Column lists of the event tables (from the field tables in ``lanterna.schema``), and
conversion between records and rows.

A *record* holds Python values (aware datetimes, dicts, lists, bools); a *row* holds what
the driver binds. The dialect decides how timestamps and JSON are stored.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from ..schema import ENTITIES
from ..schema.field import STORE_BOOL, STORE_JSON, STORE_TS
from .dialect import Dialect

TS = STORE_TS
JSON = STORE_JSON
BOOL = STORE_BOOL

#: ``kind -> {column: storage}`` of the record merged from events (every column but
#: ``project_id``, ``id`` and the row times), derived from the field tables.
COLUMNS: dict[str, dict[str, str | None]] = {
    name: entity.record_columns for name, entity in ENTITIES.items()
}
TABLE = {name: entity.table for name, entity in ENTITIES.items()}


@cache
def _row_plan(dialect: Dialect, kind: str) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
    convert = {TS: dialect.ts, JSON: dialect.json, BOOL: bool, None: None}
    return tuple((name, convert[kind_of]) for name, kind_of in COLUMNS[kind].items())


def to_row(dialect: Dialect, kind: str, record: dict[str, Any]) -> list[Any]:
    """The bound values for ``COLUMNS[kind]`` in order."""
    # A precomputed (column, converter) plan: this runs for every row ingested.
    get = record.get
    plan = _row_plan(dialect, kind)
    return [get(name) if conv is None else conv(get(name)) for name, conv in plan]


def to_record(dialect: Dialect, kind: str, row: dict[str, Any]) -> dict[str, Any]:
    """A stored row back as a record (only the columns in ``COLUMNS[kind]``)."""
    record: dict[str, Any] = {}
    for name, kind_of in COLUMNS[kind].items():
        value = row.get(name)
        if value is None:
            continue
        if kind_of is TS:
            value = dialect.ts_parse(value)
        elif kind_of is JSON:
            value = dialect.json_out(value)
        elif kind_of is BOOL:
            value = bool(value)
        record[name] = value
    return record
