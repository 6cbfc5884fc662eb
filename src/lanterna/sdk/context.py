"""The ``context`` object: read and change the current trace and observation.

Drop-in for langfuse 2.x's ``langfuse_context`` (``from lanterna import context as
langfuse_context``). Outside any observed call every method is a no-op that logs once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _errors
from .capture import capture
from .fields import OBSERVATION_FIELDS, TRACE_FIELDS, to_wire
from .handles import apply_observation, apply_trace, score_body
from .observe import CURRENT, observe
from .records import Envelope, Observation

_get_current = CURRENT.get

_TRACE_UPDATE = {**TRACE_FIELDS, "level": "level", "status_message": "statusMessage"}
_warned: set[str] = set()


def _generation_fields(
    obs: Observation,
    model: str | None,
    model_parameters: Any,
    usage_details: Any,
    cost_details: Any,
) -> None:
    """``model``, ``modelParameters``, ``usageDetails`` and ``costDetails`` (the given
    ones, captured as :func:`~lanterna.sdk.fields.to_wire` does) into ``obs.extra``."""
    if (
        model is None
        and model_parameters is None
        and usage_details is None
        and cost_details is None
    ):
        return
    extra = obs.extra
    if extra is None:
        extra = obs.extra = {}
    limit = obs.trace.client.max_field_size
    if model is not None:
        extra["model"] = model
    if model_parameters is not None:
        extra["modelParameters"] = capture(model_parameters, limit)
    if usage_details is not None:
        extra["usageDetails"] = capture(usage_details, limit)
    if cost_details is not None:
        extra["costDetails"] = capture(cost_details, limit)


def _current(what: str) -> Observation | None:
    obs = CURRENT.get()
    if obs is None and what not in _warned:
        _warned.add(what)
        _errors.logger.warning("lanterna: %s called outside an observed function; ignored", what)
    return obs


class Context:
    """Functions on the innermost observed call (see :data:`context`)."""

    observe = staticmethod(observe)

    def update_current_trace(
        self,
        *,
        name: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        version: str | None = None,
        release: str | None = None,
        input: Any = None,
        output: Any = None,
        metadata: Any = None,
        tags: Sequence[str] | None = None,
        public: bool | None = None,
        level: str | None = None,
        status_message: str | None = None,
    ) -> None:
        """Set fields of the current trace. ``metadata`` merges with earlier metadata,
        ``tags`` add to earlier tags; ``level`` and ``status_message`` apply to the
        trace's root observation (so ``level="ERROR"`` marks the trace as failed)."""
        obs = _current("update_current_trace")
        if obs is None:
            return
        fields = {
            "name": name,
            "user_id": user_id,
            "session_id": session_id,
            "version": version,
            "release": release,
            "input": input,
            "output": output,
            "metadata": metadata,
            "tags": tags,
            "public": public,
            "level": level,
            "status_message": status_message,
        }
        wire = to_wire(fields, _TRACE_UPDATE, obs.trace.client.max_field_size)
        try:
            apply_trace(obs.trace, wire)
        except Exception as exc:
            _errors.report("context.update_current_trace", exc)

    def update_current_observation(
        self,
        *,
        name: str | None = None,
        input: Any = None,
        output: Any = None,
        metadata: Any = None,
        level: str | None = None,
        status_message: str | None = None,
        version: str | None = None,
        start_time: Any = None,
        end_time: Any = None,
        completion_start_time: Any = None,
        model: str | None = None,
        model_parameters: dict[str, Any] | None = None,
        usage: Any = None,
        usage_details: dict[str, int] | None = None,
        cost_details: dict[str, float] | None = None,
        prompt: Any = None,
    ) -> None:
        """Set fields of the current observation. An ``output`` set here wins over the
        function's return value; ``metadata`` merges; generation fields (model, usage,
        costs, prompt link, completion start time) apply to any observation type."""
        obs = _get_current()
        if obs is None:
            _current("update_current_observation")
            return
        if (
            name is None
            and input is None
            and output is None
            and metadata is None
            and level is None
            and status_message is None
            and version is None
            and start_time is None
            and end_time is None
            and completion_start_time is None
            and usage is None
            and prompt is None
            and not obs.end
            and obs.trace.sampled
        ):
            # The update every LLM call makes (model, parameters, usage, costs) on a
            # running observation: straight onto the record, as to_wire and
            # apply_observation would put it (same keys, same order), at a third of the
            # cost (_generation_fields, inlined: this runs on every LLM call).
            if model is None and usage_details is None:
                _generation_fields(obs, model, model_parameters, usage_details, cost_details)
                return
            extra = obs.extra
            if extra is None:
                extra = obs.extra = {}
            if model is not None:
                extra["model"] = model
            if model_parameters is not None:
                extra["modelParameters"] = capture(
                    model_parameters, obs.trace.client.max_field_size
                )
            if usage_details is not None:
                extra["usageDetails"] = capture(usage_details, obs.trace.client.max_field_size)
            if cost_details is not None:
                extra["costDetails"] = capture(cost_details, obs.trace.client.max_field_size)
            return
        # Only what was given, in the signature's order; plain tests of each keyword are
        # the cheapest way in CPython (this runs on every update, usually with 2-3 of 16).
        fields: dict[str, Any] = {}
        if name is not None:
            fields["name"] = name
        if input is not None:
            fields["input"] = input
        if output is not None:
            fields["output"] = output
        if metadata is not None:
            fields["metadata"] = metadata
        if level is not None:
            fields["level"] = level
        if status_message is not None:
            fields["status_message"] = status_message
        if version is not None:
            fields["version"] = version
        if start_time is not None:
            fields["start_time"] = start_time
        if end_time is not None:
            fields["end_time"] = end_time
        if completion_start_time is not None:
            fields["completion_start_time"] = completion_start_time
        if model is not None:
            fields["model"] = model
        if model_parameters is not None:
            fields["model_parameters"] = model_parameters
        if usage is not None:
            fields["usage"] = usage
        if usage_details is not None:
            fields["usage_details"] = usage_details
        if cost_details is not None:
            fields["cost_details"] = cost_details
        if prompt is not None:
            fields["prompt"] = prompt
        wire = to_wire(fields, OBSERVATION_FIELDS, obs.trace.client.max_field_size)
        try:
            apply_observation(obs, wire)
        except Exception as exc:
            _errors.report("context.update_current_observation", exc)

    def get_current_trace_id(self) -> str | None:
        """The current trace's id, or None outside observed code."""
        obs = CURRENT.get()
        return obs.trace.id if obs is not None else None

    def get_current_observation_id(self) -> str | None:
        """The current observation's id, or None outside observed code."""
        obs = CURRENT.get()
        return obs.id if obs is not None else None

    def _score(
        self, what: str, on_observation: bool, name: str, value: Any, kwargs: dict[str, Any]
    ) -> None:
        obs = _current(what)
        if obs is None or not obs.trace.sampled:
            return
        try:
            client = obs.trace.client
            body = score_body(
                client,
                name=name,
                value=value,
                trace_id=obs.trace.id,
                observation_id=obs.id if on_observation else None,
                **kwargs,
            )
            client.submit(Envelope("score-create", body))
        except Exception as exc:
            _errors.report(f"context.{what}", exc)

    def score_current_trace(
        self,
        *,
        name: str,
        value: float | str | bool,
        comment: str | None = None,
        data_type: str | None = None,
        config_id: str | None = None,
        metadata: Any = None,
        id: str | None = None,
    ) -> None:
        """Score the current trace."""
        self._score(
            "score_current_trace",
            False,
            name,
            value,
            {
                "comment": comment,
                "data_type": data_type,
                "config_id": config_id,
                "metadata": metadata,
                "id": id,
            },
        )

    def score_current_observation(
        self,
        *,
        name: str,
        value: float | str | bool,
        comment: str | None = None,
        data_type: str | None = None,
        config_id: str | None = None,
        metadata: Any = None,
        id: str | None = None,
    ) -> None:
        """Score the current observation."""
        self._score(
            "score_current_observation",
            True,
            name,
            value,
            {
                "comment": comment,
                "data_type": data_type,
                "config_id": config_id,
                "metadata": metadata,
                "id": id,
            },
        )

    def flush(self, timeout: float | None = None) -> bool:
        """Flush the process-wide client (see ``Lanterna.flush``)."""
        from .client import get_client

        return get_client().flush(timeout)


#: The process-wide :class:`Context`.
context = Context()
