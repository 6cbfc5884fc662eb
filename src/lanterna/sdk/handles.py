"""Changing traces and observations after they started, and the handles users hold.

``apply_*`` change a live record in place while it runs; once it has been handed to the
exporter, a change is sent as an upsert event of its own (the server merges by id), so
an update is never lost and never races with the exporter thread.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from . import _errors
from .fields import OBSERVATION_FIELDS, TRACE_FIELDS, to_wire
from .records import Envelope, Observation, Trace, new_trace_id, span_hex

if TYPE_CHECKING:
    from .client import Lanterna

_RECORD_ATTRS = {
    "name": "name",
    "input": "input",
    "output": "output",
    "level": "level",
    "statusMessage": "status",
}


def apply_observation(obs: Observation, wire: dict[str, Any]) -> None:
    """Apply wire fields to ``obs`` (or send them, when ``obs`` has already ended)."""
    trace = obs.trace
    if not trace.sampled or not wire:
        return
    if obs.end:
        body = {"id": obs.id, "traceId": trace.id, **wire}
        trace.client.submit(Envelope(f"{obs.kind}-create", body))
        return
    for key, value in wire.items():
        attr = _RECORD_ATTRS.get(key)
        if attr is not None:
            setattr(obs, attr, value)
        elif key == "metadata":
            obs.metadata = {**obs.metadata, **value} if obs.metadata else value
        else:
            if obs.extra is None:
                obs.extra = {}
            obs.extra[key] = value


def apply_trace(trace: Trace, wire: dict[str, Any]) -> None:
    """Apply trace fields; ``level``/``statusMessage`` go to the trace's root observation."""
    if not trace.sampled:
        return
    level = wire.pop("level", None)
    status = wire.pop("statusMessage", None)
    if level is not None or status is not None:
        root_fields = {k: v for k, v in (("level", level), ("statusMessage", status)) if v}
        if trace.root is not None:
            apply_observation(trace.root, root_fields)
        elif trace.root_id is not None:  # the root has ended: send the change on its own
            body = {"id": span_hex(trace.root_id), "traceId": trace.id, **root_fields}
            trace.client.submit(Envelope(f"{trace.root_kind}-create", body))
        else:
            _errors.logger.warning(
                "lanterna: level/status_message for trace %s not applied: its root observation"
                " was started in another process or thread",
                trace.id,
            )
    if not wire:
        return
    if trace.closed:
        trace.client.submit(Envelope("trace-create", {"id": trace.id, **wire}))
        return
    if trace.fields is None:
        trace.fields = {}
    fields = trace.fields
    for key, value in wire.items():
        if key == "metadata" and isinstance(fields.get(key), dict):
            fields[key] = {**fields[key], **value}
        elif key == "tags" and key in fields:
            fields[key] = sorted(set(fields[key]) | set(value))
        else:
            fields[key] = value


def score_body(
    client: Lanterna,
    *,
    name: str,
    value: float | str | bool,
    trace_id: str | None = None,
    observation_id: str | None = None,
    session_id: str | None = None,
    id: str | None = None,
    comment: str | None = None,
    data_type: str | None = None,
    config_id: str | None = None,
    metadata: Any = None,
) -> dict[str, Any]:
    """A ``score-create`` body (wire names)."""
    body: dict[str, Any] = {"id": id or new_trace_id(), "name": name, "value": value}
    for key, val in (
        ("traceId", trace_id),
        ("observationId", observation_id),
        ("sessionId", session_id),
        ("comment", comment),
        ("dataType", data_type),
        ("configId", config_id),
    ):
        if val is not None:
            body[key] = val
    if metadata is not None:
        body["metadata"] = to_wire(
            {"metadata": metadata}, OBSERVATION_FIELDS, client.max_field_size
        )["metadata"]
    return body


class ObservationHandle:
    """The observation of a ``with observe(...)`` block (inert when tracing is off)."""

    __slots__ = ("_obs",)

    def __init__(self, obs: Observation | None) -> None:
        self._obs = obs

    @property
    def id(self) -> str | None:
        """The observation id (None when tracing is off)."""
        return self._obs.id if self._obs is not None else None

    @property
    def trace_id(self) -> str | None:
        """The id of the trace this observation belongs to."""
        return self._obs.trace.id if self._obs is not None else None

    def update(self, **fields: Any) -> None:
        """Set observation fields: the keywords of ``context.update_current_observation``."""
        if self._obs is None:
            return
        wire = to_wire(fields, OBSERVATION_FIELDS, self._obs.trace.client.max_field_size)
        try:
            apply_observation(self._obs, wire)
        except Exception as exc:
            _errors.report("span.update", exc)

    def update_trace(self, **fields: Any) -> None:
        """Set trace fields: the keywords of ``context.update_current_trace``."""
        if self._obs is None:
            return
        wire = to_wire(
            fields,
            {**TRACE_FIELDS, "level": "level", "status_message": "statusMessage"},
            self._obs.trace.client.max_field_size,
        )
        try:
            apply_trace(self._obs.trace, wire)
        except Exception as exc:
            _errors.report("span.update_trace", exc)

    def score(self, *, name: str, value: float | str | bool, **kwargs: Any) -> None:
        """Score this observation (``comment``, ``data_type``, ``config_id``, ``metadata``)."""
        obs = self._obs
        if obs is None or not obs.trace.sampled:
            return
        client = obs.trace.client
        client.submit(
            Envelope(
                "score-create",
                score_body(
                    client,
                    name=name,
                    value=value,
                    trace_id=obs.trace.id,
                    observation_id=obs.id,
                    **kwargs,
                ),
            )
        )

    def score_trace(self, *, name: str, value: float | str | bool, **kwargs: Any) -> None:
        """Score this observation's trace."""
        obs = self._obs
        if obs is None or not obs.trace.sampled:
            return
        client = obs.trace.client
        client.submit(
            Envelope(
                "score-create",
                score_body(client, name=name, value=value, trace_id=obs.trace.id, **kwargs),
            )
        )


# --- handles of the explicit client API (langfuse 2.x style) ---------------------------


class StatefulClient:
    """A trace or observation created through the client: add children, score it."""

    def __init__(
        self, client: Lanterna, trace_id: str, observation_id: str | None, kind: str
    ) -> None:
        self._client = client
        self.trace_id = trace_id
        self.observation_id = observation_id
        self._kind = kind

    @property
    def id(self) -> str:
        """This trace's or observation's id."""
        return self.observation_id or self.trace_id

    def span(self, **fields: Any) -> StatefulObservation:
        """A child span (keywords as ``Lanterna.span``)."""
        return self._client.span(
            trace_id=self.trace_id, parent_observation_id=self.observation_id, **fields
        )

    def generation(self, **fields: Any) -> StatefulObservation:
        """A child generation (keywords as ``Lanterna.generation``)."""
        return self._client.generation(
            trace_id=self.trace_id, parent_observation_id=self.observation_id, **fields
        )

    def event(self, **fields: Any) -> StatefulObservation:
        """A child event (keywords as ``Lanterna.event``)."""
        return self._client.event(
            trace_id=self.trace_id, parent_observation_id=self.observation_id, **fields
        )

    def score(self, *, name: str, value: float | str | bool, **kwargs: Any) -> None:
        """Score this trace or observation."""
        self._client.score(
            name=name,
            value=value,
            trace_id=self.trace_id,
            observation_id=self.observation_id,
            **kwargs,
        )


class StatefulTrace(StatefulClient):
    """A trace created with ``client.trace(...)``."""

    def update(self, **fields: Any) -> StatefulTrace:
        """Change trace fields (keywords as ``Lanterna.trace``)."""
        self._client.send_event(
            "trace-create", {"id": self.trace_id, **self._client.trace_wire(fields)}
        )
        return self


class StatefulObservation(StatefulClient):
    """A span, generation or event created through the client."""

    def update(self, **fields: Any) -> StatefulObservation:
        """Change fields (keywords as the method that created it)."""
        wire = self._client.observation_wire(fields)
        body = {"id": self.observation_id, "traceId": self.trace_id, **wire}
        event_type = (
            f"{self._kind}-update"
            if self._kind in ("span", "generation")
            else (f"{self._kind}-create")
        )
        self._client.send_event(event_type, body)
        return self

    def end(self, **fields: Any) -> StatefulObservation:
        """Set the end time (now unless ``end_time`` is given) and any other fields."""
        fields.setdefault("end_time", None)
        if fields["end_time"] is None:
            fields["end_time"] = _now()
        return self.update(**fields)


def _now() -> Any:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(time.time(), _dt.timezone.utc)
