"""Which test left a background loop running: every :class:`~lanterna.timeutil.Ticker`
started during the run records the test that started it, and at the end of the run the
ones still alive are named (a ticker that outlives its database logs a failed tick on
every beat, long after the test that forgot to stop it)."""

from __future__ import annotations

import os
import weakref

from lanterna.timeutil import Ticker

_started: weakref.WeakKeyDictionary[Ticker, str] = weakref.WeakKeyDictionary()


def install() -> None:
    """Record the current test whenever a ticker starts."""
    real = Ticker.start
    if getattr(real, "_audited", False):
        return

    def start(self: Ticker) -> None:
        _started[self] = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]
        real(self)

    start._audited = True  # type: ignore[attr-defined]
    Ticker.start = start  # type: ignore[method-assign]


def still_running() -> list[str]:
    """``"<thread name> (started by <test id>)"`` for every ticker still alive."""
    return sorted(
        f"{t._thread.name} (started by {test})"
        for t, test in list(_started.items())
        if t._thread.is_alive()
    )
