"""Spans -> trace and observation domain events (contract 3.3-3.5).

One span gives one observation event, and a trace event when the span is a root
(the full trace), carries trace-level keys (an update), or belongs to a trace whose
root is not in this export (a shallow ``{timestamp, environment}`` so the trace is
listed before its root arrives). Merging is left to :mod:`.merge`, like for every
other wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

import orjson

from .. import _json
from ..errors import InvalidInput
from ..schema import OBSERVATION, TRACE
from .environment import normalize_environment
from .events import OBSERVATION_TYPES, DomainEvent
from .langfuse_events import Invalid, check_depth, without_nul
from .otlp_fields import clip, plan, read_fields
from .otlp_io import CONSUMED_PREFIXES, input_output, trace_input_output
from .otlp_semconv import (
    completion_start_time,
    cost_details,
    first,
    is_agent_aggregate,
    metadata_groups,
    model_name,
    model_parameters,
    parse_json,
    usage_details,
)

LANGFUSE_SCOPE = "langfuse-sdk"
MAX_INT32 = 2**31 - 1
#: Span and trace ids (hex on the wire) longer than this many bytes are refused.
MAX_ID_BYTES = 800
# Names, user and session ids and releases are cut to their field's limits (the ones
# the JSON path refuses above): a value that long is a sender's mistake that should not
# lose the span.
_OBSERVATION_NAME = OBSERVATION["name"]
_TRACE_NAME = TRACE["name"]
_USER_ID = TRACE["user_id"]
_SESSION_ID = TRACE["session_id"]
_RELEASE = TRACE["release"]
# Fields whose line in the field table names span attributes, read by their kind.
_OTLP_OBSERVATION = plan(tuple(f for f in OBSERVATION.otlp if not f.generation))
_OTLP_GENERATION = plan(tuple(f for f in OBSERVATION.otlp if f.generation))
_OTLP_TRACE = plan(TRACE.otlp)


class OtlpError(InvalidInput, ValueError):
    """The export as a whole cannot be used; the message says why (answered with 400)."""


@dataclass(slots=True)
class SpanData:
    """One span with everything the mapping reads, as plain Python values."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    status_code: int = 0
    status_message: str = ""
    resource: dict[str, Any] = field(default_factory=dict)
    scope_name: str = ""
    scope_version: str = ""
    scope_attributes: dict[str, Any] = field(default_factory=dict)
    #: Values derived once per span and read by several rules.
    memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _dt(ns: int) -> datetime:
    # Whole microseconds since the epoch, exactly; about twice as fast as
    # fromtimestamp() + replace() on this hot path (two per span).
    return _EPOCH + timedelta(0, 0, ns // 1000)  # (days, seconds, microseconds)


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _text(value: Any) -> str | None:
    """An id-like value as text; non-strings are JSON-encoded (Langfuse does the same)."""
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else _json.dumps(value)


def is_root(span: SpanData) -> bool:
    """No parent span, or marked as the trace root by the Langfuse SDK."""
    return span.parent_span_id is None or _true(span.attributes.get(_AS_ROOT))


# --- observation type, name, level, environment ----------------------------------------

_OPENINFERENCE_KINDS = {
    "CHAIN": "CHAIN",
    "RETRIEVER": "RETRIEVER",
    "LLM": "GENERATION",
    "EMBEDDING": "EMBEDDING",
    "AGENT": "AGENT",
    "TOOL": "TOOL",
    "GUARDRAIL": "GUARDRAIL",
    "EVALUATOR": "EVALUATOR",
}
_GENAI_OPERATIONS = {
    "chat": "GENERATION",
    "completion": "GENERATION",
    "text_completion": "GENERATION",
    "generate_content": "GENERATION",
    "generate": "GENERATION",
    "embeddings": "EMBEDDING",
    "invoke_agent": "AGENT",
    "create_agent": "AGENT",
    "execute_tool": "TOOL",
}
_GENKIT_SUBTYPES = {
    "model": "GENERATION",
    "background-model": "GENERATION",
    "embedder": "EMBEDDING",
    "tool": "TOOL",
    "tool.v2": "TOOL",
    "retriever": "RETRIEVER",
    "evaluator": "EVALUATOR",
}
_VERCEL_OPERATIONS = {
    "ai.generateText.doGenerate": "GENERATION",
    "ai.streamText.doStream": "GENERATION",
    "ai.generateObject.doGenerate": "GENERATION",
    "ai.streamObject.doStream": "GENERATION",
    "ai.embed.doEmbed": "EMBEDDING",
    "ai.embedMany.doEmbed": "EMBEDDING",
}
_VERCEL_MODEL_KEYS = (
    "langfuse.observation.model.name",
    "ai.model.id",
    "gen_ai.request.model",
    "gen_ai.response.model",
)
_MODEL_PRESENCE = (
    "langfuse.observation.model.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "llm.model_name",
    "model",
)
_GENERATION_HINTS = (
    "langfuse.observation.model.name",
    "langfuse.observation.cost_details",
    "langfuse.observation.usage_details",
    "langfuse.observation.completion_start_time",
    "langfuse.observation.model.parameters",
    "langfuse.observation.prompt.name",
    "langfuse.observation.prompt.version",
)
_LIVEKIT_TYPES = {"agent_turn": "AGENT", "start_agent_activity": "AGENT", "function_tool": "TOOL"}


@lru_cache(maxsize=64)
def _at_most_3_3(version: str) -> bool:
    try:
        major, minor = (int(p) for p in version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) <= (3, 3)


def _old_python_sdk(span: SpanData) -> bool:
    """Python SDK <= 3.3 sent generations as ``type=span`` with generation keys."""
    if span.scope_name != LANGFUSE_SCOPE or span.resource.get("telemetry.sdk.language") != "python":
        return False
    return _at_most_3_3(span.scope_version) and any(k in span.attributes for k in _GENERATION_HINTS)


def observation_type(span: SpanData) -> str:
    """The observation type; the first matching rule of contract 3.5 wins."""
    a = span.attributes
    declared = a.get("langfuse.observation.type")
    if declared == "span" and _old_python_sdk(span):
        return "GENERATION"
    if isinstance(declared, str) and declared.upper() in OBSERVATION_TYPES:
        return declared.upper()
    kind = a.get("openinference.span.kind")
    if isinstance(kind, str) and kind.upper() in _OPENINFERENCE_KINDS:
        return _OPENINFERENCE_KINDS[kind.upper()]
    operation = a.get("gen_ai.operation.name")
    if operation in _GENAI_OPERATIONS:
        return _GENAI_OPERATIONS[operation]
    subtype = a.get("genkit:metadata:subtype")
    if subtype in _GENKIT_SUBTYPES:
        return _GENKIT_SUBTYPES[subtype]
    vercel_op = a.get("ai.operationId") or a.get("operation.name")
    if isinstance(vercel_op, str):
        for prefix, mapped in _VERCEL_OPERATIONS.items():
            if vercel_op.startswith(prefix) and first(a, *_VERCEL_MODEL_KEYS) is not None:
                return mapped
        if vercel_op.startswith("ai.toolCall"):
            return "TOOL"
    if first(a, "gen_ai.tool.name", "gen_ai.tool.call.id") is not None:
        return "TOOL"
    if first(a, "flue.tool.name", "flue.tool.call_id") is not None:
        return "TOOL"
    if first(a, "flue.task.id", "flue.task.agent") is not None:
        return "AGENT"
    if span.scope_name == "livekit-agents" and span.name in _LIVEKIT_TYPES:
        return _LIVEKIT_TYPES[span.name]
    if first(a, *_MODEL_PRESENCE) is not None:
        return "GENERATION"
    return "SPAN"


def observation_name(span: SpanData) -> str:
    """Tool name, Genkit or Logfire names, Vercel function ids, else the span name."""
    a = span.attributes
    for key in ("gen_ai.tool.name", "genkit:name", "logfire.msg", "ai.toolCall.name"):
        value = a.get(key)
        if isinstance(value, str) and value:
            return value
    operation = a.get("ai.operationId")
    if isinstance(operation, str) and operation:
        function = a.get("ai.telemetry.functionId")
        return f"{function}:{operation}" if function else operation
    return span.name


_LEVELS = {
    "DEBUG": "DEBUG",
    "TRACE": "DEBUG",
    "VERBOSE": "DEBUG",
    "DEFAULT": "DEFAULT",
    "INFO": "DEFAULT",
    "LOG": "DEFAULT",
    "NOTICE": "DEFAULT",
    "OK": "DEFAULT",
    "SUCCESS": "DEFAULT",
    "WARNING": "WARNING",
    "WARN": "WARNING",
    "ERROR": "ERROR",
    "FATAL": "ERROR",
    "CRITICAL": "ERROR",
}
STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR


def level(span: SpanData) -> str:
    """The Langfuse level attribute (aliases accepted), else ERROR for an error status."""
    declared = span.attributes.get("langfuse.observation.level")
    if isinstance(declared, str) and declared.upper() in _LEVELS:
        return _LEVELS[declared.upper()]
    return "ERROR" if span.status_code == STATUS_ERROR else "DEFAULT"


def status_message(span: SpanData) -> str | None:
    """The Langfuse status message attribute, else the span status message."""
    declared = span.attributes.get("langfuse.observation.status_message")
    if declared not in (None, ""):
        return str(declared)
    return span.status_message or None


def environment(span: SpanData) -> str:
    """Each environment key is looked for on the span, then on the resource."""
    for key in ("langfuse.environment", "deployment.environment.name", "deployment.environment"):
        for source in (span.attributes, span.resource):
            value = source.get(key)
            if value not in (None, ""):
                return normalize_environment(value)
    return normalize_environment(None)


# --- metadata --------------------------------------------------------------------------


def _groups(span: SpanData) -> dict[str, dict[str, Any]]:
    groups = span.memo.get("metadata")
    if groups is None:
        groups = span.memo["metadata"] = metadata_groups(span.attributes)
        resource = span.memo.get("resource_metadata")
        if resource is None:
            resource = metadata_groups(span.resource)["langfuse.trace.metadata"]
        groups["resource"] = resource
        # Read by both the observation and the trace: built once (never mutated).
        groups["shared"] = _shared_metadata(groups)
    return groups


_AI_TELEMETRY_RESERVED = frozenset({"userId", "sessionId", "tags", "langfusePrompt"})


def _shared_metadata(groups: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Legacy ``langfuse.metadata`` and Vercel telemetry metadata: both trace and span."""
    out = dict(groups["langfuse.metadata"])
    for key, value in groups["ai.telemetry.metadata"].items():
        if key not in _AI_TELEMETRY_RESERVED:
            out[key] = value
    return out


def trace_metadata(span: SpanData) -> dict[str, Any]:
    """Trace metadata set on the resource and on the span."""
    groups = _groups(span)
    return {
        **groups["resource"],
        **groups["shared"],
        **groups["langfuse.trace.metadata"],
    }


_CONTEXT_KEYS = ("attributes", "resourceAttributes", "scope")


def _context_metadata(span: SpanData, used: set[str]) -> dict[str, Any]:
    """The raw attributes not read elsewhere, the resource and the scope."""
    out: dict[str, Any] = {}
    if not span.scope_name.startswith(LANGFUSE_SCOPE):
        out["attributes"] = {
            k: v
            for k, v in span.attributes.items()
            if k not in used and not k.startswith(CONSUMED_PREFIXES)
        }
    out["resourceAttributes"] = span.resource
    scope = span.memo.get("scope")
    if scope is None:
        scope = {
            "name": span.scope_name,
            "version": span.scope_version,
            "attributes": span.scope_attributes,
        }
    out["scope"] = scope
    return out


# --- trace-level keys ------------------------------------------------------------------


_FROM_METADATA = ("langfuse.observation.metadata.", "langfuse.trace.metadata.")
_USER_KEYS = ("langfuse.user.id", "user.id")
_SESSION_KEYS = ("langfuse.session.id", "session.id", "gen_ai.conversation.id")
_TAG_KEYS = ("langfuse.trace.tags", "langfuse.tags")
_LATE_TAG_KEYS = ("ai.telemetry.metadata.tags", "tag.tags")
_PUBLIC_KEYS = ("langfuse.trace.public", "langfuse.public")
_AS_ROOT = "langfuse.internal.as_root"
#: Every attribute a trace *update* depends on besides the span's metadata groups
#: and its environment (see _update_signature). A key read by trace_event() for a
#: non-root span must be listed here.
TRACE_UPDATE_KEYS = (
    "langfuse.trace.name",
    *_USER_KEYS,
    *_SESSION_KEYS,
    *_TAG_KEYS,
    *_LATE_TAG_KEYS,
    *_PUBLIC_KEYS,
    *(p + k for p in _FROM_METADATA for k in ("langfuse_user_id", "langfuse_session_id")),
    *(p + "langfuse_tags" for p in _FROM_METADATA),
    "ai.telemetry.metadata.userId",
    "ai.telemetry.metadata.sessionId",
    "langfuse.trace.input",
    "langfuse.trace.output",
    _AS_ROOT,
    *(key for f in TRACE.otlp for key in f.otlp),
)


def _from_metadata(attrs: dict[str, Any], key: str) -> Any:
    for prefix in _FROM_METADATA:
        value = attrs.get(prefix + key)
        if value not in (None, ""):
            return parse_json(value)
    return None


def user_id(attrs: dict[str, Any]) -> str | None:
    """The trace's user id from the first user key present."""
    value = first(attrs, *_USER_KEYS)
    if value is None:
        value = _from_metadata(attrs, "langfuse_user_id")
    if value is None:
        value = attrs.get("ai.telemetry.metadata.userId")
    text = _text(value)
    return None if text is None else clip(text, _USER_ID)


def session_id(attrs: dict[str, Any]) -> str | None:
    """The trace's session id from the first session key present."""
    value = first(attrs, *_SESSION_KEYS)
    if value is None:
        value = _from_metadata(attrs, "langfuse_session_id")
    if value is None:
        value = attrs.get("ai.telemetry.metadata.sessionId")
    text = _text(value)
    return None if text is None else clip(text, _SESSION_ID)


def _tag_list(value: Any, key: str) -> list[str] | None:
    """Tags from one attribute (``key`` names it); :class:`Invalid` when its JSON nests
    deeper than an event body may (a tag holding a structure is that structure's JSON)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        parsed = parse_json(value) if value.lstrip().startswith("[") else value
        if isinstance(parsed, str):
            return [t.strip() for t in parsed.split(",") if t.strip()]
        value = parsed
    if isinstance(value, (list, dict)):
        check_depth(value, key)
    if isinstance(value, list):
        return [t if isinstance(t, str) else _json.dumps(t) for t in value if t not in (None, "")]
    return [_json.dumps(value)]


def tags(attrs: dict[str, Any]) -> list[str] | None:
    """Trace tags: a string array, a JSON array, a comma-separated or a single string;
    :class:`Invalid` for JSON nested too deep."""
    for key in _TAG_KEYS:
        found = _tag_list(attrs.get(key), key)
        if found:
            return sorted(set(found))
    found = _tag_list(_from_metadata(attrs, "langfuse_tags"), "langfuse_tags")
    for key in _LATE_TAG_KEYS:
        found = found or _tag_list(attrs.get(key), key)
    return sorted(set(found)) if found else None


def public(attrs: dict[str, Any]) -> bool | None:
    """``langfuse.trace.public`` (or legacy ``langfuse.public``) when true."""
    value = first(attrs, *_PUBLIC_KEYS)
    return True if _true(value) else None


# --- one span -------------------------------------------------------------------------


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def _prompt(attrs: dict[str, Any]) -> tuple[str, int] | None:
    name = first(attrs, "langfuse.observation.prompt.name", "langfuse.prompt.name")
    version = first(attrs, "langfuse.observation.prompt.version", "langfuse.prompt.version")
    if name is None:
        linked = parse_json(attrs.get("ai.telemetry.metadata.langfusePrompt"))
        if isinstance(linked, dict):
            name, version = linked.get("name"), linked.get("version")
    if not isinstance(name, str) or not name:
        return None
    try:
        number = int(version) if not isinstance(version, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not 0 <= number <= MAX_INT32:  # stored in a 32-bit column
        return None
    return name, number


def observation_event(span: SpanData) -> DomainEvent:
    """The ``<type>-create`` of one span."""
    a = span.attributes
    start = _dt(span.start_ns)
    obs_type = observation_type(span)
    inp, out, used = input_output(a, span.scope_name, span.events)
    groups = _groups(span)
    fields: dict[str, Any] = {
        "trace_id": span.trace_id,
        "type": obs_type,
        "name": clip(observation_name(span), _OBSERVATION_NAME),
        "start_time": start,
        "end_time": _dt(span.end_ns),
        "level": level(span),
        "environment": environment(span),
        # The resource's trace metadata, then the span's observation metadata (the
        # shared groups, then langfuse.observation.metadata), then its context.
        "metadata": {
            **groups["resource"],
            **groups["shared"],
            **groups["langfuse.observation.metadata"],
            **_context_metadata(span, used),
        },
    }
    # An as_root span's parent is a stand-in the SDK invents for a given trace id;
    # no observation has that id, so it would hang the span off nothing.
    if span.parent_span_id is not None and not _true(a.get("langfuse.internal.as_root")):
        fields["parent_observation_id"] = span.parent_span_id
    # (``if value is not None`` stands for _put() on this hot path.)
    message = status_message(span)
    if message is not None:
        fields["status_message"] = message
    version = _text(a.get("langfuse.version") or None)
    if version is None:
        version = _text(span.resource.get("service.version"))
    if version is not None:
        fields["version"] = version
    if inp is not None:
        fields["input"] = inp
    if out is not None:
        fields["output"] = out
    if _OTLP_OBSERVATION:
        read_fields(a, _OTLP_OBSERVATION, fields)
    if obs_type not in ("SPAN", "EVENT"):
        _generation_fields(span, obs_type, start, fields)
    return DomainEvent("observation", span.span_id, start, fields)


def _generation_fields(span: SpanData, obs_type: str, start: datetime, out: dict[str, Any]) -> None:
    a = span.attributes
    _put(out, "completion_start_time", completion_start_time(a, start))
    _put(out, "model_parameters", model_parameters(a, span.scope_name))
    if not is_agent_aggregate(a):
        _put(out, "model", model_name(a))
        usage = usage_details(a, span.scope_name)
        if usage:
            out["usage_details"] = out["provided_usage_details"] = usage
        cost = cost_details(a)
        if cost:
            out["cost_details"] = out["provided_cost_details"] = cost
            out["total_cost"] = cost.get("total")
    if _OTLP_GENERATION:
        read_fields(a, _OTLP_GENERATION, out)
    prompt = _prompt(a) if obs_type == "GENERATION" else None
    if prompt is not None:
        out["prompt_name"], out["prompt_version"] = prompt


def trace_event(span: SpanData, observation: DomainEvent) -> DomainEvent | None:
    """The trace event of a span: full for a root, an update when it has trace keys."""
    a = span.attributes
    start = observation.timestamp
    fields: dict[str, Any] = {"timestamp": start, "environment": observation.fields["environment"]}
    # (``if value is not None`` stands for _put() on this hot path.)
    name = _text(a.get("langfuse.trace.name"))
    if name is not None:
        fields["name"] = clip(name, _TRACE_NAME)
    value: Any = user_id(a)
    if value is not None:
        fields["user_id"] = value
    value = session_id(a)
    if value is not None:
        fields["session_id"] = value
    try:
        value = tags(a)
    except Invalid as exc:  # the export is refused, as for other attributes nested too deep
        raise OtlpError(f"span {span.span_id}: {exc}") from None
    if value is not None:
        fields["tags"] = value
    value = public(a)
    if value is not None:
        fields["public"] = value
    inp, out = trace_input_output(a)
    if inp is not None:
        fields["input"] = inp
    if out is not None:
        fields["output"] = out
    if _OTLP_TRACE:
        read_fields(a, _OTLP_TRACE, fields)
    groups = _groups(span)
    if not is_root(span):
        if len(fields) == 2 and not groups["langfuse.trace.metadata"]:
            return None
        _put(fields, "metadata", trace_metadata(span) or None)
        return DomainEvent("trace", span.trace_id, start, fields, is_update=True)
    obs = observation.fields
    fields.setdefault("name", obs["name"])
    _put(fields, "version", obs.get("version"))
    release = _text(first(a, "langfuse.release"))
    if release is None:
        release = _text(span.resource.get("langfuse.release"))
    if release is not None:
        fields["release"] = clip(release, _RELEASE)
    if "input" not in fields:
        _put(fields, "input", obs.get("input"))
    if "output" not in fields:
        _put(fields, "output", obs.get("output"))
    obs_metadata = obs["metadata"]
    # trace_metadata(), then the observation metadata, then the span's context.
    metadata = {
        **groups["resource"],
        **groups["shared"],
        **groups["langfuse.trace.metadata"],
        **groups["shared"],
        **groups["langfuse.observation.metadata"],
    }
    for key in _CONTEXT_KEYS:
        if key in obs_metadata:
            metadata[key] = obs_metadata[key]
    fields["metadata"] = metadata
    return DomainEvent("trace", span.trace_id, start, fields)


class _Updates:
    """Trace updates of one export, without the repeats propagated attributes cause.

    SDKs copy trace attributes onto every span, so most children carry the same
    update. A repeat is dropped only while every update of the trace so far is the
    same, so that order-dependent outcomes (later values win) are untouched.
    """

    def __init__(self) -> None:
        self.first: dict[str, DomainEvent] = {}
        self.mixed: set[str] = set()
        #: The signature of the span that gave each trace's first update.
        self.signatures: dict[str, bytes] = {}

    def comparable(self, trace_id: str) -> bool:
        """Whether a repeat of the trace's first update would still be dropped."""
        return trace_id in self.signatures and trace_id not in self.mixed

    def repeat(self, trace_id: str, signature: bytes | None, timestamp: datetime) -> bool:
        """Whether a span with this signature would give a dropped repeat (see keep()).

        The same signature means the same update fields (trace_event is a function of
        them), so the repeat is dropped without being built.
        """
        if signature is None or trace_id in self.mixed:
            return False
        if self.signatures.get(trace_id) != signature:
            return False
        first = self.first[trace_id]
        if timestamp < first.timestamp:  # as keep() does
            first.timestamp = first.fields["timestamp"] = timestamp
        return True

    def keep(self, event: DomainEvent, signature: bytes | None = None) -> bool:
        first = self.first.get(event.entity_id)
        if first is None:
            self.first[event.entity_id] = event
            if signature is not None:
                self.signatures[event.entity_id] = signature
            return True
        if event.entity_id not in self.mixed:
            # Equal but for the timestamp (every trace event has one).
            fields = event.fields
            if fields == {**first.fields, "timestamp": fields["timestamp"]}:
                if event.timestamp < first.timestamp:  # the earliest time founds the trace
                    first.timestamp = first.fields["timestamp"] = event.timestamp
                return False
            self.mixed.add(event.entity_id)
        return True


# Types that orjson would write like a string (or an object): two different values
# could encode alike, so such a span gets no signature.
_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_STRICT |= orjson.OPT_PASSTHROUGH_SUBCLASS


def _update_signature(span: SpanData, environment: str) -> bytes | None:
    """What a non-root span's trace update is computed from, encoded; None if unsure.

    The JSON encoding keeps types apart (``1``, ``1.0``, ``true`` and ``"1"`` differ),
    where ``==`` would not. The metadata groups are the parsed values the update's
    metadata is merged from.
    """
    groups = _groups(span)
    try:
        return orjson.dumps(
            [
                environment,
                groups["resource"],
                groups["shared"],
                groups["langfuse.trace.metadata"],
                list(map(span.attributes.get, TRACE_UPDATE_KEYS)),
            ],
            option=_STRICT,
        )
    except TypeError:
        return None


def _sanitized(events: list[DomainEvent]) -> None:
    """NUL characters out (PostgreSQL cannot store them), nesting depth checked."""
    everything = {"events": [e.fields for e in events]}
    try:
        if without_nul(everything) is everything:
            return  # the common case: one encode for the whole export
    except Invalid:
        pass
    for event in events:
        try:
            event.fields = without_nul(event.fields)
        except Invalid as exc:
            raise OtlpError(f"span {event.entity_id}: {exc}") from None


def events_of_spans(spans: list[SpanData]) -> list[DomainEvent]:
    """Trace events then observation events for an export's spans."""
    traces: list[DomainEvent] = []
    observations: list[DomainEvent] = []
    covered: set[str] = set()
    shallow: dict[str, DomainEvent] = {}
    updates = _Updates()
    resource_metadata: dict[int, dict[str, Any]] = {}
    scopes: dict[tuple[int, str, str], dict[str, Any]] = {}
    for span in spans:
        # Spans of one resource share its attribute dict: read its metadata once.
        key = id(span.resource)
        if key not in resource_metadata:
            groups = metadata_groups(span.resource)
            resource_metadata[key] = groups["langfuse.trace.metadata"]
        span.memo["resource_metadata"] = resource_metadata[key]
        # Likewise one scope object for the spans of one scope (events only read it).
        scope_key = (id(span.scope_attributes), span.scope_name, span.scope_version)
        scope = scopes.get(scope_key)
        if scope is None:
            scope = scopes[scope_key] = {
                "name": span.scope_name,
                "version": span.scope_version,
                "attributes": span.scope_attributes,
            }
        span.memo["scope"] = scope
        observation = observation_event(span)
        observations.append(observation)
        signature = None
        if span.parent_span_id is not None and updates.comparable(span.trace_id):
            # Children repeat their trace's update (propagated attributes): most are
            # recognised by their inputs, without building the update to compare it.
            signature = _update_signature(span, observation.fields["environment"])
            if updates.repeat(span.trace_id, signature, observation.timestamp):
                covered.add(span.trace_id)
                continue
        trace = trace_event(span, observation)
        if trace is not None:
            if trace.is_update and trace.entity_id not in updates.first:
                signature = _update_signature(span, observation.fields["environment"])
            if not trace.is_update or updates.keep(trace, signature):
                traces.append(trace)
            covered.add(span.trace_id)
            continue
        # The trace row should exist before its root arrives (it may never, when the
        # root lives in a service that exports elsewhere).
        seen = shallow.get(span.trace_id)
        if seen is None or observation.timestamp < seen.timestamp:
            env = observation.fields["environment"]
            shallow[span.trace_id] = DomainEvent(
                "trace",
                span.trace_id,
                observation.timestamp,
                {"timestamp": observation.timestamp, "environment": env},
                is_update=True,
            )
    traces.extend(e for trace_id, e in shallow.items() if trace_id not in covered)
    events = traces + observations
    _sanitized(events)
    return events
