"""Score configs: validating a config (create/update) and a score against its config.

A config fixes a score's data type and, for NUMERIC, its range; for CATEGORICAL, the
labels a score may carry (its numeric value is then the label's category value);
BOOLEAN configs carry the two categories Langfuse generates for them. Pure functions:
the caller looks the configs up and writes.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..errors import INVALID_REQUEST_DATA
from .langfuse_events import TYPE_FROM_CONFIG, EventError, Invalid, ParsedBatch, typed_value

CONFIG_DATA_TYPES = ("NUMERIC", "BOOLEAN", "CATEGORICAL", "TEXT")
#: What Langfuse generates for every BOOLEAN config (they cannot be passed).
BOOLEAN_CATEGORIES = [{"value": 1.0, "label": "True"}, {"value": 0.0, "label": "False"}]
MAX_NAME = 35
_NAME = re.compile(r"[A-Za-z0-9_ .()\-]+")
#: Fields a PATCH may change (``dataType`` is fixed at creation, as in Langfuse).
UPDATABLE = ("name", "categories", "minValue", "maxValue", "description", "isArchived")


class InvalidConfig(Invalid):
    """A config body (create or PATCH) that cannot be accepted: a 400 whose message is
    ``Invalid request data: <why>``."""

    def body(self) -> dict[str, Any]:
        """The 400 body, the reason after Langfuse's validation message."""
        return {**super().body(), "message": f"{INVALID_REQUEST_DATA}: {self.message}"}


def _number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidConfig(f"{key}: must be a finite number")
    return float(value)


def _categories(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise InvalidConfig("categories: a CATEGORICAL config needs a non-empty list")
    out: list[dict[str, Any]] = []
    labels: set[str] = set()
    values: set[float] = set()
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidConfig(f"categories[{index}]: must be an object with value and label")
        label = item.get("label")
        if not isinstance(label, str) or not label:
            raise InvalidConfig(f"categories[{index}].label: required, a non-empty string")
        number = _number(item, "value") if "value" in item else None
        if number is None:
            raise InvalidConfig(f"categories[{index}].value: required, a number")
        if label in labels:
            raise InvalidConfig(f"categories: duplicate label {label!r}, labels must be unique")
        if number in values:
            raise InvalidConfig(f"categories: duplicate value {number:g}, values must be unique")
        labels.add(label)
        values.add(number)
        out.append({"value": number, "label": label})
    return out


def check_config(body: Any) -> dict[str, Any]:
    """A create body (or a stored config with a PATCH applied) as validated fields.

    Returns ``name, data_type, is_archived, min_value, max_value, categories,
    description``; raises :class:`InvalidConfig` naming the field at fault.
    """
    if not isinstance(body, dict):
        raise InvalidConfig("body must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidConfig("name: required, a non-empty string")
    if len(name) > MAX_NAME:
        raise InvalidConfig(f"name: at most {MAX_NAME} characters")
    if not _NAME.fullmatch(name):
        raise InvalidConfig(
            "name: only letters, numbers, underscores, spaces, periods, parentheses"
            " and hyphens are allowed"
        )
    data_type = body.get("dataType")
    if data_type not in CONFIG_DATA_TYPES:
        raise InvalidConfig(f"dataType: required, one of {', '.join(CONFIG_DATA_TYPES)}")
    archived = body.get("isArchived")
    if archived is None:  # absent or null (Langfuse's spec makes it nullable): not archived
        archived = False
    if not isinstance(archived, bool):
        raise InvalidConfig("isArchived: must be true or false")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidConfig("description: must be a string")
    min_value, max_value = _number(body, "minValue"), _number(body, "maxValue")
    if data_type != "NUMERIC" and (min_value is not None or max_value is not None):
        raise InvalidConfig("minValue/maxValue: only NUMERIC configs have a range")
    if min_value is not None and max_value is not None and min_value > max_value:
        raise InvalidConfig("maxValue: must be greater than or equal to minValue")
    categories: list[dict[str, Any]] | None = None
    if data_type == "CATEGORICAL":
        categories = _categories(body.get("categories"))
    elif body.get("categories") is not None:
        if data_type == "BOOLEAN":
            raise InvalidConfig("categories: generated for BOOLEAN configs and cannot be passed")
        raise InvalidConfig("categories: only CATEGORICAL configs have categories")
    if data_type == "BOOLEAN":
        categories = [dict(c) for c in BOOLEAN_CATEGORIES]
    return {
        "name": name,
        "data_type": data_type,
        "is_archived": archived,
        "min_value": min_value,
        "max_value": max_value,
        "categories": categories,
        "description": description,
    }


def check_update(stored: dict[str, Any], patch: Any) -> dict[str, Any]:
    """A stored config (store row) with a PATCH body applied, validated as on create."""
    if not isinstance(patch, dict):
        raise InvalidConfig("body must be a JSON object")
    if "dataType" in patch and patch["dataType"] != stored["data_type"]:
        raise InvalidConfig("dataType: cannot be changed; create a new config")
    merged: dict[str, Any] = {
        "name": stored["name"],
        "dataType": stored["data_type"],
        "isArchived": bool(stored["is_archived"]),
        "minValue": stored["min_value"],
        "maxValue": stored["max_value"],
        # BOOLEAN categories are regenerated, not carried over (they cannot be passed).
        "categories": stored["categories"] if stored["data_type"] == "CATEGORICAL" else None,
        "description": stored["description"],
    }
    # A null clears the optional fields; for name and isArchived (nullable in Langfuse's
    # UpdateScoreConfigRequest, but never empty) it means "unchanged".
    kept = ("name", "isArchived")
    merged.update(
        {k: patch[k] for k in UPDATABLE if k in patch and not (k in kept and patch[k] is None)}
    )
    return check_config(merged)


def check_score(fields: dict[str, Any], config: dict[str, Any] | None) -> None:
    """Check a score's fields against the config it names; fix its type and value.

    ``config`` is the stored config (None: the project has none with that id). A score
    that gave no dataType takes the config's; a CATEGORICAL score's value becomes its
    category's value. Raises :class:`Invalid`; ``fields`` are changed in place.
    """
    inferred = fields.pop(TYPE_FROM_CONFIG, False)
    if config is None:
        raise Invalid(f"configId: no score config {fields.get('config_id')!r} in this project")
    if config["is_archived"]:
        raise Invalid("configId: the score config is archived; restore it to use it")
    want = config["data_type"]
    have = fields["data_type"]
    if have != want:
        if not inferred:
            raise Invalid(f"dataType: {have} does not match the config's data type {want}")
        # The type was only guessed from the value: retype the value the sender gave.
        raw = fields["value"] if have == "NUMERIC" else fields["string_value"]
        fields["value"], fields["string_value"] = typed_value(want, raw)
        fields["data_type"] = want
    if want == "NUMERIC":
        low, high = config["min_value"], config["max_value"]
        value = fields["value"]
        if (low is not None and value < low) or (high is not None and value > high):
            shown = f"[{'-inf' if low is None else f'{low:g}'}, "
            shown += f"{'+inf' if high is None else f'{high:g}'}]"
            raise Invalid(f"value: {value:g} is outside the config's range {shown}")
    elif want == "CATEGORICAL":
        label = fields["string_value"]
        for category in config["categories"] or []:
            if category["label"] == label:
                fields["value"] = float(category["value"])
                break
        else:
            labels = ", ".join(repr(c["label"]) for c in config["categories"] or [])
            raise Invalid(f"value: {label!r} is not a category of the config ({labels})")


def check_named(fields: dict[str, Any], configs: dict[str, dict[str, Any]]) -> None:
    """:func:`check_score` for a score that names a config (``configs``: the batch's,
    by id); a score naming none passes as it is."""
    if "config_id" in fields:
        check_score(fields, configs.get(fields["config_id"]))


def config_ids(events: list[Any]) -> set[str]:
    """The config ids the score events of a batch name (usually none)."""
    return {e.fields["config_id"] for e in events if e.kind == "score" and "config_id" in e.fields}


def check_batch(parsed: ParsedBatch, configs: dict[str, dict[str, Any]]) -> None:
    """Check each score of a parsed batch that names a config; a score that fails
    becomes its event's 400 (removed from the events and successes)."""
    kept_events = []
    kept_ids = []
    for event_id, event in zip(parsed.event_ids, parsed.events, strict=True):
        if event.kind == "score":
            try:
                check_named(event.fields, configs)
            except Invalid as exc:
                parsed.successes.remove(event_id)
                parsed.errors.append(EventError(event_id, 400, "Invalid request data", str(exc)))
                continue
        kept_events.append(event)
        kept_ids.append(event_id)
    parsed.events, parsed.event_ids = kept_events, kept_ids
