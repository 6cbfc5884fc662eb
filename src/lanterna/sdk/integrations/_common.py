"""What the integrations share: starting observations inside or outside ``@observe``
code, and turning provider objects (messages, usage) into wire values."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..capture import capture
from ..fields import TRACE_FIELDS, to_wire
from ..handles import apply_trace
from ..observe import CURRENT
from ..records import Observation, Trace, _rng, new_observation, new_trace_id

if TYPE_CHECKING:
    from ..client import Lanterna


def start(
    client: Lanterna,
    kind: str,
    name: str,
    parent: Observation | None,
    trace_fields: dict[str, Any] | None = None,
    *,
    inside_current: bool = True,
    trace_id: str | None = None,
) -> Observation | None:
    """Start an observation under ``parent``; without one, under the current ``@observe``
    observation (when ``inside_current`` and it belongs to ``client``), else as the root
    of a new trace carrying ``trace_fields`` (keyword names: user_id, session_id, ...).
    Returns None when tracing is off or the trace is sampled out."""
    if not client.active:
        return None
    if parent is None and inside_current:
        current = CURRENT.get()
        if current is not None and current.trace.client is client:
            parent = current
    if parent is not None:
        obs = new_observation(parent.trace, parent.oid, kind, name)
        if trace_fields:
            apply_trace(parent.trace, to_wire(trace_fields, TRACE_FIELDS, client.max_field_size))
    else:
        rate = client.sample_rate
        trace = Trace(trace_id or new_trace_id(), client, rate >= 1.0 or _rng.random() < rate)
        obs = new_observation(trace, None, kind, name)
        obs.top = True
        if trace_id is None:
            trace.root = obs
            trace.root_id = obs.oid
            trace.root_kind = kind
        if trace_fields:
            apply_trace(trace, to_wire(trace_fields, TRACE_FIELDS, client.max_field_size))
    if not obs.trace.sampled:
        return None
    return obs


def set_extra(obs: Observation, **wire: Any) -> None:
    """Set wire fields that have no attribute of their own (model, usageDetails, ...)."""
    values = {k: v for k, v in wire.items() if v is not None}
    if not values:
        return
    if obs.extra is None:
        obs.extra = {}
    obs.extra.update(values)


def plain(value: Any, limit: int) -> Any:
    """``value`` captured for sending (see :func:`lanterna.sdk.capture.capture`)."""
    return capture(value, limit)


def usage_from_details(
    input_tokens: Any,
    output_tokens: Any,
    total: Any,
    input_details: Any = None,
    output_details: Any = None,
) -> dict[str, int] | None:
    """Usage in the price-key vocabulary: detail counts (cache read/creation, audio,
    reasoning) become ``input_<k>``/``output_<k>`` and are taken out of ``input``/
    ``output``, so that the keys add up to the total and nothing is counted twice."""
    usage: dict[str, int] = {}
    counts = {"input": input_tokens, "output": output_tokens}
    for prefix, details in (("input", input_details), ("output", output_details)):
        if not isinstance(details, dict):
            continue
        for key, value in details.items():
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                short = str(key).removesuffix("_tokens")
                usage[f"{prefix}_{short}"] = value
                if isinstance(counts[prefix], int):
                    counts[prefix] = max(counts[prefix] - value, 0)
    for key, value in counts.items():
        if isinstance(value, int) and not isinstance(value, bool):
            usage[key] = value
    if isinstance(total, int) and not isinstance(total, bool):
        usage["total"] = total
    return usage or None
