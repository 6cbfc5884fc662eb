"""OTLP/HTTP trace exports -> domain events (contract section 3).

Both wire forms are read with the message classes of ``opentelemetry-proto``:
protobuf with ``ExportTraceServiceRequest.FromString``, OTLP/JSON with protobuf's
``json_format`` *after* the ids are taken out. OTLP/JSON carries trace and span ids as
hex strings while protobuf's JSON mapping reads ``bytes`` fields as base64, so the JSON
path lifts the ids out itself and parses only the rest. ``json_format`` is slow (pure
Python), so an export in the canonical form exporters write is read directly, into the
same values; any other form still goes through ``json_format`` (see _json_spans).

The decoded spans become :class:`SpanData` (plain Python values), which
:mod:`.otlp_mapping` turns into the same :class:`DomainEvent` s that
``POST /api/public/ingestion`` produces.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from .. import _json
from ..timeutil import now
from .events import DomainEvent
from .otlp_experiments import ExperimentLink, experiment_links
from .otlp_mapping import MAX_ID_BYTES, OtlpError, SpanData, events_of_spans

__all__ = [
    "OtlpError",
    "SpanData",
    "decode_json",
    "decode_protobuf",
    "export_response",
    "spans_of",
    "to_events",
]

_HEX = re.compile(r"[0-9a-fA-F]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- attribute values ----------------------------------------------------------------


def any_value(value: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as a Python value (arrays as lists, kvlists as dicts)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        number = value.double_value
        if math.isnan(number) or math.isinf(number):
            # JSON has no NaN/Infinity; keep them readable, as Langfuse does.
            return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
        return number
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def attributes(values: Iterable[KeyValue]) -> dict[str, Any]:
    """A repeated ``KeyValue`` field as a dict (a later duplicate key wins)."""
    out: dict[str, Any] = {}
    for kv in values:
        value = kv.value
        # Most attributes are non-empty strings: read them without WhichOneof (a hot
        # path); an unset or empty string reads as "" and takes the general way.
        text = value.string_value
        out[kv.key] = text if text else any_value(value)
    return out


def _ns(start: int, end: int) -> tuple[int, int]:
    if not start and not end:
        stamp = int(now().timestamp() * 1_000_000) * 1000
        return stamp, stamp
    return (start or end), (end or start)


def _walk(
    request: ExportTraceServiceRequest,
    ids: Iterator[tuple[str, str, str | None]] | None,
) -> Iterator[SpanData]:
    attrs = attributes
    for resource_spans in request.resource_spans:
        resource = attrs(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            s = scope_spans.scope
            scope_name, scope_version, scope_attrs = s.name, s.version, attrs(s.attributes)
            for span in scope_spans.spans:
                trace_id, span_id, parent = next(ids) if ids is not None else _proto_ids(span)
                start, end = _ns(span.start_time_unix_nano, span.end_time_unix_nano)
                status = span.status
                events = span.events
                yield SpanData(
                    trace_id,
                    span_id,
                    parent,
                    span.name,
                    start,
                    end,
                    attrs(span.attributes),
                    [(e.name, attrs(e.attributes)) for e in events] if events else [],
                    status.code,
                    status.message,
                    resource,
                    scope_name,
                    scope_version,
                    scope_attrs,
                )


# --- protobuf --------------------------------------------------------------------------


def _proto_ids(span: Span) -> tuple[str, str, str | None]:
    trace_id, span_id, parent = span.trace_id, span.span_id, span.parent_span_id
    if not trace_id:
        raise OtlpError(f"span {span.name!r} has no traceId")
    if not span_id:
        raise OtlpError(f"span {span.name!r} has no spanId")
    for key, value in (("traceId", trace_id), ("spanId", span_id)):
        if len(value) * 2 > MAX_ID_BYTES:
            raise OtlpError(f"span {span.name!r}: {key} is longer than {MAX_ID_BYTES // 2} bytes")
    if len(parent) * 2 > MAX_ID_BYTES:
        raise OtlpError(
            f"span {span.name!r}: parentSpanId is longer than {MAX_ID_BYTES // 2} bytes"
        )
    return trace_id.hex(), span_id.hex(), parent.hex() if parent else None


def decode_protobuf(raw: bytes) -> ExportTraceServiceRequest:
    """A binary ``ExportTraceServiceRequest``; :class:`OtlpError` when it is not one."""
    try:
        return ExportTraceServiceRequest.FromString(raw)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise OtlpError(f"Failed to parse OTel Protobuf Trace: {exc}") from None


# --- OTLP/JSON -------------------------------------------------------------------------


@dataclass(slots=True)
class JsonExport:
    """An OTLP/JSON export: the parsed message plus the ids lifted out of it, in order,
    or (``request`` None) its spans, read directly from canonical JSON."""

    request: ExportTraceServiceRequest | None
    ids: list[tuple[str, str, str | None]]
    spans: list[SpanData] | None = None


def _list(container: dict[str, Any], key: str, where: str) -> list[Any]:
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise OtlpError(
            f"{where}.{key} must be an array, got {type(value).__name__}"
            + (" (attributes are a list of {key, value} objects)" if key == "attributes" else "")
        )
    return value


def _long(value: Any) -> Any:
    """JS exporters may send 64-bit integers as ``{low, high}`` objects."""
    if isinstance(value, dict) and "low" in value and "high" in value:
        low, high = value["low"], value["high"]
        if isinstance(low, int) and isinstance(high, int):
            return (high << 32) | (low & 0xFFFFFFFF)
    return value


def _fix_any_value(value: Any) -> None:
    if not isinstance(value, dict):
        return
    if "intValue" in value:
        value["intValue"] = _long(value["intValue"])
    for container_key in ("arrayValue", "kvlistValue"):
        inner = value.get(container_key)
        if isinstance(inner, dict) and isinstance(inner.get("values"), list):
            for item in inner["values"]:
                if container_key == "kvlistValue":
                    # Not an object: json_format refuses it below (a 400, not a crash here).
                    item = item.get("value") if isinstance(item, dict) else None
                _fix_any_value(item)


def _fix_attributes(container: dict[str, Any], where: str) -> None:
    for kv in _list(container, "attributes", where):
        if isinstance(kv, dict):
            _fix_any_value(kv.get("value"))


def _json_id(span: dict[str, Any], key: str, size: int, where: str) -> str | None:
    value = span.pop(key, None)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise OtlpError(f"{where}.{key} must be a hex string, got {type(value).__name__}")
    if len(value.encode()) > MAX_ID_BYTES:
        raise OtlpError(f"{where}.{key} is longer than {MAX_ID_BYTES} bytes")
    if _CONTROL.search(value):
        raise OtlpError(f"{where}.{key} contains control characters")
    if _HEX.fullmatch(value):
        return value.lower()
    # Some producers use protobuf's own JSON mapping, which writes ids as base64.
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    return decoded.hex() if len(decoded) == size else value


def _prepare_json(doc: Any) -> list[tuple[str, str, str | None]]:
    """Validate the shape, lift ids out and normalise longs, in place."""
    if not isinstance(doc, dict):
        raise OtlpError("an OTLP/JSON export must be a JSON object with resourceSpans")
    ids: list[tuple[str, str, str | None]] = []
    for r, resource_spans in enumerate(_list(doc, "resourceSpans", "body")):
        where_r = f"resourceSpans[{r}]"
        if not isinstance(resource_spans, dict):
            raise OtlpError(f"{where_r} must be an object")
        resource = resource_spans.get("resource")
        if isinstance(resource, dict):
            _fix_attributes(resource, f"{where_r}.resource")
        for s, scope_spans in enumerate(_list(resource_spans, "scopeSpans", where_r)):
            where_s = f"{where_r}.scopeSpans[{s}]"
            if not isinstance(scope_spans, dict):
                raise OtlpError(f"{where_s} must be an object")
            scope = scope_spans.get("scope")
            if isinstance(scope, dict):
                _fix_attributes(scope, f"{where_s}.scope")
            for i, span in enumerate(_list(scope_spans, "spans", where_s)):
                where = f"{where_s}.spans[{i}]"
                if not isinstance(span, dict):
                    raise OtlpError(f"{where} must be an object")
                trace_id = _json_id(span, "traceId", 16, where)
                span_id = _json_id(span, "spanId", 8, where)
                parent = _json_id(span, "parentSpanId", 8, where)
                if trace_id is None:
                    raise OtlpError(f"{where} ({span.get('name')!r}) has no traceId")
                if span_id is None:
                    raise OtlpError(f"{where} ({span.get('name')!r}) has no spanId")
                ids.append((trace_id, span_id, parent))
                span.pop("links", None)  # ignored, and their ids are hex too
                for key in ("startTimeUnixNano", "endTimeUnixNano"):
                    if key in span:
                        span[key] = _long(span[key])
                _fix_attributes(span, where)
                for e, event in enumerate(_list(span, "events", where)):
                    if isinstance(event, dict):
                        if "timeUnixNano" in event:
                            event["timeUnixNano"] = _long(event["timeUnixNano"])
                        _fix_attributes(event, f"{where}.events[{e}]")
    return ids


# --- canonical OTLP/JSON without json_format -------------------------------------------
#
# json_format.ParseDict is pure Python: ~250 µs per span of the Langfuse SDK's shape,
# 95% of it in the attribute lists. An export in the canonical form OTLP/JSON exporters
# write is read directly into the spans the parsed message would give. Anything else
# (a null, bytes, a number written as a float or a float-string, an enum by number-string,
# a proto field name or an unknown key, two values in one AnyValue...) makes the whole
# export take ParseDict's way as before, so what is accepted, refused and read stays
# the same: each form read here is one ParseDict reads to the same value.


class _Unusual(Exception):
    """Not in the canonical form read directly; ParseDict reads the export."""


_INT64 = (-(2**63), 2**63 - 1)
_INTEGER = re.compile(r"-?[0-9]+")
_DIGITS = re.compile(r"[0-9]+")


def _json_any(value: Any) -> Any:
    """A canonical OTLP/JSON ``AnyValue`` as any_value() reads the parsed message."""
    if type(value) is not dict:
        raise _Unusual
    if len(value) != 1:
        if value:
            raise _Unusual
        return None  # no value set
    ((kind, inner),) = value.items()
    kind_type = type(inner)
    if kind == "stringValue":
        if kind_type is str:
            return inner
    elif kind == "intValue":
        if kind_type is str and _INTEGER.fullmatch(inner):
            inner, kind_type = int(inner), int
        if kind_type is int and _INT64[0] <= inner <= _INT64[1]:
            return inner
    elif kind == "boolValue":
        if kind_type is bool:
            return inner
    elif kind == "doubleValue":
        if kind_type is int and -(2**53) <= inner <= 2**53:  # exactly a double
            return float(inner)
        if kind_type is float and math.isfinite(inner):
            return inner
    elif kind in ("arrayValue", "kvlistValue") and kind_type is dict:
        values = inner.get("values", [])
        if inner.keys() <= {"values"} and type(values) is list:
            if kind == "arrayValue":
                return [_json_any(v) for v in values]
            return _json_attributes(values)
    raise _Unusual


def _json_attributes(values: Any) -> dict[str, Any]:
    """A canonical list of ``{key, value}`` objects as attributes() reads it."""
    if type(values) is not list:
        raise _Unusual
    out: dict[str, Any] = {}
    for kv in values:
        if type(kv) is not dict or len(kv) != 2:
            raise _Unusual
        key = kv.get("key")
        value = kv.get("value")
        if type(key) is not str or value is None:
            raise _Unusual
        out[key] = _json_any(value)
    return out


def _unsigned(bits: int) -> Callable[[Any], int]:
    top = 2**bits

    def read(value: Any) -> int:
        if type(value) is str and _DIGITS.fullmatch(value):
            value = int(value)
        if type(value) is int and 0 <= value < top:
            return value
        raise _Unusual

    return read


def _enum(enum: EnumDescriptor) -> Callable[[Any], int]:
    names = {v.name: v.number for v in enum.values}

    def read(value: Any) -> int:
        if type(value) is str and value in names:
            return names[value]
        if type(value) is int and -(2**31) <= value < 2**31:  # open enum: any int32
            return value
        raise _Unusual

    return read


def _string(value: Any) -> str:
    if type(value) is str:
        return value
    raise _Unusual


_READERS = {
    FieldDescriptor.TYPE_STRING: _string,
    FieldDescriptor.TYPE_FIXED64: _unsigned(64),
    FieldDescriptor.TYPE_FIXED32: _unsigned(32),
    FieldDescriptor.TYPE_UINT32: _unsigned(32),
}


def _scalars(message: Any, *nested: str) -> tuple[dict[str, Callable[[Any], Any]], frozenset[str]]:
    """Readers of a message's scalar fields by JSON name; ``nested``: the message
    fields read by the caller (any other message or bytes field is unusual)."""
    readers: dict[str, Callable[[Any], Any]] = {}
    for f in message.DESCRIPTOR.fields:
        if f.type == FieldDescriptor.TYPE_ENUM:
            readers[f.json_name] = _enum(f.enum_type)
        elif f.type in _READERS:
            readers[f.json_name] = _READERS[f.type]
    return readers, frozenset(nested)


_REQUEST = _scalars(ExportTraceServiceRequest, "resourceSpans")
_RESOURCE_SPANS = _scalars(ResourceSpans, "resource", "scopeSpans")
_RESOURCE = _scalars(Resource, "attributes")
_SCOPE_SPANS = _scalars(ScopeSpans, "scope", "spans")
_SCOPE = _scalars(InstrumentationScope, "attributes")
_SPAN = _scalars(Span, "attributes", "events", "status")
_EVENT = _scalars(Span.Event, "attributes")
_STATUS = _scalars(Status)


def _read(obj: Any, shape: tuple[dict[str, Callable[[Any], Any]], frozenset[str]]) -> dict:
    """The scalar fields of a canonical object (defaults left out), checked."""
    if type(obj) is not dict:
        raise _Unusual
    readers, nested = shape
    out = {}
    for key, value in obj.items():
        reader = readers.get(key)
        if reader is not None:
            out[key] = reader(value)
        elif key not in nested:
            raise _Unusual
    return out


def _items(obj: dict[str, Any], key: str) -> Any:
    value = obj.get(key, ())
    if type(value) is not list and value != ():
        raise _Unusual
    return value


def _json_spans(doc: Any, ids: list[tuple[str, str, str | None]]) -> list[SpanData]:
    """The spans of a canonical export, as _walk() reads the parsed message."""
    spans: list[SpanData] = []
    id_of = iter(ids)
    _read(doc, _REQUEST)
    for resource_spans in _items(doc, "resourceSpans"):
        _read(resource_spans, _RESOURCE_SPANS)
        resource_obj = resource_spans.get("resource", {})
        _read(resource_obj, _RESOURCE)
        resource = _json_attributes(resource_obj.get("attributes", []))
        for scope_spans in _items(resource_spans, "scopeSpans"):
            _read(scope_spans, _SCOPE_SPANS)
            scope_obj = scope_spans.get("scope", {})
            scope = _read(scope_obj, _SCOPE)
            scope_name, scope_version = scope.get("name", ""), scope.get("version", "")
            scope_attrs = _json_attributes(scope_obj.get("attributes", []))
            for span in _items(scope_spans, "spans"):
                fields = _read(span, _SPAN)
                status = _read(span.get("status", {}), _STATUS)
                events = []
                for event in _items(span, "events"):
                    name = _read(event, _EVENT).get("name", "")
                    events.append((name, _json_attributes(event.get("attributes", []))))
                trace_id, span_id, parent = next(id_of)
                start, end = _ns(
                    fields.get("startTimeUnixNano", 0), fields.get("endTimeUnixNano", 0)
                )
                spans.append(
                    SpanData(
                        trace_id,
                        span_id,
                        parent,
                        fields.get("name", ""),
                        start,
                        end,
                        _json_attributes(span.get("attributes", [])),
                        events,
                        status.get("code", 0),
                        status.get("message", ""),
                        resource,
                        scope_name,
                        scope_version,
                        scope_attrs,
                    )
                )
    return spans


def decode_json(raw: bytes) -> JsonExport:
    """An OTLP/JSON export; :class:`OtlpError` when it is not one."""
    try:
        doc = _json.loads(raw)
    except _json.JSONDecodeError as exc:
        raise OtlpError(f"Failed to parse OTel JSON Trace: {exc}") from None
    ids = _prepare_json(doc)
    try:
        return JsonExport(None, ids, _json_spans(doc, ids))
    except _Unusual:
        pass
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(doc, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise OtlpError(f"Failed to parse OTel JSON Trace: {exc}") from None
    return JsonExport(request, ids)


# --- spans -> events --------------------------------------------------------------------


def spans_of(export: ExportTraceServiceRequest | JsonExport) -> list[SpanData]:
    """Every span of an export; :class:`OtlpError` if one lacks usable ids."""
    if isinstance(export, JsonExport):
        if export.request is None:
            return list(export.spans or ())
        return list(_walk(export.request, iter(export.ids)))
    return list(_walk(export, None))


_ID_DIGITS = (("traceId", "trace_id", 32), ("spanId", "span_id", 16))


def _id_problem(span: SpanData) -> str | None:
    """Why a span's ids are not OTLP ids (32 / 16 hex digits, not all zero), or None."""
    for key, attr, digits in (*_ID_DIGITS, ("parentSpanId", "parent_span_id", 16)):
        value = getattr(span, attr)
        if value is None:
            continue
        if len(value) != digits or not _HEX.fullmatch(value) or not value.strip("0"):
            return f"span {span.name!r}: {key} must be {digits} hex digits, not all zero"
    return None


def to_events(
    export: ExportTraceServiceRequest | JsonExport,
    rejected: list[str] | None = None,
    links: list[ExperimentLink] | None = None,
) -> list[DomainEvent]:
    """The domain events of a whole export (traces first, then observations). Spans
    whose ids are not OTLP ids are left out, their reasons appended to ``rejected``;
    the dataset run items that experiment spans record are appended to ``links``."""
    spans = []
    for span in spans_of(export):
        problem = _id_problem(span)
        if problem is None:
            spans.append(span)
        elif rejected is not None:
            rejected.append(problem)
    if links is not None:
        links.extend(experiment_links(spans))
    return events_of_spans(spans)


def export_response(protobuf: bool, rejected: Sequence[str] = ()) -> tuple[bytes, str]:
    """The body and media type of a successful answer in the request's format, with
    OTLP's ``partialSuccess`` when spans were ``rejected``."""
    message = "; ".join(rejected[:10]) + (
        f"; and {len(rejected) - 10} more" if len(rejected) > 10 else ""
    )
    if protobuf:
        response = ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = len(rejected)
            response.partial_success.error_message = message
        return response.SerializeToString(), "application/x-protobuf"
    if not rejected:
        return b"{}", "application/json"
    partial = {"rejectedSpans": str(len(rejected)), "errorMessage": message}
    return _json.dumpb({"partialSuccess": partial}), "application/json"
