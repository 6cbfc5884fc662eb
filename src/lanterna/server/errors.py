"""API errors and their JSON bodies (``{"message": ..., "error": ...}``)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..store.writer import WriterClosedError
from .responses import JSON

_NAMES = {
    400: "InvalidRequestError",
    401: "UnauthorizedError",
    403: "AccessDeniedError",
    404: "LangfuseNotFoundError",
    405: "MethodNotAllowedError",
    409: "ConflictError",
    413: "PayloadTooLargeError",
    415: "UnsupportedMediaTypeError",
    503: "ServiceUnavailableError",
}


class ApiError(Exception):
    """Raise anywhere in a route to answer ``status`` with a JSON error body."""

    def __init__(self, status: int, message: str, error: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error if error is not None else _NAMES.get(status, "Error")


def not_found(what: str) -> ApiError:
    """A 404 for a missing resource."""
    return ApiError(404, f"{what} not found")


def error_response(status: int, message: str, error: Any = None) -> JSON:
    """The JSON response for an error."""
    name = error if error is not None else _NAMES.get(status, "Error")
    body = {"message": message, "error": name}
    return JSON(body, status_code=status)


async def _api_error(_request: Request, exc: Exception) -> JSON:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.error)


async def _validation_error(_request: Request, exc: Exception) -> JSON:
    assert isinstance(exc, RequestValidationError)
    issues = [
        {"path": [str(p) for p in e.get("loc", ())], "message": e.get("msg", "")}
        for e in exc.errors()
    ]
    return error_response(400, "Invalid request data", issues)


async def _http_error(_request: Request, exc: Exception) -> JSON:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, str(exc.detail))


async def _writer_closed(_request: Request, exc: Exception) -> JSON:
    # The writer is stopping (shutdown) or stopped after a failed fsync: nothing of the
    # request was written; the client may retry against a healthy server.
    return error_response(503, str(exc))


HANDLERS = {
    ApiError: _api_error,
    WriterClosedError: _writer_closed,
    RequestValidationError: _validation_error,
    StarletteHTTPException: _http_error,
}
