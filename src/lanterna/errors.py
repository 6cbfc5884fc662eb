"""Domain errors: one base class that knows the HTTP status and the JSON error body.

Any package may raise these (they import nothing of the web stack); the server answers
every :class:`DomainError` through one handler (``server/errors.py``), so routes do not
translate errors by hand. Existing domain exceptions keep their names and builtin bases
(``FilterError`` is still a ``ValueError``) and add one of these as a base.

The body is the Langfuse error shape ``{"message": ..., "error": ...}``: ``error`` is a
stable name per status (``LangfuseNotFoundError`` for a 404, which the SDKs map to
``NotFoundError``) unless a subclass says otherwise.
"""

from __future__ import annotations

from typing import Any

#: The body's ``error`` for each status, as the Langfuse server names them.
ERROR_NAMES = {
    400: "InvalidRequestError",
    401: "UnauthorizedError",
    403: "AccessDeniedError",
    404: "LangfuseNotFoundError",
    405: "MethodNotAllowedError",
    409: "ConflictError",
    413: "PayloadTooLargeError",
    415: "UnsupportedMediaTypeError",
    429: "TooManyRequestsError",
    503: "ServiceUnavailableError",
}

#: The fixed message of Langfuse's request validation errors (the detail is in ``error``).
INVALID_REQUEST_DATA = "Invalid request data"


class DomainError(Exception):
    """An error the caller can act on: an HTTP ``status`` and a JSON ``body()``.

    ``message`` is the exception's text. ``status`` and ``error`` are class attributes
    that a subclass sets once; an instance may override them (``status=``, ``error=``).
    """

    status: int = 500
    #: The body's ``error``: a stable name, or details; None means the status's name.
    error: Any = None

    def __init__(self, message: str = "", *, status: int | None = None, error: Any = None):
        super().__init__(message)
        if status is not None:
            self.status = status
        if error is not None:
            self.error = error

    #: Extra response headers (e.g. ``Retry-After``).
    headers: dict[str, str] | None = None

    @property
    def message(self) -> str:
        """The human-readable reason (the exception's text)."""
        return str(self.args[0]) if self.args else ""

    def body(self) -> dict[str, Any]:
        """The JSON error body: ``{"message": ..., "error": ...}``."""
        error = self.error if self.error is not None else ERROR_NAMES.get(self.status, "Error")
        return {"message": self.message, "error": error}


class InvalidInput(DomainError):
    """400: the request's content is wrong; the message says which field and why."""

    status = 400


class InvalidRequestData(InvalidInput):
    """400 in Langfuse's validation shape: ``{"message": "Invalid request data", "error":
    <why>}`` (what Langfuse answers for a query or body that fails its schema)."""

    def body(self) -> dict[str, Any]:
        """``Invalid request data`` with the reason as ``error``."""
        return {"message": INVALID_REQUEST_DATA, "error": self.message}


class NotFound(DomainError):
    """404: the resource does not exist (for this caller)."""

    status = 404


class Conflict(DomainError):
    """409: the request clashes with the current state."""

    status = 409


class Unavailable(DomainError):
    """503: the server cannot take this now (e.g. it is shutting down); retry later."""

    status = 503


class RateLimited(DomainError):
    """429: the project is over a rate limit; ``Retry-After`` says when to come back."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}
