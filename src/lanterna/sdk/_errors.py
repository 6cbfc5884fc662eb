"""Internal errors of the SDK: logged and recorded, never raised into user code.

The SDK catches its own failures so that tracing can never break the traced app. A
caught failure must not vanish either: it is logged (once per place and type, so a
broken exporter cannot flood the log) and kept in :data:`recent`, which the test kit
and our own test suite check so that a swallowed bug fails the test that caused it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

logger = logging.getLogger("lanterna")

#: The latest internal errors as ``(where, exception)``; bounded so it cannot leak.
recent: deque[tuple[str, BaseException]] = deque(maxlen=100)

#: Called with ``(where, exception)`` for every internal error (the test kit uses it).
hooks: list[Callable[[str, BaseException], None]] = []

_logged: set[tuple[str, type]] = set()


def report(where: str, exc: BaseException) -> None:
    """Record an exception the SDK caught in ``where``; never raises."""
    try:
        recent.append((where, exc))
        key = (where, type(exc))
        if key not in _logged:
            _logged.add(key)
            logger.warning(
                "lanterna: internal error in %s (tracing continues): %r", where, exc, exc_info=exc
            )
        for hook in list(hooks):
            hook(where, exc)
    except Exception:  # pragma: no cover - a failing hook or handler must not escape
        pass
