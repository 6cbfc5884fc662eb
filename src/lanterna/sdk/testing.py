"""The test kit: record what your code traces, in memory, and assert on it.

In a test suite, enable the fixture with ``pytest_plugins = ["lanterna.sdk.testing"]``
in ``conftest.py``, then::

    def test_answer_is_traced(lanterna_capture):
        answer("why?")
        (root,) = lanterna_capture.observations(name="answer")
        assert root["output"] == "42"
        assert lanterna_capture.traces()[0]["userId"] == "u1"

The fixture makes a client whose events stay in memory (converted synchronously, so
they are there as soon as the observed call returns) the process-wide one, and fails the
test if the SDK swallowed an internal error while it ran.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from . import _errors
from .records import EventOptions


class InMemoryExporter:
    """An exporter that keeps ingestion events in a list instead of sending them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._options = EventOptions()
        self._lock = threading.Lock()

    def bind(self, options: EventOptions) -> None:
        """Use the client's environment/release/mask settings."""
        self._options = options

    def submit(self, item: Any) -> bool:
        """Convert ``item`` to events now and keep them."""
        try:
            events = item.to_events(self._options)
        except Exception as exc:
            _errors.report("testing.submit", exc)
            return False
        with self._lock:
            self.events.extend(events)
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Nothing to wait for."""
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        """Nothing to stop."""
        return True

    def stats(self) -> dict[str, int]:
        """``sent`` is the number of events recorded."""
        return {
            "sent": len(self.events),
            "failed": 0,
            "dropped": 0,
            "retried": 0,
            "batches": 0,
            "pending": 0,
            "queued": 0,
        }

    def clear(self) -> None:
        """Forget the recorded events."""
        with self._lock:
            self.events.clear()

    def bodies(self, *types: str) -> list[dict[str, Any]]:
        """Bodies of the recorded events of the given types (all when none given)."""
        with self._lock:
            return [e["body"] for e in self.events if not types or e["type"] in types]

    @staticmethod
    def _merge(entry: dict[str, Any], body: dict[str, Any]) -> None:
        for key, value in body.items():
            if key == "metadata" and isinstance(entry.get(key), dict):
                entry[key] = {**entry[key], **value}
            elif key == "tags" and key in entry:
                entry[key] = sorted(set(entry[key]) | set(value))
            else:
                entry[key] = value

    def _collect(self, want: Any, name: str | None) -> list[dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        with self._lock:
            events = list(self.events)
        for event in events:
            kind = want(event["type"])
            if kind is None:
                continue
            entry = merged.setdefault(event["body"]["id"], {})
            if kind is not True:
                entry.setdefault("type", kind)
            self._merge(entry, event["body"])
        return [b for b in merged.values() if name is None or b.get("name") == name]

    def traces(self, name: str | None = None) -> list[dict[str, Any]]:
        """Traces, one per id with later events merged in, in first-seen order."""
        return self._collect(lambda t: True if t == "trace-create" else None, name)

    def observations(
        self, name: str | None = None, type: str | None = None
    ) -> list[dict[str, Any]]:
        """Observations (merged per id), each with its ``type`` (SPAN, GENERATION, ...)."""

        def kind(event_type: str) -> str | None:
            if event_type in ("trace-create", "score-create", "sdk-log"):
                return None
            return event_type.rsplit("-", 1)[0].upper()

        found = self._collect(kind, name)
        return [o for o in found if type is None or o["type"] == type.upper()]

    def scores(self, name: str | None = None) -> list[dict[str, Any]]:
        """Scores."""
        return self._collect(lambda t: True if t == "score-create" else None, name)


try:
    import pytest
except ImportError:  # pragma: no cover - the fixture needs pytest; the exporter does not
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def lanterna_capture() -> Iterator[InMemoryExporter]:
        """The process-wide client records into an :class:`InMemoryExporter`."""
        from .client import Lanterna, set_client

        exporter = InMemoryExporter()
        client = Lanterna(exporter=exporter, public_key="pk-test", secret_key="sk-test")
        previous = set_client(client)
        _errors.recent.clear()
        try:
            yield exporter
        finally:
            set_client(previous)
            swallowed = list(_errors.recent)
            if swallowed:
                where, exc = swallowed[0]
                pytest.fail(f"the lanterna SDK swallowed an internal error in {where}: {exc!r}")
