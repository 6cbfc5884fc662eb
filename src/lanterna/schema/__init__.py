"""The entity schema: one field table per stored entity (:mod:`.entities`).

Imported by ``ingest``, ``store`` and ``server`` alike; it imports nothing of theirs.
See ARCHITECTURE.md, "Field tables".
"""

from .entities import (
    ENTITIES,
    LEVELS,
    OBSERVATION,
    OBSERVATION_TYPES,
    SCORE,
    SCORE_DATA_TYPES,
    SCORE_SOURCES,
    TRACE,
)
from .field import Entity, Field

__all__ = [
    "ENTITIES",
    "LEVELS",
    "OBSERVATION",
    "OBSERVATION_TYPES",
    "SCORE",
    "SCORE_DATA_TYPES",
    "SCORE_SOURCES",
    "TRACE",
    "Entity",
    "Field",
]
