"""Column lists of the event tables, and conversion between records and rows.

A *record* holds Python values (aware datetimes, dicts, lists, bools); a *row* holds what
the driver binds. The dialect decides how timestamps and JSON are stored.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from .dialect import Dialect

TS = "ts"
JSON = "json"
BOOL = "bool"

# One line per group of columns reads better here than one line per column.
# fmt: off
COLUMNS: dict[str, dict[str, str | None]] = {
    "trace": {
        "timestamp": TS, "name": None, "user_id": None, "session_id": None, "release": None,
        "version": None, "environment": None, "input": JSON, "output": JSON,
        "metadata": JSON, "tags": JSON, "public": BOOL, "bookmarked": BOOL,
    },
    "observation": {
        "trace_id": None, "parent_observation_id": None, "type": None, "name": None,
        "start_time": TS, "end_time": TS, "completion_start_time": TS, "level": None,
        "status_message": None, "version": None, "environment": None, "input": JSON,
        "output": JSON, "metadata": JSON, "model": None, "model_parameters": JSON,
        "usage_details": JSON, "provided_usage_details": JSON, "cost_details": JSON,
        "provided_cost_details": JSON, "total_cost": None, "model_id": None,
        "prompt_id": None, "prompt_name": None, "prompt_version": None,
        # Derived by lanterna.cost at write time (migration 0004).
        "cost_info": JSON, "usage_input": None, "usage_output": None, "usage_total": None,
    },
    "score": {
        "timestamp": TS, "trace_id": None, "observation_id": None, "session_id": None,
        "dataset_run_id": None, "name": None, "value": None, "string_value": None,
        "data_type": None, "source": None, "comment": None, "metadata": JSON,
        "config_id": None, "queue_id": None, "author_user_id": None, "environment": None,
    },
}
# fmt: on
TABLE = {"trace": "traces", "observation": "observations", "score": "scores"}


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
