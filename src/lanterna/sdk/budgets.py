"""``budget_guard``: check a spend limit before running code, as a context manager or a
decorator (sync or async).

The guard looks up the spend (a session's or a user's cost with ``limit_usd``, or a
server-side budget by ``budget_id``) when it is entered or the decorated function is
called. With ``enforce=True`` a spent budget raises :class:`BudgetExceeded` before the
guarded code runs; without it the guard only logs a warning, and the code always runs.
A look-up that fails (server unreachable, unknown budget) never raises: the guard lets
the code run ("fails open") and says so in its result and in a warning.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from . import _errors
from .errors import BudgetExceeded, LanternaError

if TYPE_CHECKING:
    from collections.abc import Callable

    from .client import Lanterna

F = TypeVar("F", bound="Callable[..., Any]")


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """What a guard found: ``spent_usd`` and ``limit_usd`` (None when the look-up
    failed), and whether the budget is spent (``exceeded``)."""

    budget: str
    spent_usd: float | None
    limit_usd: float | None

    @property
    def known(self) -> bool:
        """The spend could be looked up."""
        return self.spent_usd is not None and self.limit_usd is not None

    @property
    def exceeded(self) -> bool:
        """The spend has reached the limit (False when unknown)."""
        return self.known and self.spent_usd >= self.limit_usd  # type: ignore[operator]

    @property
    def remaining_usd(self) -> float | None:
        """What is left of the limit (0 once spent; None when unknown)."""
        if not self.known:
            return None
        return max(self.limit_usd - self.spent_usd, 0.0)  # type: ignore[operator]


class budget_guard:  # a class used like a function: ``with budget_guard(...)``
    """Check a budget before running code.

    Give either ``limit_usd`` (USD) with ``session_id`` (the session's total cost) or
    ``user_id`` (the user's cost in ``period``: ``day``, ``week``, ``month`` or
    ``total``, UTC calendar periods), or ``budget_id`` (a budget created on the server;
    its limit and period are the server's). ``enforce=True`` raises
    :class:`BudgetExceeded` when the budget is spent; otherwise the guard only warns.
    ``client`` defaults to the process-wide one; ``max_age`` is the cost look-up's cache
    age (see ``Lanterna.get_session_cost``).

    ``with budget_guard(...) as check:`` gives a :class:`BudgetCheck`; as a decorator,
    every call checks first. A wrong combination of arguments raises ValueError at once.
    """

    def __init__(
        self,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        period: str = "total",
        limit_usd: float | None = None,
        budget_id: str | None = None,
        enforce: bool = False,
        client: Lanterna | None = None,
        max_age: float | None = None,
    ) -> None:
        if budget_id is not None:
            if session_id is not None or user_id is not None or limit_usd is not None:
                raise ValueError("budget_guard: give budget_id alone, or limit_usd with a subject")
        elif limit_usd is None or (session_id is None) == (user_id is None):
            raise ValueError(
                "budget_guard: give limit_usd with exactly one of session_id and user_id,"
                " or budget_id"
            )
        self.session_id = session_id
        self.user_id = user_id
        self.period = period
        self.limit_usd = limit_usd
        self.budget_id = budget_id
        self.enforce = enforce
        self.max_age = max_age
        self._client = client

    def _describe(self) -> str:
        if self.budget_id is not None:
            return f"budget {self.budget_id}"
        if self.session_id is not None:
            return f"session {self.session_id}"
        return f"user {self.user_id} ({self.period})"

    def check(self) -> BudgetCheck:
        """Look up the spend now (never raises; see :class:`BudgetCheck`)."""
        from .client import get_client

        client = self._client or get_client()
        what = self._describe()
        if self.budget_id is not None:
            try:
                status = client.get_budget_status(self.budget_id)
                return BudgetCheck(what, float(status["spentUsd"]), float(status["limitUsd"]))
            except (LanternaError, KeyError, TypeError, ValueError) as exc:
                _errors.logger.warning("lanterna: budget_guard: %s look-up failed: %s", what, exc)
                return BudgetCheck(what, None, None)
        if self.session_id is not None:
            spent = client.get_session_cost(self.session_id, max_age=self.max_age)
        else:
            assert self.user_id is not None
            spent = client.get_user_cost(self.user_id, self.period, max_age=self.max_age)
        return BudgetCheck(what, spent, self.limit_usd)

    def _decide(self, check: BudgetCheck) -> BudgetCheck:
        if not check.known:
            _errors.logger.warning(
                "lanterna: budget_guard: spend of %s unknown; running anyway", check.budget
            )
        elif check.exceeded:
            assert check.spent_usd is not None and check.limit_usd is not None
            if self.enforce:
                raise BudgetExceeded(check.budget, check.spent_usd, check.limit_usd)
            _errors.logger.warning(
                "lanterna: budget_guard: %s has spent %.4f of %.4f USD (not enforced)",
                check.budget,
                check.spent_usd,
                check.limit_usd,
            )
        return check

    def __enter__(self) -> BudgetCheck:
        return self._decide(self.check())

    def __exit__(self, *exc: object) -> None:
        return None

    async def __aenter__(self) -> BudgetCheck:
        return self._decide(await asyncio.to_thread(self.check))

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __call__(self, fn: F) -> F:
        """Decorate ``fn`` (sync or async): each call is checked first."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def checked_async(*args: Any, **kwargs: Any) -> Any:
                async with self:
                    return await fn(*args, **kwargs)

            return checked_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def checked(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return checked  # type: ignore[return-value]
