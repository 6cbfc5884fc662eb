"""A score sent to ``POST /api/public/scores`` (or added by hand in the UI) as the domain
event an ingestion ``score-create`` would make: one validation for every way in."""

from __future__ import annotations

from typing import Any

from .events import DomainEvent
from .langfuse_events import Invalid, new_id, read_event


def score_event(body: Any, received: str) -> DomainEvent:
    """One ``CreateScoreRequest`` as the domain event a ``score-create`` would make.

    A missing or empty ``id`` gets a fresh uuid. Raises :class:`Invalid`.
    """
    if not isinstance(body, dict):
        raise Invalid("each score must be a JSON object")
    if body.get("source") == "EVAL":
        raise Invalid("source: EVAL is reserved for evaluator outputs; use API or ANNOTATION")
    if body.get("id") is None or body.get("id") == "":
        body = {**body, "id": new_id()}
    # The same validation and normalisation as ingestion (Langfuse wraps the body in a
    # score-create event too), so both routes store identical rows.
    envelope = {"id": new_id(), "type": "score-create", "timestamp": received, "body": body}
    _event_id, event = read_event(envelope)
    assert event is not None  # the body has an id, so there is always an entity
    return event
