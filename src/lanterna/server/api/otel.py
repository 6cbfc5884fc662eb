"""OTLP/HTTP trace export: ``POST /api/public/otel/v1/traces`` and ``POST /v1/traces``.

The second path is the plain OTLP one, so a stock exporter configured with only the
server's base URL as its endpoint works. Bodies are protobuf or OTLP/JSON, optionally
gzip- or deflate-compressed. The answer is 200 only after the spans are committed, as for
``/api/public/ingestion``; a malformed export is refused whole with 400 and a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.responses import Response

from ...ingest.media import FoundMedia, extract_media
from ...ingest.otlp import (
    ExportTraceServiceRequest,
    JsonExport,
    decode_json,
    decode_protobuf,
    export_response,
    spans_of,
    to_events,
)
from ...ingest.otlp_experiments import ExperimentLink
from ...store.db import Conn
from ...timeutil import now
from ..auth import ProjectKey
from ..doc_models import Deferred, DocModel, answer
from ..errors import ApiError
from ..media import media_allowed, with_media
from ..runtime import Runtime, runtime
from .body import read_decoded_body

router = APIRouter()

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# --- the OpenAPI shapes: OTLP/JSON (protobuf's JSON mapping), and protobuf bytes -------


class OtlpAttribute(DocModel):
    """An attribute: ``key`` and an OTLP ``AnyValue`` (``{"stringValue": ...}``,
    ``intValue``, ``doubleValue``, ``boolValue``, ``arrayValue``, ``kvlistValue``,
    ``bytesValue``)."""

    key: str
    value: dict[str, Any] | None = None


class OtlpResource(DocModel):
    """What sent the spans (``service.name``, ...)."""

    attributes: list[OtlpAttribute] = []


class OtlpScope(DocModel):
    """The instrumentation library."""

    name: str | None = None
    version: str | None = None
    attributes: list[OtlpAttribute] = []


class OtlpSpan(DocModel):
    """A span. Ids are hex (32 digits for a trace, 16 for a span) or base64; times are
    nanoseconds since the epoch (a number or a decimal string); ``kind`` is OTLP's
    number or its name."""

    traceId: str
    spanId: str
    parentSpanId: str | None = None
    name: str | None = None
    kind: int | str | None = None
    startTimeUnixNano: int | str | None = None
    endTimeUnixNano: int | str | None = None
    attributes: list[OtlpAttribute] = []
    events: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    status: dict[str, Any] | None = None


class OtlpScopeSpans(DocModel):
    """The spans of one instrumentation scope."""

    scope: OtlpScope | None = None
    spans: list[OtlpSpan] = []


class OtlpResourceSpans(DocModel):
    """The spans of one resource."""

    resource: OtlpResource | None = None
    scopeSpans: list[OtlpScopeSpans] = []


class OtlpExportRequest(DocModel):
    """An OTLP ``ExportTraceServiceRequest`` in OTLP/JSON (the same message in protobuf
    is ``application/x-protobuf``)."""

    resourceSpans: list[OtlpResourceSpans] = []


class PartialSuccess(DocModel):
    """Spans left out (ids that are not OTLP ids): how many and why."""

    rejectedSpans: str = Field(description="A count (an int64: a string in OTLP/JSON).")
    errorMessage: str


class OtlpExportResponse(DocModel):
    """OTLP's ``ExportTraceServiceResponse`` in OTLP/JSON: ``{}``, or the
    ``partialSuccess`` when spans were left out; the same message in protobuf answers an
    ``application/x-protobuf`` export."""

    partialSuccess: PartialSuccess | None = None


_BYTES = {"schema": {"type": "string", "format": "binary"}}
#: Both media types, JSON or protobuf, optionally gzip- or deflate-encoded.
_EXPORT_BODY = Deferred(
    lambda: {
        "requestBody": {
            "required": True,
            "content": {
                JSON: {"schema": OtlpExportRequest.model_json_schema()},
                PROTOBUF: _BYTES,
            },
        }
    }
)
#: The answer is in the request's format.
_EXPORTED: dict[int | str, dict[str, Any]] = {
    200: answer(
        OtlpExportResponse, "Committed; the answer in the request's media type", {PROTOBUF: _BYTES}
    )
}


async def commit_export(
    rt: Runtime, project_id: str, decode: Callable[[], ExportTraceServiceRequest | JsonExport]
) -> list[str]:
    """Decode an export, map its spans and commit them; return the reasons of the spans
    left out (ids that are not OTLP ids). Returns only after the commit: the OTLP/HTTP
    routes and the gRPC receiver (``otlp_grpc.py``) both answer after it.
    :class:`~lanterna.ingest.otlp_mapping.OtlpError` for an unusable export."""
    rejected: list[str] = []
    links: list[ExperimentLink] = []  # dataset run items recorded by experiment spans
    found: list[FoundMedia] = []  # media taken out of the spans

    def prepare(conn: Conn) -> tuple[None, Callable[[Conn], Any] | None]:
        # Decoding and mapping are CPU work: in the thread pool, like the JSON path.
        export = decode()
        rt.quota.take(project_id, "ingest", sum(1 for _ in spans_of(export)))
        events = to_events(export, rejected, links)
        if not events:
            return None, None
        # Base64 data URIs in attributes go to the media store (``finish``).
        found.extend(extract_media(events, media_allowed(rt.settings)))
        return None, rt.store.ingest.prepare_events(conn, project_id, events)

    def finish(unit: Callable[[Conn], Any]) -> Callable[[Conn], Any]:
        # The blobs are durable before the spans that refer to them commit; written
        # after the batch's turn to prepare, so an upload does not hold the others up.
        return with_media(rt, project_id, found, unit) if found else unit

    await rt.prepare_and_commit(prepare, finish)
    await rt.share_quota()
    if links:
        # Rare (experiment runs only), so not in the ingestion unit the writer combines.
        await rt.write(lambda conn: rt.store.datasets.record_experiment_items(
            conn, project_id, links, now()))  # fmt: skip
    return rejected


async def _export(request: Request, principal: ProjectKey) -> Response:
    content_type = request.headers.get("content-type", "").lower()
    if PROTOBUF in content_type:
        protobuf = True
    elif JSON in content_type:
        protobuf = False
    else:
        raise ApiError(
            400,
            f"Invalid content type {content_type or '(none)'!r}: send {PROTOBUF} or {JSON}",
            "Invalid content type",
        )
    rt = runtime(request)
    raw = await read_decoded_body(request)
    decode = decode_protobuf if protobuf else decode_json
    rejected = await commit_export(rt, principal.project_id, lambda: decode(raw))
    body, media_type = export_response(protobuf, rejected)
    return Response(body, media_type=media_type)


# Both stay looser in the document than the route's checks: a protobuf body is bytes to
# JSON Schema, and an OTLP/JSON span's ids must be OTLP ids (hex or base64 of 16 or 8
# bytes, not all zero) with times a span can have.
@router.post("/api/public/otel/v1/traces", responses=_EXPORTED, openapi_extra=_EXPORT_BODY)
async def otel_traces(request: Request, principal: ProjectKey) -> Response:
    """Accept an OTLP trace export (protobuf or JSON, optionally gzip)."""
    return await _export(request, principal)


@router.post("/v1/traces", responses=_EXPORTED, openapi_extra=_EXPORT_BODY)
async def otlp_traces(request: Request, principal: ProjectKey) -> Response:
    """The same export on the standard OTLP/HTTP path."""
    return await _export(request, principal)
