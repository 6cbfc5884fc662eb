"""What the SDK records while user code runs, and how records become ingestion events.

The caller's thread only fills small ``__slots__`` objects (ids, clock readings,
captured values). Turning them into Langfuse ingestion events -- timestamps as text,
envelopes, masking -- happens later on the exporter's thread (:func:`to_events`).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Lanterna

# A private generator: user code that calls random.seed() must not make our ids repeat.
_rng = random.Random(os.urandom(32))
_bits = _rng.getrandbits


def _reseed() -> None:
    _rng.seed(os.urandom(32))


# A forked child would otherwise produce the same ids as its parent.
os.register_at_fork(after_in_child=_reseed)


def new_trace_id() -> str:
    """A 32-hex-digit trace id (the W3C/OpenTelemetry shape Langfuse also uses)."""
    # %-formatting: measurably faster than an f-string here.
    return "%032x" % _bits(128)  # noqa: UP031


def new_span_id() -> str:
    """A 16-hex-digit observation id."""
    return "%016x" % _bits(64)  # noqa: UP031


def trace_hex(raw: int | str) -> str:
    """A trace id as text: records made by ``@observe`` keep theirs as a 128-bit integer
    (formatted only when read, mostly on the exporter thread); given ids are text."""
    return raw if type(raw) is str else "%032x" % raw  # type: ignore[str-format]  # noqa: UP031


def span_hex(raw: int | str) -> str:
    """An observation id as text (see :func:`trace_hex`; 64-bit integers)."""
    return raw if type(raw) is str else "%016x" % raw  # type: ignore[str-format]  # noqa: UP031


_second_cache: tuple[int, str] = (-1, "")


def iso(ns: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` for a ``time.time_ns()`` reading."""
    global _second_cache
    micros = ns // 1000
    second, fraction = divmod(micros, 1_000_000)
    cached = _second_cache  # one tuple, so a reader on another thread sees a consistent pair
    if cached[0] != second:
        cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        _second_cache = cached
    return f"{cached[1]}.{fraction:06d}Z"


class Trace:
    """The trace one or more local observations belong to."""

    __slots__ = ("client", "closed", "fields", "root", "root_id", "root_kind", "sampled", "tid")

    def __init__(self, trace_id: int | str, client: Lanterna, sampled: bool) -> None:
        #: The id: a 128-bit integer (``@observe``; formatted when read, see :attr:`id`)
        #: or text (given by the caller).
        self.tid = trace_id
        self.client = client
        self.sampled = sampled
        #: The root observation while it runs, when this process started the trace.
        #: Dropped when it ends, so that records and traces form no reference cycle
        #: (they are then freed as soon as they are exported, without the cyclic GC).
        self.root: Observation | None = None
        #: The root observation's raw id (see :attr:`Observation.oid`).
        self.root_id: int | str | None = None
        self.root_kind = "span"
        #: Trace fields in wire names (name, userId, sessionId, metadata, tags, ...).
        self.fields: dict[str, Any] | None = None
        #: Set once the trace-create carrying ``fields`` has been handed to the exporter.
        self.closed = False

    @property
    def id(self) -> str:
        """The trace id as 32 hex digits (or the text it was given)."""
        return trace_hex(self.tid)


class Observation:
    """One span/generation/... while it runs and until it is exported (made by
    :func:`new_observation`)."""

    __slots__ = (
        "end",
        "extra",
        "input",
        "kind",
        "level",
        "metadata",
        "name",
        "oid",
        "output",
        "parent_id",
        "size",
        "start",
        "status",
        "top",
        "trace",
    )
    #: The id: a 64-bit integer, formatted when read (:attr:`id`), or given text.
    oid: int | str
    trace: Trace
    #: The parent's raw id (integer or text), or None.
    parent_id: int | str | None
    #: Event type prefix: span, generation, event, agent, tool, chain, retriever, ...
    kind: str
    name: str
    #: ``time.time_ns()`` at the start, and at the end (0 while it runs).
    start: int
    end: int
    input: Any
    output: Any
    metadata: dict[str, Any] | None
    level: str | None
    status: str | None
    #: Further wire fields (model, usageDetails, completionStartTime, ...).
    extra: dict[str, Any] | None
    #: The outermost local observation of its trace: it carries the trace's fields.
    top: bool
    #: Characters of large captured values, for the exporter's memory budget.
    size: int

    @property
    def id(self) -> str:
        """The observation id as 16 hex digits (or the text it was given)."""
        return span_hex(self.oid)

    @id.setter
    def id(self, value: str) -> None:
        self.oid = value

    def body(self) -> dict[str, Any]:
        """The observation's ingestion body (wire names)."""
        body: dict[str, Any] = {
            "id": span_hex(self.oid),
            "traceId": trace_hex(self.trace.tid),
            "name": self.name,
            "startTime": iso(self.start),
        }
        if self.end:
            body["endTime"] = iso(self.end)
        if self.parent_id is not None:
            body["parentObservationId"] = span_hex(self.parent_id)
        if self.input is not None:
            body["input"] = self.input
        if self.output is not None:
            body["output"] = self.output
        if self.metadata:
            body["metadata"] = self.metadata
        if self.level is not None:
            body["level"] = self.level
        if self.status is not None:
            body["statusMessage"] = self.status
        if self.extra:
            body.update(self.extra)
        return body

    def to_events(self, opts: EventOptions) -> list[dict[str, Any]]:
        """A finished observation as events: its ``<kind>-create`` and, when it is the top
        local observation, the trace-create with the trace's fields."""
        body = self.body()
        stamp = body.get("endTime") or body["startTime"]
        out = []
        trace = self.trace
        is_root = trace.root_id == self.oid
        if self.top and (is_root or trace.fields):
            tbody: dict[str, Any] = {"id": body["traceId"]}
            if is_root:
                tbody["timestamp"] = body["startTime"]
                tbody["name"] = self.name
                if self.input is not None:
                    tbody["input"] = self.input
                if self.output is not None:
                    tbody["output"] = self.output
            if trace.fields:
                tbody.update(trace.fields)
            out.append(opts.envelope("trace-create", tbody, stamp, trace=True))
        out.append(opts.envelope(f"{self.kind}-create", body, stamp))
        return out


_new_object = object.__new__
_now = time.time_ns


def new_observation(trace: Trace, parent_id: int | str | None, kind: str, name: str) -> Observation:
    """A new :class:`Observation` of ``trace``, started now (the class has no
    ``__init__``: a function storing the fields costs ~0.1 µs less than calling the
    class, on every observed call)."""
    obs: Observation = _new_object(Observation)
    obs.oid = _bits(64)
    obs.trace = trace
    obs.parent_id = parent_id
    obs.kind = kind
    obs.name = name
    obs.start = _now()
    obs.end = 0
    obs.input = obs.output = obs.metadata = obs.level = obs.status = obs.extra = None
    obs.top = False
    obs.size = 0
    return obs


#: A finished observation as the exporter queues it (:func:`freeze`): a plain tuple of
#: ids, clock readings, names and captured values, in this order.
FROZEN_FIELDS = (
    "tid",
    "oid",
    "parent_id",
    "kind",
    "name",
    "start",
    "end",
    "root",
    "input",
    "output",
    "metadata",
    "level",
    "status",
    "extra",
    "size",
)


def freeze(obs: Observation) -> tuple[Any, ...] | None:
    """``obs``, ended, as a tuple (:data:`FROZEN_FIELDS`); None when it carries trace
    fields (the top observation of a trace updated by ``update_current_trace``).

    Why: an ended record no longer changes (later updates are sent as events of their
    own), and a tuple of ids, numbers, strings and flat dicts is one object that the
    cyclic GC stops tracking at its first collection, where a queued
    :class:`Observation` and its :class:`Trace` are two objects it walks on every
    collection until the exporter takes them (and promotes, when the queue is long).
    ``root`` is True for the trace's root observation, which also writes the
    trace-create. :meth:`BatchExporter.submit` builds the same tuple inline.
    """
    trace = obs.trace
    top = obs.top
    if top and trace.fields:
        return None
    return (
        trace.tid,
        obs.oid,
        obs.parent_id,
        obs.kind,
        obs.name,
        obs.start,
        obs.end,
        top and trace.root_id == obs.oid,
        obs.input,
        obs.output,
        obs.metadata,
        obs.level,
        obs.status,
        obs.extra,
        obs.size,
    )


def thaw(rec: tuple[Any, ...]) -> Observation:
    """A frozen record (:func:`freeze`) as an :class:`Observation` again, for the
    reference encoding: the same events as the observation it was made from."""
    tid, oid, parent, kind, name, start, end, root, inp, out, meta, level, status, extra, size = rec
    trace = Trace(tid, None, True)  # type: ignore[arg-type]  # encoding reads no client
    if root:
        trace.root_id = oid
        trace.closed = True
    obs = new_observation(trace, parent, kind, name)
    obs.oid = oid
    obs.start = start
    obs.end = end
    obs.top = bool(root)
    obs.input = inp
    obs.output = out
    obs.metadata = meta
    obs.level = level
    obs.status = status
    obs.extra = extra
    obs.size = size
    return obs


class Envelope:
    """An event built by an explicit client call (client.trace(), span.end(), score())."""

    __slots__ = ("body", "stamp", "type")
    size = 0

    def __init__(self, event_type: str, body: dict[str, Any], ns: int | None = None) -> None:
        self.type = event_type
        self.body = body
        self.stamp = ns or time.time_ns()

    def to_events(self, opts: EventOptions) -> list[dict[str, Any]]:
        """This event in its envelope."""
        return [
            opts.envelope(self.type, self.body, iso(self.stamp), trace=self.type == "trace-create")
        ]


class EventOptions:
    """Settings applied while turning records into events (on the exporter thread)."""

    __slots__ = ("environment", "mask", "media", "release")

    def __init__(
        self,
        environment: str | None = None,
        release: str | None = None,
        mask: Callable[[Any], Any] | None = None,
        media: Callable[[Any, str | None, str | None, str], Any] | None = None,
    ) -> None:
        self.environment = environment
        self.release = release
        self.mask = mask
        #: Replaces base64 data URIs by uploaded media (``media.py``), or None.
        self.media = media

    def envelope(
        self, event_type: str, body: dict[str, Any], stamp: str, *, trace: bool = False
    ) -> dict[str, Any]:
        """Wrap ``body`` in an ingestion envelope, adding environment/release and masking."""
        if self.environment and event_type != "sdk-log":
            body.setdefault("environment", self.environment)
        if trace and self.release:
            body.setdefault("release", self.release)
        if self.mask is not None:
            self._mask(body)  # first: what the user hides is never uploaded
        if self.media is not None and event_type != "sdk-log":
            self._media(body, trace)
        return {"id": f"{_bits(128):032x}", "type": event_type, "timestamp": stamp, "body": body}

    def _media(self, body: dict[str, Any], trace: bool) -> None:
        assert self.media is not None
        trace_id = body.get("id") if trace else body.get("traceId")
        observation_id = None if trace else body.get("id")
        for key in ("input", "output", "metadata"):
            if body.get(key) is not None:
                body[key] = self.media(body[key], trace_id, observation_id, key)

    def _mask(self, body: dict[str, Any]) -> None:
        assert self.mask is not None
        for key in ("input", "output", "metadata"):
            if key in body:
                try:
                    body[key] = self.mask(body[key])
                except Exception as exc:
                    # Never send what the user asked to hide: replace it instead.
                    body[key] = f"<masking failed: {type(exc).__name__}>"
