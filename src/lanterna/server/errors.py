"""API errors and their JSON bodies (``{"message": ..., "error": ...}``).

Every :class:`~lanterna.errors.DomainError` (from any package, or :class:`ApiError`
raised in a route) is answered by one handler, installed by :func:`install`: its status
and JSON body on the API, the dashboard's HTML error page elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import PlainTextResponse, Response

from ..errors import ERROR_NAMES, INVALID_REQUEST_DATA, DomainError, NotFound
from ..store.db import is_connection_lost
from ..store.writer import DatabaseUnavailableError
from .doc_models import DocModel, answer
from .responses import JSON

log = logging.getLogger("lanterna.server")

#: Paths answered with JSON errors; every other path is the dashboard's (HTML errors).
API_PREFIXES = ("/api/", "/v1/")

#: Renders a domain error as an HTML page (the dashboard's ``error.html``).
HtmlPage = Callable[[Request, DomainError], Awaitable[Response]]


class ErrorBody(DocModel):
    """Every JSON error of the API (its schema in the OpenAPI document)."""

    message: str
    #: A stable name (``LangfuseNotFoundError``), or the details of what was invalid.
    error: Any


class ApiError(DomainError):
    """Raise anywhere in a route to answer ``status`` with a JSON error body."""

    def __init__(self, status: int, message: str, error: Any = None) -> None:
        super().__init__(message, status=status, error=error)


def not_found(what: str) -> NotFound:
    """A 404 for a missing resource."""
    return NotFound(f"{what} not found")


def error_response(status: int, message: str, error: Any = None) -> JSON:
    """The JSON response for an error."""
    name = error if error is not None else ERROR_NAMES.get(status, "Error")
    body = {"message": message, "error": name}
    return JSON(body, status_code=status)


async def _validation_error(_request: Request, exc: Exception) -> JSON:
    assert isinstance(exc, RequestValidationError)
    issues = [
        {"path": [str(p) for p in e.get("loc", ())], "message": e.get("msg", "")}
        for e in exc.errors()
    ]
    return error_response(400, INVALID_REQUEST_DATA, issues)


async def _http_error(_request: Request, exc: Exception) -> JSON:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, str(exc.detail))


#: What the dashboard's error page says for a routing error (no route, wrong method).
_PAGE_MESSAGES = {
    404: "Page not found",
    405: "This page cannot be opened this way",
}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIXES) or request.url.path in ("/api", "/v1")


def install(app: FastAPI, html_page: HtmlPage | None = None) -> None:
    """Register the error handlers on ``app``; ``html_page`` renders domain errors on
    the dashboard's paths (without it they answer JSON there too)."""

    async def domain_error(request: Request, exc: Exception) -> Response:
        # E.g. a WriterClosedError (503: stopping, or stopped after a failed fsync):
        # nothing of the request was written; the client may retry.
        assert isinstance(exc, DomainError)
        if html_page is not None and not _is_api(request):
            return await html_page(request, exc)
        return JSON(exc.body(), status_code=exc.status, headers=exc.headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        # No route (404) or a method a route does not take (405): a page on the
        # dashboard's paths, JSON on the API's.
        assert isinstance(exc, StarletteHTTPException)
        if html_page is not None and not _is_api(request):
            message = _PAGE_MESSAGES.get(exc.status_code, str(exc.detail))
            response = await html_page(request, DomainError(message, status=exc.status_code))
            if exc.headers:
                response.headers.update(exc.headers)
            return response
        return await _http_error(request, exc)

    async def server_error(request: Request, exc: Exception) -> Response:
        # A bug: the dashboard shows a page (the traceback goes to the log as before).
        if html_page is not None and not _is_api(request):
            try:
                return await html_page(request, DomainError("Something went wrong on our side."))
            except Exception:  # the page itself failed (e.g. the database is gone)
                return PlainTextResponse("Internal Server Error", status_code=500)
        return error_response(500, "Internal Server Error")

    async def database_error(request: Request, exc: Exception) -> Response:
        # PostgreSQL restarting or gone (also no pooled connection within the pool's
        # timeout): 503, retry later. Any other database error is a bug: 500, logged.
        if is_connection_lost(exc):
            return await domain_error(request, DatabaseUnavailableError())
        log.error("database error", exc_info=exc)
        return await server_error(request, exc)

    try:
        import psycopg

        app.add_exception_handler(psycopg.OperationalError, database_error)
    except ImportError:  # a SQLite-only install
        pass
    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, server_error)


#: The error responses every API route documents (``include_router(responses=...)``):
#: any client error is an :class:`ErrorBody`; FastAPI's default 422 is not listed (a
#: validation error answers 400 here).
RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": answer(ErrorBody, "Client error: the message says why"),
}
