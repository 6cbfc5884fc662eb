"""OTLP over gRPC: the ``TraceService/Export`` receiver (``--otlp-grpc-port``, off by
default; 4317 is the usual port).

It answers exactly as ``POST /v1/traces`` does, through the same code
(``api/otel.py``'s :func:`commit_export`: the same mapping, the same commit before the
answer), with the same API keys: ``authorization`` metadata holding ``Basic
base64(public:secret)``. It runs a ``grpc.aio`` server on its own event loop in a
thread, started and stopped with the app (``app.py``'s lifespan).

Errors map to gRPC status codes as OTLP exporters expect: no or bad credentials
``UNAUTHENTICATED``, a key without full access ``PERMISSION_DENIED``, an unusable export
``INVALID_ARGUMENT`` (not retried), the rate limit ``RESOURCE_EXHAUSTED`` (retried), a
store that cannot commit ``UNAVAILABLE`` (retried).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ..errors import DomainError, RateLimited
from ..ingest.otlp_mapping import OtlpError
from .api.otel import commit_export
from .auth import authenticate_header, refuse_read_only_writes
from .runtime import Runtime

log = logging.getLogger("lanterna.otlp_grpc")


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def Export(  # the generated service's method name
        self, request: ExportTraceServiceRequest, context: Any
    ) -> ExportTraceServiceResponse:
        rt = self.rt
        header = dict(context.invocation_metadata()).get("authorization")
        try:
            principal = await asyncio.to_thread(authenticate_header, rt, header)
        except DomainError as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, exc.message)
        if principal.scope != "all":
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, "a public key alone cannot export spans"
            )
        try:
            refuse_read_only_writes("POST", principal)
        except DomainError as exc:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, exc.message)
        try:
            rejected = await commit_export(rt, principal.project_id, lambda: request)
        except OtlpError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
        except RateLimited as exc:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, exc.message)
        except DomainError as exc:
            code = (
                grpc.StatusCode.UNAVAILABLE
                if exc.status >= 500
                else grpc.StatusCode.INVALID_ARGUMENT
            )
            await context.abort(code, exc.message)
        response = ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = len(rejected)
            response.partial_success.error_message = "; ".join(rejected[:10])
        return response


class GrpcReceiver:
    """The OTLP/gRPC receiver of one app: :meth:`start` binds and serves in a thread,
    :meth:`stop` finishes the exports in flight and closes it."""

    def __init__(self, rt: Runtime, host: str, port: int) -> None:
        self.rt = rt
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    async def _serve(self) -> None:
        limit = self.rt.settings.max_request_bytes
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.so_reuseport", 0),
            ]
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _TraceService(self.rt), self._server
        )
        bound = self._server.add_insecure_port(f"{self.host}:{self.port}")
        if not bound:
            raise OSError(f"cannot listen on {self.host}:{self.port} for OTLP/gRPC")
        self.port = bound
        await self._server.start()

    def start(self) -> None:
        """Bind the port (an ``OSError`` when it is taken) and serve in a thread."""
        # Its own loop in its own thread: start() is called from the app's running loop.
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="lanterna-otlp-grpc", daemon=True
        )
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(30)
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None
            raise
        log.info("OTLP/gRPC receiver listening on %s:%s", self.host, self.port)

    def stop(self, grace: float = 5.0) -> None:
        """Stop taking exports, let those in flight finish, stop the thread."""
        if self._thread is None or self._server is None:
            return
        stopped = asyncio.run_coroutine_threadsafe(self._server.stop(grace), self._loop)
        stopped.result(grace + 5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._thread = None
