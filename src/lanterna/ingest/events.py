"""Domain events: what every wire format is turned into before it reaches the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

# The choices live with the field tables; re-exported for the wire-format modules.
from ..schema import LEVELS, OBSERVATION_TYPES, SCORE_DATA_TYPES, SCORE_SOURCES

Kind = Literal["trace", "observation", "score"]
__all__ = [
    "LEVELS",
    "OBSERVATION_TYPES",
    "SCORE_DATA_TYPES",
    "SCORE_SOURCES",
    "DomainEvent",
    "Kind",
]


@dataclass(slots=True)
class DomainEvent:
    """One upsert of one entity: only the fields the sender provided are in ``fields``.

    ``timestamp`` is the sender's event time, used to order events for the same entity;
    ``is_update`` marks ``*-update`` events, which sort after creates on ties.
    """

    kind: Kind
    entity_id: str
    timestamp: datetime
    fields: dict[str, Any] = field(default_factory=dict)
    is_update: bool = False
