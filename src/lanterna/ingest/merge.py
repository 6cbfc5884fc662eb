"""How several upserts of one entity combine: the one place that decides merging.

Rules (contract 2.6): events for one entity apply in time order, creates before updates
on ties; each event overwrites only the fields it provides; some fields are fixed by the
first write; metadata is deep-merged; tags are a sorted union; ``input``/``output``
change only to a non-empty value.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from .environment import DEFAULT
from .events import DomainEvent

IMMUTABLE = {
    "trace": frozenset({"timestamp", "environment"}),
    "observation": frozenset({"trace_id", "start_time", "environment"}),
    "score": frozenset({"timestamp", "trace_id", "environment"}),
}


def event_order(event: DomainEvent) -> tuple[datetime, bool]:
    """Sort key for events of one entity: time, then creates before updates."""
    return (event.timestamp, event.is_update)


def deep_merge(old: Any, new: Any) -> Any:
    """Merge two JSON values: objects combine key by key (later wins), others replace."""
    if isinstance(old, dict) and isinstance(new, dict):
        merged = dict(old)
        for key, value in new.items():
            merged[key] = deep_merge(old.get(key), value) if key in old else value
        return merged
    return new


def _is_empty_io(value: Any) -> bool:
    return value is None or value == ""


def _first(ordered: list[DomainEvent], key: str) -> Any:
    """The value of ``key`` in the earliest event that provides it (None if none does)."""
    for event in ordered:
        value = event.fields.get(key)
        if value is not None:
            return value
    return None


def _defaults(kind: str, ordered: list[DomainEvent]) -> dict[str, Any]:
    """A new entity: fixed fields from the earliest event that carries them."""
    first = ordered[0]
    environment = _first(ordered, "environment") or DEFAULT
    if kind == "trace":
        return {
            "timestamp": _first(ordered, "timestamp") or first.timestamp,
            "environment": environment,
            "tags": [],
            "public": False,
            "bookmarked": False,
        }
    if kind == "observation":
        return {
            # An observation sent without a trace gets a trace id of its own.
            "trace_id": _first(ordered, "trace_id") or str(uuid.uuid4()),
            "start_time": _first(ordered, "start_time") or first.timestamp,
            "environment": environment,
            "level": "DEFAULT",
            # Only a legacy observation-update without a type leaves this in place.
            "type": "SPAN",
        }
    score = {
        "timestamp": _first(ordered, "timestamp") or first.timestamp,
        "environment": environment,
    }
    trace_id = _first(ordered, "trace_id")
    if trace_id is not None:
        score["trace_id"] = trace_id
    return score


def merge(kind: str, stored: dict[str, Any] | None, events: list[DomainEvent]) -> dict[str, Any]:
    """Apply ``events`` (any order) to ``stored`` (None: a new entity); return the record.

    Records use domain field names; the result holds every field that has a value.
    """
    ordered = sorted(events, key=event_order)
    record: dict[str, Any] = dict(stored) if stored else _defaults(kind, ordered)
    fixed = IMMUTABLE[kind]
    for event in ordered:
        for key, value in event.fields.items():
            if key in fixed:
                continue
            if key == "metadata":
                record[key] = deep_merge(record.get(key) or {}, value)
            elif key == "tags":
                record[key] = sorted(set(record.get(key) or ()) | set(value))
            elif key in ("input", "output"):
                if not _is_empty_io(value):
                    record[key] = value
            else:
                record[key] = value
    if kind == "observation":
        end = record.get("end_time")
        if end is not None and end < record["start_time"]:
            record["end_time"] = record["start_time"]
    # Stored records hold no None fields either, so an unchanged entity compares equal.
    return {key: value for key, value in record.items() if value is not None}
