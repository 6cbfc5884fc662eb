"""``POST /api/public/ingestion`` batches -> domain events, with per-event errors.

One bad event never rejects its neighbours: each event is validated on its own and
becomes either a :class:`DomainEvent` or an error entry of the 207 response.
Field names follow the Langfuse wire contract (camelCase); unknown keys are ignored.
Plain fields are read by their kind and limits from the field tables
(``lanterna.schema``); the rest (environment, metadata, usage, prompt links, score
values and targets) by hand here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import _json
from ..errors import InvalidInput
from ..schema import OBSERVATION, SCORE, TRACE, Field
from ..schema import field as kinds
from ..timeutil import parse_ts
from .environment import normalize_environment
from .events import SCORE_DATA_TYPES, SCORE_SOURCES, DomainEvent
from .usage import (
    UsageError,
    normalize_cost_details,
    normalize_legacy_usage,
    normalize_usage_details,
)

MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1
#: Deepest JSON nesting accepted in an event body.
MAX_DEPTH = 200
_ENCODER_DEPTH = 254


class Invalid(InvalidInput, ValueError):
    """A per-event validation failure; the message says which field and why."""


@dataclass(slots=True)
class EventError:
    """One entry of the 207 response's ``errors`` list."""

    id: str
    status: int
    message: str
    error: Any = None

    def as_json(self) -> dict[str, Any]:
        """The wire form."""
        out: dict[str, Any] = {"id": self.id, "status": self.status, "message": self.message}
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass(slots=True)
class ParsedBatch:
    """The outcome of reading a batch: events to write and the 207 lists."""

    events: list[DomainEvent] = field(default_factory=list)
    #: The envelope id of each of ``events`` (same order).
    event_ids: list[str] = field(default_factory=list)
    successes: list[str] = field(default_factory=list)
    errors: list[EventError] = field(default_factory=list)


# --- field readers: one per value kind, each given the field's line of the table ----


def _text(value: Any, f: Field) -> str:
    """A string within the field's limits (characters, then UTF-8 bytes)."""
    if not isinstance(value, str):
        raise Invalid(f"{f.api}: expected a string, got {type(value).__name__}")
    max_chars = f.max_chars
    if max_chars is not None and len(value) > max_chars:
        raise Invalid(f"{f.api}: longer than {max_chars} characters")
    max_bytes = f.max_bytes
    # Four bytes per character at most: only long strings need the byte count.
    if max_bytes is not None and len(value) * 4 > max_bytes and len(value.encode()) > max_bytes:
        raise Invalid(f"{f.api}: longer than {max_bytes} bytes (UTF-8)")
    return value


def _ident(value: Any, f: Field) -> str:
    text = _text(value, f)
    if not text or "\r" in text:
        raise Invalid(f"{f.api}: must be 1-{f.max_chars} characters without carriage returns")
    return text


def _version(value: Any, f: Field) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return _text(value, f)


def _enum(value: Any, f: Field) -> str:
    if value not in f.choices:
        raise Invalid(f"{f.api}: must be one of {', '.join(f.choices)}")
    return str(value)


def _timestamp(value: Any, f: Field) -> datetime:
    try:
        return parse_ts(value)
    except ValueError as exc:
        raise Invalid(f"{f.api}: {exc}") from None


def _any(value: Any, f: Field) -> Any:
    return value


def _object(value: Any, f: Field) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"{f.api}: expected an object")
    return value


def _strings(value: Any, f: Field) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise Invalid(f"{f.api}: expected a list of strings")
    return sorted(set(value))


def _bool(value: Any, f: Field) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{f.api}: expected a boolean")
    return value


def _number(value: Any, f: Field) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise Invalid(f"{f.api}: expected a number")
    return float(value)


def _int(value: Any, f: Field) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{f.api}: expected an integer")
    if not -MAX_INT64 <= value <= MAX_INT64:
        raise Invalid(f"{f.api}: must be between {-MAX_INT64} and {MAX_INT64}")
    return value


_READERS: dict[str, Callable[[Any, Field], Any]] = {
    kinds.TEXT: _text,
    kinds.ID: _ident,
    kinds.VERSION: _version,
    kinds.ENUM: _enum,
    kinds.TIMESTAMP: _timestamp,
    kinds.JSON: _any,
    kinds.OBJECT: _object,
    kinds.STRINGS: _strings,
    kinds.BOOL: _bool,
    kinds.NUMBER: _number,
    kinds.INT: _int,
}
_Plan = tuple[tuple[str, str, Callable[[Any, Field], Any], Field], ...]


def _plan(fields: tuple[Field, ...]) -> _Plan:
    return tuple((f.api, f.column, _READERS[f.kind], f) for f in fields if f.api)


# What each body reads by kind (the field tables' ``read=AUTO`` fields), made once.
_TRACE_AUTO = _plan(TRACE.auto)
_OBSERVATION_AUTO = _plan(OBSERVATION.auto)
_GENERATION_AUTO = _plan(OBSERVATION.auto_generation)
_SCORE_AUTO = _plan(SCORE.auto)


def _read_auto(body: dict[str, Any], plan: _Plan, out: dict[str, Any]) -> None:
    """Each field of ``plan`` that ``body`` holds, read by its kind, into ``out``."""
    get = body.get
    for api, column, read, f in plan:
        value = get(api)
        if value is not None:
            out[column] = read(value, f)


def _read(body: dict[str, Any], f: Field) -> Any:
    """One field of ``body`` read by its kind (None when absent)."""
    value = body.get(f.api)  # type: ignore[arg-type]
    return None if value is None else _READERS[f.kind](value, f)


def _metadata(body: dict[str, Any]) -> dict[str, Any] | None:
    value = body.get("metadata")
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    # Langfuse keeps a non-object metadata value under the key "metadata".
    return {"metadata": value}


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


# --- bodies --------------------------------------------------------------------------


def trace_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The fields of a TraceBody, in domain names; absent fields are left out."""
    out: dict[str, Any] = {}
    _read_auto(body, _TRACE_AUTO, out)
    _put(out, "metadata", _metadata(body))
    if body.get("environment") is not None:
        out["environment"] = normalize_environment(body["environment"])
    return out


def observation_fields(body: dict[str, Any], *, generation: bool) -> dict[str, Any]:
    """The fields of a span/event/generation body, in domain names."""
    out: dict[str, Any] = {}
    _read_auto(body, _OBSERVATION_AUTO, out)
    _put(out, "metadata", _metadata(body))
    if body.get("environment") is not None:
        out["environment"] = normalize_environment(body["environment"])
    if not generation:
        return out
    _read_auto(body, _GENERATION_AUTO, out)
    try:
        legacy_usage, legacy_cost = normalize_legacy_usage(body.get("usage") or None)
        usage = normalize_usage_details(body.get("usageDetails") or None) or legacy_usage
        cost = normalize_cost_details(body.get("costDetails") or None) or legacy_cost
    except UsageError as exc:
        raise Invalid(str(exc)) from None
    if usage:
        out["usage_details"] = usage
        out["provided_usage_details"] = usage
    if cost:
        out["cost_details"] = cost
        out["provided_cost_details"] = cost
        out["total_cost"] = cost.get("total")
    prompt_name = _read(body, _PROMPT_NAME)
    prompt_version = body.get("promptVersion")
    if (prompt_name is None) != (prompt_version is None):
        raise Invalid("promptName and promptVersion must be given together")
    if prompt_version is not None:
        if isinstance(prompt_version, bool) or not isinstance(prompt_version, int):
            raise Invalid("promptVersion: expected an integer")
        if not 0 <= prompt_version <= MAX_INT32:  # stored in a 32-bit column
            raise Invalid(f"promptVersion: must be between 0 and {MAX_INT32}")
        out["prompt_name"] = prompt_name
        out["prompt_version"] = prompt_version
    return out


_PROMPT_NAME = OBSERVATION["prompt_name"]


def score_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The fields of a ScoreBody, validated by data type and target (contract 2.4)."""
    out: dict[str, Any] = {}
    name = _read(body, SCORE["name"])
    if not name:
        raise Invalid("name: required, a non-empty string")
    out["name"] = name
    trace_id = _read(body, SCORE["trace_id"])
    observation_id = _read(body, SCORE["observation_id"])
    session_id = _read(body, SCORE["session_id"])
    dataset_run_id = _read(body, SCORE["dataset_run_id"])
    targets = sum(x is not None for x in (trace_id, session_id, dataset_run_id))
    if targets != 1:
        raise Invalid("a score needs exactly one of traceId, sessionId or datasetRunId")
    if observation_id is not None and trace_id is None:
        raise Invalid("observationId requires traceId")
    _put(out, "trace_id", trace_id)
    _put(out, "observation_id", observation_id)
    _put(out, "session_id", session_id)
    _put(out, "dataset_run_id", dataset_run_id)
    _read_auto(body, _SCORE_AUTO, out)
    _put(out, "metadata", _metadata(body))
    _put(out, "config_id", _read(body, SCORE["config_id"]) or None)  # "" names no config
    source = body.get("source")
    if source is None:  # absent or an explicit null: the default
        source = "API"
    if source not in SCORE_SOURCES:
        raise Invalid(f"source: must be one of {', '.join(SCORE_SOURCES)}")
    out["source"] = source
    if body.get("environment") is not None:
        out["environment"] = normalize_environment(body["environment"])
    value = body.get("value")
    data_type = body.get("dataType")
    if data_type is not None and data_type not in SCORE_DATA_TYPES:
        raise Invalid(f"dataType: must be one of {', '.join(SCORE_DATA_TYPES)}")
    if data_type is None:
        if isinstance(value, (int, float)):
            data_type = "NUMERIC"
        elif isinstance(value, str):
            data_type = "CATEGORICAL"
        else:
            raise Invalid("value: required, a number or a string")
        if out.get("config_id") is not None:
            # The config decides the type (checked against it before the write).
            out[TYPE_FROM_CONFIG] = True
    out["value"], out["string_value"] = typed_value(data_type, value)
    if data_type == "CORRECTION" and (session_id or dataset_run_id):
        raise Invalid("a CORRECTION score targets a trace or an observation")
    out["data_type"] = data_type
    return out


#: Set in a score's fields when it names a config but no dataType, so the check against
#: the config (``ingest.score_configs.check_score``, which removes it) may retype it.
TYPE_FROM_CONFIG = "_type_from_config"


def typed_value(data_type: str, value: Any) -> tuple[float, str | None]:
    """A score's ``(value, string_value)`` for its data type; raises :class:`Invalid`."""
    # A JSON boolean counts as the number 0/1 (bool is an int subclass).
    number = float(value) if isinstance(value, (int, float)) else None
    if data_type == "NUMERIC":
        if number is None or number != number:
            raise Invalid("value: a NUMERIC score needs a number")
        return number, None
    if data_type == "BOOLEAN":
        if number not in (0.0, 1.0):
            raise Invalid("value: a BOOLEAN score needs 0 or 1")
        assert number is not None
        return number, "True" if number else "False"
    if data_type == "CATEGORICAL":
        if not isinstance(value, str):
            raise Invalid("value: a CATEGORICAL score needs a string")
        return 0.0, value
    # TEXT, CORRECTION
    if not isinstance(value, str) or not value:
        raise Invalid(f"value: a {data_type} score needs a non-empty string")
    if data_type == "TEXT" and len(value) > 500:
        raise Invalid("value: a TEXT score holds at most 500 characters")
    return 0.0, value


# --- envelopes -----------------------------------------------------------------------

_OBSERVATION_EVENTS: dict[str, tuple[str, bool, bool]] = {
    # type -> (observation type, is_update, generation fields allowed)
    "span-create": ("SPAN", False, False),
    "span-update": ("SPAN", True, False),
    "generation-create": ("GENERATION", False, True),
    "generation-update": ("GENERATION", True, True),
    "event-create": ("EVENT", False, False),
    "agent-create": ("AGENT", False, True),
    "tool-create": ("TOOL", False, True),
    "chain-create": ("CHAIN", False, True),
    "retriever-create": ("RETRIEVER", False, True),
    "evaluator-create": ("EVALUATOR", False, True),
    "embedding-create": ("EMBEDDING", False, True),
    "guardrail-create": ("GUARDRAIL", False, True),
}
SCORE_ONLY_TYPES = frozenset({"score-create", "sdk-log"})


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


def without_nul(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with NUL characters removed from every string and key; checks depth.

    PostgreSQL text and jsonb cannot hold U+0000, so keeping them would fail the write;
    they are dropped on every backend alike. The walk runs only when the encoded body
    shows an escaped NUL (a C-speed search), so clean bodies cost one encode.
    Raises :class:`Invalid` for a body nested deeper than :data:`MAX_DEPTH`.
    """
    if b"\\u0000" not in _encoded_within_depth(body):
        return body
    cleaned: dict[str, Any] = _strip_nul(body)
    return cleaned


def check_depth(value: Any, where: str = "body") -> None:
    """Raise :class:`Invalid` when ``value`` (decoded JSON) nests deeper than
    :data:`MAX_DEPTH`: the limit of an event body, for the bodies of the other routes."""
    _encoded_within_depth(value, where)


def _encoded_within_depth(value: Any, where: str = "body") -> bytes:
    """``value`` encoded; :class:`Invalid` when it nests deeper than :data:`MAX_DEPTH`.

    orjson encodes at most 254 levels. Encoding the value inside extra list levels
    proves that it, and every response that embeds it, stays encodable."""
    wrapped: Any = value
    for _ in range(_ENCODER_DEPTH - MAX_DEPTH):
        wrapped = [wrapped]
    try:
        return _json.dumpb(wrapped)
    except TypeError:
        raise Invalid(f"{where}: nested more than {MAX_DEPTH} levels deep") from None


def _bodies_clean(batch: list[Any]) -> bool:
    """True when no event of ``batch`` holds a NUL or nests deeper than :func:`without_nul`
    allows: one encode for the whole batch instead of one per event (a hot path).

    The batch list and the event object sit above each body, so two fewer wrapping
    levels give every body the same depth limit. False means: check each body.
    """
    wrapped: Any = batch
    for _ in range(_ENCODER_DEPTH - MAX_DEPTH - 2):
        wrapped = [wrapped]
    try:
        encoded = _json.dumpb(wrapped)
    except TypeError:
        return False
    return b"\\u0000" not in encoded


def _lone_surrogate(value: Any) -> bool:
    """Does ``value`` hold a string with a lone UTF-16 surrogate (a JSON escape such as
    ``\\ud800`` without its pair, which the standard library's parser lets through)?"""
    try:
        _json.dumpb(value)
    except TypeError as exc:  # orjson.JSONEncodeError; too deep a value fails here too
        return "surrogate" in str(exc)
    return False


#: An event's envelope id has the limits of the ids of entities.
_EVENT_ID = TRACE["id"]
_EVENT_TIME = TRACE["timestamp"]


def _envelope(event: Any, checked: bool = False) -> tuple[str, str, datetime, dict[str, Any]]:
    if not isinstance(event, dict):
        raise Invalid("each event must be an object")
    event_id = _read(event, _EVENT_ID)
    if event_id is None:
        raise Invalid("id: required")
    event_type = event.get("type")
    if not isinstance(event_type, str):
        raise Invalid("type: required, a string")
    timestamp = _read(event, _EVENT_TIME)
    if timestamp is None:
        raise Invalid("timestamp: required, an ISO-8601 datetime with offset")
    body = event.get("body")
    if not isinstance(body, dict):
        raise Invalid("body: required, an object")
    return event_id, event_type, timestamp, body if checked else without_nul(body)


def read_event(event: Any, *, checked: bool = False) -> tuple[str, DomainEvent | None]:
    """Validate one envelope; return its id and the domain event (None: nothing to store).

    ``checked``: the batch is known free of NULs and too-deep bodies (skips that check).
    Raises :class:`Invalid` with a message naming the field at fault.
    """
    event_id, event_type, timestamp, body = _envelope(event, checked)
    if event_type == "trace-create":
        entity = _read(body, TRACE["id"])
        fields = trace_fields(body)
        return event_id, DomainEvent("trace", entity, timestamp, fields) if entity else None
    spec = _OBSERVATION_EVENTS.get(event_type)
    legacy = event_type in ("observation-create", "observation-update")
    if spec is not None or legacy:
        entity = _read(body, OBSERVATION["id"])
        if entity is None:
            raise Invalid("body.id: required for observation events")
        obs_type: str | None
        if legacy:
            is_update = event_type == "observation-update"
            # A legacy update without a type keeps the stored one (merge defaults to SPAN).
            obs_type = body.get("type", None if is_update else "SPAN")
            if obs_type is not None and obs_type not in ("SPAN", "GENERATION", "EVENT"):
                raise Invalid("body.type: must be SPAN, GENERATION or EVENT")
            fields = observation_fields(body, generation=True)
        else:
            assert spec is not None
            obs_type, is_update, generation = spec
            fields = observation_fields(body, generation=generation)
        _put(fields, "type", obs_type)
        return event_id, DomainEvent("observation", entity, timestamp, fields, is_update)
    if event_type == "score-create":
        entity = _read(body, SCORE["id"])
        fields = score_fields(body)
        return event_id, DomainEvent("score", entity, timestamp, fields) if entity else None
    if event_type == "sdk-log":
        return event_id, None
    if event_type == "dataset-run-item-create":
        raise Invalid("dataset-run-item-create is internal and cannot be sent here")
    raise Invalid(f"unknown event type {event_type!r}")


def read_batch(batch: list[Any], *, scores_only: bool = False) -> ParsedBatch:
    """Validate every event of a batch; bad ones become per-event errors.

    ``scores_only`` is the public-key (Bearer) scope: anything but a score or an
    sdk-log is refused with 401 "Access Scope Denied".
    """
    out = ParsedBatch()
    checked = _bodies_clean(batch)
    for raw in batch:
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        error_id = raw_id if isinstance(raw_id, str) and raw_id else "unknown"
        if not checked and _lone_surrogate(raw):
            out.errors.append(
                EventError(
                    error_id.encode("utf-8", "replace").decode(),
                    400,
                    "Invalid request data",
                    "a string holds a lone surrogate (\\ud800-\\udfff escaped alone):"
                    " not Unicode text",
                )
            )
            continue
        if scores_only and isinstance(raw, dict) and raw.get("type") not in SCORE_ONLY_TYPES:
            out.errors.append(
                EventError(error_id, 401, "Authentication error", "Access Scope Denied")
            )
            continue
        try:
            event_id, domain = read_event(raw, checked=checked)
        except Invalid as exc:
            out.errors.append(EventError(error_id, 400, "Invalid request data", str(exc)))
            continue
        if raw.get("type") == "sdk-log":
            continue  # a valid sdk-log is listed in neither successes nor errors
        if domain is not None:
            out.events.append(domain)
            out.event_ids.append(event_id)
        out.successes.append(event_id)
    return out


def new_id() -> str:
    """A fresh random id (uuid4), as the Langfuse server makes them."""
    return str(uuid.uuid4())
