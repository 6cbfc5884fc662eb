"""A/B tests in the SDK: assign a unit to a variant locally and record it on the trace.

``assign(name, unit_id)`` fetches the test's definition once
(``GET /api/public/ab-tests/{name}``) and then assigns with no request: the variant
comes from :func:`lanterna.abtests.assign.variant_for`, the same code the server runs,
so a unit sees the same variant in every process and after restarts. Definitions are
cached per client under the prompt cache's rules: fresh for the TTL (default 60 s,
``LANTERNA_PROMPT_CACHE_TTL_SECONDS``), then served while one background thread per
test refreshes them (stale-while-revalidate); a failed refresh keeps serving the entry.

Inside an observed call the assignment is recorded on the current trace: metadata
``experiment`` (the test's name) and ``variant``, and the tag
``ab-test:<name>:<variant>``; the server's readout groups traces by that metadata. Only
a running test's assignments are recorded (a draft or stopped test gives the control,
a concluded one its winner, both unrecorded).
"""

from __future__ import annotations

import os
import threading
import urllib.parse
import weakref
from typing import Any

from ..abtests.assign import variant_for
from . import _errors, _state
from .errors import LanternaConnectionError, LanternaError
from .fields import TRACE_FIELDS, to_wire
from .handles import apply_trace
from .prompts import _env_ttl
from .transport import SYSTEM_CLOCK, Clock, Transport

_PATH = "/api/public/ab-tests"
#: How long a failed refresh waits before the next (at most the TTL).
RETRY_SECONDS = 5.0


class AbTestError(LanternaError):
    """An A/B test could not be fetched: ``status`` is the HTTP status (None when the
    server could not be reached)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AbTestManager:
    """One client's A/B test definitions: cache, fetch, assignment. ``clock`` times the
    cache (tests pass one they control)."""

    def __init__(
        self, transport: Transport, *, fetch_timeout: float = 5.0, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.transport = transport
        self.clock = clock
        self.ttl = _env_ttl()
        self.fetch_timeout = fetch_timeout
        self._tests: dict[str, tuple[dict[str, Any], float]] = {}
        self._fresh_state()
        _managers.add(self)

    def _fresh_state(self) -> None:
        self._lock = threading.Lock()
        self._busy: set[str] = set()

    def definition(self, name: str) -> dict[str, Any]:
        """The test as the API shows it: cached, refreshed in the background when stale,
        fetched when missing (raises :class:`AbTestError` then)."""
        if not name:
            raise ValueError("an A/B test name is required")
        with self._lock:
            cached = self._tests.get(name)
            stale = cached is not None and cached[1] <= self.clock.monotonic()
            refresh = stale and name not in self._busy
            if refresh:
                self._busy.add(name)
        if cached is None:
            test = self._fetch(name)
            self._keep(name, test)
            return test
        if refresh:
            threading.Thread(
                target=self._refresh, args=(name,), name="lanterna-ab-test-refresh", daemon=True
            ).start()
        return cached[0]

    def assign(self, name: str, unit_id: str, *, record: bool = True) -> tuple[str, dict[str, Any]]:
        """The unit's variant and the variant's entry (name, weight, promptVersion,
        promptLabel); recorded on the current trace when the test is running."""
        if unit_id is None or str(unit_id) == "":
            raise ValueError("a unit id (user or session id) is required")
        test = self.definition(name)
        variant = variant_for(test, str(unit_id))
        entry = next(v for v in test["variants"] if v["name"] == variant)
        if record and test["state"] == "running":
            record_on_trace(name, variant)
        return variant, entry

    def _keep(self, name: str, test: dict[str, Any]) -> None:
        with self._lock:
            self._tests[name] = (test, self.clock.monotonic() + self.ttl)

    def _refresh(self, name: str) -> None:
        try:
            self._keep(name, self._fetch(name))
        except AbTestError as exc:
            with self._lock:
                if name in self._tests:
                    test, _ = self._tests[name]
                    pause = min(self.ttl, RETRY_SECONDS)
                    self._tests[name] = (test, self.clock.monotonic() + pause)
            _errors.logger.warning("lanterna: A/B test %r: %s; serving the cached one", name, exc)
        except Exception as exc:
            _errors.report("ab_tests.refresh", exc)
        finally:
            with self._lock:
                self._busy.discard(name)

    def _fetch(self, name: str) -> dict[str, Any]:
        path = f"{_PATH}/{urllib.parse.quote(name, safe='')}"
        try:
            reply = self.transport.request(
                "GET", path, timeout=self.fetch_timeout, retries=2, clock=self.clock
            )
        except LanternaConnectionError as exc:
            raise AbTestError(f"server unreachable ({exc})") from exc
        data = reply.data()
        if reply.status_code != 200 or not isinstance(data, dict):
            message = data.get("message") if isinstance(data, dict) else None
            raise AbTestError(
                f"HTTP {reply.status_code}: {message or 'no such A/B test'}", reply.status_code
            )
        return data

    def clear(self) -> None:
        """Forget every cached definition."""
        with self._lock:
            self._tests.clear()


def record_on_trace(name: str, variant: str) -> bool:
    """Put metadata ``experiment``/``variant`` and the tag ``ab-test:<name>:<variant>`` on
    the current trace; False outside an observed call."""
    obs = _state.CURRENT.get()
    if obs is None:
        return False
    try:
        fields = {
            "metadata": {"experiment": name, "variant": variant},
            "tags": [f"ab-test:{name}:{variant}"],
        }
        apply_trace(obs.trace, to_wire(fields, TRACE_FIELDS, obs.trace.client.max_field_size))
    except Exception as exc:
        _errors.report("ab_tests.record", exc)
        return False
    return True


# A forked child gets a fresh lock and no refreshes believed in flight.
_managers: weakref.WeakSet[AbTestManager] = weakref.WeakSet()


def _after_fork() -> None:
    for manager in list(_managers):
        manager._fresh_state()


os.register_at_fork(after_in_child=_after_fork)
