"""The exceptions the SDK's explicit calls raise: one family, no third-party types.

Tracing (``@observe``, ``context``, the exporter) never raises into user code. The
explicit, blocking calls (``auth_check`` aside, which returns False) raise a
:class:`LanternaError`:

- :class:`LanternaAPIError`: the server answered with a status that is not 2xx
  (``status`` and the parsed ``body``);
- :class:`LanternaConnectionError`: no answer came (refused, reset, DNS, TLS); also a
  built-in ``ConnectionError``;
- :class:`LanternaTimeoutError`: no answer within the timeout; a
  ``LanternaConnectionError`` and a built-in ``TimeoutError``.

Prompt errors (``PromptError`` and its subclasses) are ``LanternaError`` too.
"""

from __future__ import annotations

from typing import Any


class LanternaError(Exception):
    """Base class of every exception the SDK raises on purpose."""


class LanternaAPIError(LanternaError):
    """The server answered, with a status that is not 2xx."""

    def __init__(self, status: int, body: Any = None, message: str | None = None) -> None:
        if message is None:
            detail = body.get("message") if isinstance(body, dict) else None
            message = f"HTTP {status}" + (f": {detail}" if isinstance(detail, str) else "")
        super().__init__(message)
        #: The HTTP status code.
        self.status = status
        #: The answer's body parsed as JSON (None when empty or not JSON).
        self.body = body


class LanternaConnectionError(LanternaError, ConnectionError):
    """The server could not be reached or closed the connection without an answer."""


class LanternaTimeoutError(LanternaConnectionError, TimeoutError):
    """No answer came within the timeout."""


class BudgetExceeded(LanternaError):
    """A ``budget_guard(..., enforce=True)`` found the budget spent: ``spent_usd`` has
    reached ``limit_usd``. Raised only where enforcement was asked for, before the guarded
    code runs."""

    def __init__(self, budget: str, spent_usd: float, limit_usd: float) -> None:
        super().__init__(
            f"Budget exceeded: {budget} has spent ${spent_usd:,.4f} of its ${limit_usd:,.4f} limit"
        )
        #: What the budget covers (``session s1``, ``user ada (month)``, ``budget <id>``).
        self.budget = budget
        self.spent_usd = spent_usd
        self.limit_usd = limit_usd
