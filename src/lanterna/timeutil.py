"""Timestamps: parse the ISO-8601 strings clients send, format what we store and return.

Everything is stored in UTC with microsecond precision. On SQLite a timestamp is the
fixed-width text ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (so text order is time order); on
PostgreSQL it is ``timestamptz``. :class:`Ticker` paces background jobs.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

UTC = timezone.utc
_FRACTION = re.compile(r"(\.\d{6})\d+")
#: Accepted timestamps fall before this instant (exclusive). Year 9999 is refused so that
#: every later computation (the next hour, day, week or month bucket, retention windows,
#: rollups, zone shifts of a dashboard) stays inside ``datetime``'s range.
MAX_TS = datetime(9999, 1, 1, tzinfo=UTC)
_MAX_TS_TEXT = "9999-01-01T00:00:00Z"


class NaiveTimestampError(ValueError):
    """A timestamp without a UTC offset: we refuse to guess its zone."""


def parse_ts(value: object, *, bounded: bool = True) -> datetime:
    """Parse an ISO-8601 timestamp that carries an offset (``Z`` or ``+hh:mm``).

    Raises ``ValueError`` (``NaiveTimestampError`` for a missing offset) on bad input,
    and, unless ``bounded`` is false (times read back from storage), for a time at or
    after :data:`MAX_TS`.
    """
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 string, got {type(value).__name__}")
    try:  # the common case, e.g. ``...:07.123456Z`` (Python 3.11+ reads the Z): ~5x faster
        fast = datetime.fromisoformat(value)
    except ValueError:
        pass
    else:
        if fast.tzinfo is UTC:
            return fast if fast < MAX_TS or not bounded else check_ts(fast, value)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        # More than six fractional digits (nanoseconds) are cut to microseconds.
        dt = datetime.fromisoformat(_FRACTION.sub(r"\1", text))
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise NaiveTimestampError(f"timestamp {value!r} has no UTC offset (add Z or +hh:mm)")
    try:
        dt = dt.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+05:00 falls before year 1 in UTC
        raise ValueError(f"timestamp {value!r} is out of range") from None
    return check_ts(dt, value) if bounded else dt


def check_ts(dt: datetime, value: object = None) -> datetime:
    """``dt`` when it falls before :data:`MAX_TS`; ``ValueError`` naming the limit if not."""
    if dt < MAX_TS:
        return dt
    shown = format_ts(dt) if value is None else value
    raise ValueError(f"timestamp {shown!r} is out of range: must be before {_MAX_TS_TEXT}")


def format_ts(dt: datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC."""
    if dt.tzinfo is not UTC:
        dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    # isoformat is twice as fast as strftime (a hot path) and pads years below 1000.
    return dt.isoformat(timespec="microseconds")[:-6] + "Z"


def now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    """``end - start`` in seconds, or None when either is missing."""
    if start is None or end is None:
        return None
    return (end - start) / timedelta(seconds=1)


class Ticker:
    """Calls ``tick()`` every ``interval`` seconds in a daemon thread named ``name`` until
    :meth:`stop` (which wakes it at once); a failing tick is logged as ``failure`` on
    ``log`` and the next one runs as planned. Background jobs (the alert evaluator, the
    retention job) take their time from an injected clock; only the pace is real."""

    def __init__(
        self,
        tick: Callable[[], object],
        interval: float,
        *,
        name: str,
        log: logging.Logger,
        failure: str,
    ) -> None:
        self.tick = tick
        self.interval = interval
        self._log = log
        self._failure = failure
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start ticking."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the tick in progress."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_forever(self) -> None:
        """Tick in the calling thread until :meth:`stop` is called from another."""
        self._run()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                self._log.exception(self._failure)
            self._stop.wait(self.interval)
