"""Cost look-ups for code that runs inside an app: a session's and a user's spend, read
from the server, cached briefly, and never raising into user code.

:class:`CostReader` answers ``Lanterna.get_session_cost`` and ``get_user_cost``. Each
answer is kept for ``max_age`` seconds (default :data:`DEFAULT_MAX_AGE`) on the client's
clock, so an agent loop that asks before every model call makes one request per few
seconds, not one per call. When the server cannot be reached, answers with an error
or with something that is not a cost, the call logs a warning and returns ``None``.

Periods are UTC calendar periods, as budgets count them: ``day`` (from 00:00 UTC today),
``week`` (from Monday 00:00 UTC), ``month`` (from the 1st, 00:00 UTC), ``total``.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import _errors
from .errors import LanternaAPIError, LanternaError
from .fields import timestamp

if TYPE_CHECKING:
    from .client import Lanterna
    from .transport import Clock

#: Seconds a cost answer is reused (``max_age=`` per call; 0 asks the server every time).
DEFAULT_MAX_AGE = 5.0
PERIODS = ("day", "week", "month", "total")


def period_start(period: str, now: _dt.datetime) -> _dt.datetime | None:
    """The start of the UTC calendar ``period`` containing ``now`` (None for ``total``);
    ValueError for another period."""
    day = now.astimezone(_dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - _dt.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "total":
        return None
    raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")


class CostReader:
    """A client's cost look-ups and their cache (one per client)."""

    def __init__(self, client: Lanterna, clock: Clock) -> None:
        self._client = client
        self._clock = clock
        self._cache: dict[tuple[str, ...], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every cached answer."""
        with self._lock:
            self._cache.clear()

    def _cached(
        self, key: tuple[str, ...], max_age: float | None, fetch: Callable[[], float]
    ) -> float | None:
        age = DEFAULT_MAX_AGE if max_age is None else max_age
        at = self._clock.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and age > 0 and at - hit[1] < age:
            return hit[0]
        try:
            value = fetch()
        except LanternaError as exc:
            _errors.logger.warning("lanterna: %s look-up failed: %s", key[0], exc)
            return None
        except Exception as exc:  # a bug of ours must not reach the app either
            _errors.report(f"client.get_{key[0]}", exc)
            return None
        with self._lock:
            self._cache[key] = (value, at)
        return value

    def session_cost(self, session_id: str, max_age: float | None = None) -> float | None:
        """The cost (USD) of all of a session's traces; 0.0 for an unknown session."""

        def fetch() -> float:
            try:
                body = self._get(f"/api/public/sessions/{quote(session_id, safe='')}")
            except LanternaAPIError as exc:
                if exc.status == 404:
                    return 0.0  # no trace carries this session id (yet): nothing spent
                raise
            if isinstance(body, dict) and isinstance(body.get("totalCost"), (int, float)):
                return float(body["totalCost"])
            return self._sum_pages("/api/public/traces", {"sessionId": session_id})

        return self._cached(("session_cost", session_id), max_age, fetch)

    def user_cost(
        self,
        user_id: str,
        period: str = "total",
        since: _dt.datetime | None = None,
        max_age: float | None = None,
    ) -> float | None:
        """The cost (USD) of a user's traces in the current UTC ``period`` (or from
        ``since``, which wins); None (and a warning) for an unknown period too."""
        try:
            start = period_start(period, _dt.datetime.now(_dt.timezone.utc))
        except ValueError as exc:
            _errors.logger.warning("lanterna: get_user_cost: %s", exc)
            return None
        if since is not None:
            start = since
        params: dict[str, Any] = {"userId": user_id}
        if start is not None:
            params["fromTimestamp"] = timestamp(start)
        key = ("user_cost", user_id, params.get("fromTimestamp", ""))
        return self._cached(
            key, max_age, lambda: self._sum_pages("/api/public/metrics/daily", params)
        )

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._client._get(path, params, clock=self._clock)

    def _sum_pages(self, path: str, params: dict[str, Any]) -> float:
        total = 0.0
        page = 1
        while True:
            body = self._get(path, {**params, "page": page, "limit": 100})
            if not isinstance(body, dict):
                raise LanternaAPIError(200, body, f"unexpected answer from {path}")
            for row in body.get("data") or []:
                value = row.get("totalCost") if isinstance(row, dict) else None
                if isinstance(value, (int, float)):
                    total += value
            if page >= int((body.get("meta") or {}).get("totalPages") or 1):
                return total
            page += 1
