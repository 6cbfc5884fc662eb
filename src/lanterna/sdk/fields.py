"""Keyword arguments of the public API -> Langfuse wire fields, in one table.

Every SDK entry point that takes trace or observation fields (``update_current_*``,
``client.trace/span/generation``, ``span.update/end``, the integrations) converts them
here, so a field is named, captured and formatted the same way everywhere.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from .capture import capture

TRACE_FIELDS = {
    "name": "name",
    "user_id": "userId",
    "session_id": "sessionId",
    "version": "version",
    "release": "release",
    "input": "input",
    "output": "output",
    "metadata": "metadata",
    "tags": "tags",
    "public": "public",
    "timestamp": "timestamp",
    "environment": "environment",
}

OBSERVATION_FIELDS = {
    "name": "name",
    "input": "input",
    "output": "output",
    "metadata": "metadata",
    "level": "level",
    "status_message": "statusMessage",
    "version": "version",
    "start_time": "startTime",
    "end_time": "endTime",
    "completion_start_time": "completionStartTime",
    "model": "model",
    "model_parameters": "modelParameters",
    "usage": "usage",
    "usage_details": "usageDetails",
    "cost_details": "costDetails",
    "prompt_name": "promptName",
    "prompt_version": "promptVersion",
    "environment": "environment",
}

LEVELS = ("DEBUG", "DEFAULT", "WARNING", "ERROR")
_CAPTURED = frozenset(
    {"input", "output", "metadata", "modelParameters", "usage", "usageDetails", "costDetails"}
)
_TIMES = frozenset({"timestamp", "startTime", "endTime", "completionStartTime"})
# OpenAI's own usage object (snake case) is read by the server as usageDetails, which
# splits cached and reasoning tokens out; the legacy ``usage`` field would not.
_OPENAI_USAGE_KEYS = frozenset(
    {"prompt_tokens", "completion_tokens", "input_tokens", "output_tokens"}
)


def timestamp(value: Any) -> str:
    """An ISO-8601 UTC string for a datetime (naive ones are taken as UTC) or a string."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def to_wire(values: dict[str, Any], table: dict[str, str], limit: int) -> dict[str, Any]:
    """The given (non-None) keyword arguments as wire fields.

    ``prompt`` (a prompt object with ``name`` and ``version``, or a dict) becomes the
    ``promptName``/``promptVersion`` link; input/output/metadata and usage are captured
    within ``limit`` characters; datetimes become ISO strings; ``level`` is upper-cased.
    """
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if key == "prompt":
            out.update(prompt_link(value))
            continue
        wire = table.get(key)
        if wire is None:
            raise TypeError(f"unexpected field {key!r}")
        if wire in _CAPTURED:
            value = capture(value, limit)
            if wire == "metadata" and not isinstance(value, dict):
                value = {"metadata": value}
            if (
                wire == "usage"
                and isinstance(value, dict)
                and not _OPENAI_USAGE_KEYS.isdisjoint(value)
            ):
                wire = "usageDetails"
        elif wire in _TIMES:
            value = timestamp(value)
        elif wire == "level":
            value = str(value).upper()
            if value not in LEVELS:
                raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {value!r}")
        elif wire == "tags":
            value = [str(t) for t in value]
        out[wire] = value
    return out


def prompt_link(prompt: Any) -> dict[str, Any]:
    """``promptName``/``promptVersion`` from a prompt object or a ``{name, version}`` dict."""
    if isinstance(prompt, dict):
        name, version = prompt.get("name"), prompt.get("version")
    else:
        name, version = getattr(prompt, "name", None), getattr(prompt, "version", None)
    # A fallback prompt (not fetched from the server) has no version: link nothing.
    if not isinstance(name, str) or isinstance(version, bool) or not isinstance(version, int):
        return {}
    if getattr(prompt, "is_fallback", False):
        return {}
    return {"promptName": name, "promptVersion": version}
