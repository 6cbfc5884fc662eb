"""Dataset request bodies (contract 4.4): a dataset, an item, a run item, checked into
stored fields; items checked against their dataset's JSON schemas.

Pure functions: the caller looks stored rows up and writes. Every problem is an
:class:`InvalidDataset` (a 400 naming the field) raised before anything is written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import INVALID_REQUEST_DATA, InvalidInput
from ..schema.datasets import ITEM_STATUSES, MAX_ITEM_ID, MAX_LINKED_ID, MAX_NAME, RUN_ITEM_KEYS
from ..timeutil import parse_ts
from .json_schema import schema_problem, value_problem


class InvalidDataset(InvalidInput):
    """A dataset, item or run item body that cannot be accepted (400)."""

    def body(self) -> dict[str, Any]:
        """``Invalid request data: <why>`` with the reason as ``error`` too."""
        return {"message": f"{INVALID_REQUEST_DATA}: {self.message}", "error": self.message}


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidDataset("expected a JSON object")
    return body


def _name(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidDataset(f"{key}: required, a non-empty string")
    if len(value) > MAX_NAME:
        raise InvalidDataset(f"{key}: at most {MAX_NAME} characters")
    return value


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidDataset(f"{key}: must be a string")
    return value


def _schema(body: dict[str, Any], key: str) -> Any:
    """A JSON Schema (an object or a boolean) that is itself valid, or None."""
    value = body.get(key)
    if value is None:
        return None
    problem = schema_problem(value)
    if problem is not None:
        raise InvalidDataset(f"{key}: {problem}")
    return value


def check_dataset(body: Any) -> dict[str, Any]:
    """A dataset write (upsert by ``name``): the fields the body gives, by column.

    Keys left out (or null) keep the stored value on an update (so a schema, once
    set, is replaced by another, never dropped by an upsert that does not name it).
    """
    body = _object(body)
    fields: dict[str, Any] = {"name": _name(body, "name")}
    if body.get("description") is not None:
        fields["description"] = _optional_text(body, "description")
    if body.get("metadata") is not None:
        fields["metadata"] = body["metadata"]
    for key, column in (
        ("inputSchema", "input_schema"),
        ("expectedOutputSchema", "expected_output_schema"),
    ):
        if body.get(key) is not None:
            fields[column] = _schema(body, key)
    return fields


def check_item(body: Any) -> dict[str, Any]:
    """An item write: ``datasetName`` and the item fields given, by column.

    ``id`` (at most 255 characters) makes it an upsert; keys left out or null keep the
    stored value of an existing item.
    """
    body = _object(body)
    fields: dict[str, Any] = {"dataset_name": _name(body, "datasetName")}
    item_id = body.get("id")
    if item_id is not None:
        if not isinstance(item_id, str) or not item_id:
            raise InvalidDataset("id: must be a non-empty string")
        if len(item_id) > MAX_ITEM_ID:
            raise InvalidDataset(f"id: at most {MAX_ITEM_ID} characters")
        fields["id"] = item_id
    for key, column in (
        ("input", "input"),
        ("expectedOutput", "expected_output"),
        ("metadata", "metadata"),
    ):
        if body.get(key) is not None:
            fields[column] = body[key]
    for key, column in (
        ("sourceTraceId", "source_trace_id"),
        ("sourceObservationId", "source_observation_id"),
    ):
        if body.get(key) is not None:
            fields[column] = _optional_text(body, key)
    status = body.get("status")
    if status is not None:
        if status not in ITEM_STATUSES:
            raise InvalidDataset(f"status: must be one of {', '.join(ITEM_STATUSES)}")
        fields["status"] = status
    return fields


def item_problem(schema: Any, value: Any) -> str | None:
    """Why ``value`` does not match the JSON Schema ``schema`` (None: it does, or there
    is no schema)."""
    if schema is None:
        return None
    return value_problem(schema, value)


def check_against(dataset: dict[str, Any], item: dict[str, Any], label: str = "item") -> None:
    """Raise :class:`InvalidDataset` when ``item`` (stored fields) violates the
    dataset's input or expected-output schema. A null value is not checked."""
    for column, schema_column, key in (
        ("input", "input_schema", "input"),
        ("expected_output", "expected_output_schema", "expectedOutput"),
    ):
        value = item.get(column)
        if value is None:
            continue
        problem = item_problem(dataset.get(schema_column), value)
        if problem is not None:
            raise InvalidDataset(
                f"{label} {key} does not match the {key} schema of dataset"
                f" {dataset['name']!r}: {problem}"
            )


def _timestamp(body: dict[str, Any], key: str) -> datetime | None:
    value = body.get(key)
    if value is None:
        return None
    try:
        return parse_ts(value)
    except ValueError as exc:
        raise InvalidDataset(f"{key}: {exc}") from None


def check_run_item(body: Any) -> dict[str, Any]:
    """A run item body: strict (an unknown key is a 400), ``runName`` and
    ``datasetItemId`` required, and a ``traceId`` or an ``observationId``."""
    body = _object(body)
    unknown = sorted(set(body) - RUN_ITEM_KEYS)
    if unknown:
        raise InvalidDataset(f"unknown key(s): {', '.join(unknown)}")
    fields: dict[str, Any] = {
        "run_name": _name(body, "runName"),
        "dataset_item_id": _name(body, "datasetItemId"),
        "description": _optional_text(body, "runDescription"),
        "metadata": body.get("metadata"),
        "trace_id": _optional_text(body, "traceId") or None,
        "observation_id": _optional_text(body, "observationId") or None,
        "dataset_version": _timestamp(body, "datasetVersion"),
        "created_at": _timestamp(body, "createdAt"),
    }
    if fields["trace_id"] is None and fields["observation_id"] is None:
        raise InvalidDataset("a run item needs a traceId or an observationId")
    for key, column in (("traceId", "trace_id"), ("observationId", "observation_id")):
        if len(fields[column] or "") > MAX_LINKED_ID:
            raise InvalidDataset(f"{key}: at most {MAX_LINKED_ID} characters")
    return fields
