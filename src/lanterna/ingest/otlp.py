"""OTLP/HTTP trace exports -> domain events (contract section 3).

Both wire forms are read with the message classes of ``opentelemetry-proto``:
protobuf with ``ExportTraceServiceRequest.FromString``, OTLP/JSON with protobuf's
``json_format`` *after* the ids are taken out. OTLP/JSON carries trace and span ids as
hex strings while protobuf's JSON mapping reads ``bytes`` fields as base64, so the JSON
path lifts the ids out itself and parses only the rest.

The decoded spans become :class:`SpanData` (plain Python values), which
:mod:`.otlp_mapping` turns into the same :class:`DomainEvent` s that
``POST /api/public/ingestion`` produces.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from .. import _json
from ..timeutil import now
from .events import DomainEvent
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
    return {kv.key: any_value(kv.value) for kv in values}


def _ns(start: int, end: int) -> tuple[int, int]:
    if not start and not end:
        stamp = int(now().timestamp() * 1_000_000) * 1000
        return stamp, stamp
    return (start or end), (end or start)


def _span(
    span: Span,
    ids: tuple[str, str, str | None],
    resource: dict[str, Any],
    scope: tuple[str, str, dict[str, Any]],
) -> SpanData:
    start, end = _ns(span.start_time_unix_nano, span.end_time_unix_nano)
    return SpanData(
        trace_id=ids[0],
        span_id=ids[1],
        parent_span_id=ids[2],
        name=span.name,
        start_ns=start,
        end_ns=end,
        attributes=attributes(span.attributes),
        events=[(e.name, attributes(e.attributes)) for e in span.events],
        status_code=span.status.code,
        status_message=span.status.message,
        resource=resource,
        scope_name=scope[0],
        scope_version=scope[1],
        scope_attributes=scope[2],
    )


def _walk(
    request: ExportTraceServiceRequest,
    ids: Iterator[tuple[str, str, str | None]] | None,
) -> Iterator[SpanData]:
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            s = scope_spans.scope
            scope = (s.name, s.version, attributes(s.attributes))
            for span in scope_spans.spans:
                span_ids = next(ids) if ids is not None else _proto_ids(span)
                yield _span(span, span_ids, resource, scope)


# --- protobuf --------------------------------------------------------------------------


def _proto_ids(span: Span) -> tuple[str, str, str | None]:
    if not span.trace_id:
        raise OtlpError(f"span {span.name!r} has no traceId")
    if not span.span_id:
        raise OtlpError(f"span {span.name!r} has no spanId")
    for key, value in (("traceId", span.trace_id), ("spanId", span.span_id)):
        if len(value) * 2 > MAX_ID_BYTES:
            raise OtlpError(f"span {span.name!r}: {key} is longer than {MAX_ID_BYTES // 2} bytes")
    if len(span.parent_span_id) * 2 > MAX_ID_BYTES:
        raise OtlpError(
            f"span {span.name!r}: parentSpanId is longer than {MAX_ID_BYTES // 2} bytes"
        )
    parent = span.parent_span_id.hex() if span.parent_span_id else None
    return span.trace_id.hex(), span.span_id.hex(), parent


def decode_protobuf(raw: bytes) -> ExportTraceServiceRequest:
    """A binary ``ExportTraceServiceRequest``; :class:`OtlpError` when it is not one."""
    try:
        return ExportTraceServiceRequest.FromString(raw)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise OtlpError(f"Failed to parse OTel Protobuf Trace: {exc}") from None


# --- OTLP/JSON -------------------------------------------------------------------------


@dataclass(slots=True)
class JsonExport:
    """An OTLP/JSON export: the parsed message plus the ids lifted out of it, in order."""

    request: ExportTraceServiceRequest
    ids: list[tuple[str, str, str | None]]


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
                _fix_any_value(item.get("value") if container_key == "kvlistValue" else item)


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


def decode_json(raw: bytes) -> JsonExport:
    """An OTLP/JSON export; :class:`OtlpError` when it is not one."""
    try:
        doc = _json.loads(raw)
    except _json.JSONDecodeError as exc:
        raise OtlpError(f"Failed to parse OTel JSON Trace: {exc}") from None
    ids = _prepare_json(doc)
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
        return list(_walk(export.request, iter(export.ids)))
    return list(_walk(export, None))


def to_events(export: ExportTraceServiceRequest | JsonExport) -> list[DomainEvent]:
    """The domain events of a whole export (traces first, then observations)."""
    return events_of_spans(spans_of(export))


def export_response(protobuf: bool) -> tuple[bytes, str]:
    """The body and media type of a successful answer in the request's format."""
    if protobuf:
        return ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf"
    return b"{}", "application/json"
