"""Login rate limit: failed attempts per client address and per email, in a window.

Kept in memory: one server process sees every login it answers, which is what a
single-process deployment needs; replicas each apply the limit on their own.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class LoginLimiter:
    """At most ``attempts`` failures per ``window`` seconds for each key."""

    def __init__(self, attempts: int, window: float = 900.0) -> None:
        self.attempts = attempts
        self.window = window
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, at: float) -> deque[float]:
        hits = self._failures.setdefault(key, deque())
        while hits and hits[0] <= at - self.window:
            hits.popleft()
        return hits

    def retry_after(self, *keys: str) -> float:
        """Seconds until any of ``keys`` may try again (0 when none is blocked)."""
        at = time.monotonic()
        wait = 0.0
        with self._lock:
            for key in keys:
                hits = self._recent(key, at)
                if len(hits) >= self.attempts:
                    wait = max(wait, hits[0] + self.window - at)
        return wait

    def failed(self, *keys: str) -> None:
        """Record one failed attempt for each key."""
        at = time.monotonic()
        with self._lock:
            if len(self._failures) > 100_000:
                self._failures.clear()  # bounded memory under a spray of addresses
            for key in keys:
                self._recent(key, at).append(at)

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of ``keys`` after a successful login."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
