"""The field tables: one line per field of each stored entity.

Adding a field to an entity is one line here plus a migration that adds its column
(``store/migrations/``); the record columns, the ``filter`` whitelist, the API
objects, the cursor API's field groups and the ingestion readers (with their limits)
follow from the line. Fields whose meaning is more than their kind (``environment``,
``metadata``, usage and cost, prompt links, score values) are marked ``read=HAND``
and ``shape=False`` where the wire-format modules and ``server/shapes.py`` treat them
by hand. Dataset items and alert rules get their own tables here when they are stored.
"""

from __future__ import annotations

from .field import (
    BOOL,
    ENUM,
    HAND,
    INT,
    JSON,
    NUMBER,
    OBJECT,
    SERVER,
    STRINGS,
    TEXT,
    TIMESTAMP,
    VERSION,
    Entity,
    Field,
    ident,
    key,
    system,
)

OBSERVATION_TYPES = (
    "SPAN",
    "GENERATION",
    "EVENT",
    "AGENT",
    "TOOL",
    "CHAIN",
    "RETRIEVER",
    "EVALUATOR",
    "EMBEDDING",
    "GUARDRAIL",
)
LEVELS = ("DEBUG", "DEFAULT", "WARNING", "ERROR")
SCORE_DATA_TYPES = ("NUMERIC", "CATEGORICAL", "BOOLEAN", "TEXT", "CORRECTION")
SCORE_SOURCES = ("API", "EVAL", "ANNOTATION")


def _id_column(**more: str) -> Field:
    """The entity's own id: read from the event body by hand, filterable."""
    return ident("id", "id", read=HAND, system=True, filter=True, **more)


def _rows(**group: str) -> tuple[Field, ...]:
    """The project and row times every entity's API object carries."""
    return (
        system("project_id", "projectId", TEXT, group=group.get("project")),
        system("created_at", "createdAt", TIMESTAMP, group=group.get("times")),
        system("updated_at", "updatedAt", TIMESTAMP, group=group.get("times")),
    )


# One line per field; the order is the order of the API object's keys.
# fmt: off
TRACE = Entity("trace", "traces", "t", (
    _id_column(),
    Field("timestamp", "timestamp", TIMESTAMP, filter=True),
    key("name", "name", filter=True),
    Field("input", "input", JSON),
    Field("output", "output", JSON),
    ident("session_id", "sessionId", filter=True),
    key("release", "release", filter=True),
    Field("version", "version", VERSION, filter=True),
    key("user_id", "userId", filter=True),
    Field("metadata", "metadata", JSON, filter=True, read=HAND),
    Field("tags", "tags", STRINGS, filter=True, empty=list),
    Field("public", "public", BOOL, filter=True),
    Field("bookmarked", "bookmarked", BOOL, filter=True, read=SERVER),
    Field("environment", "environment", TEXT, filter=True, read=HAND),
    *_rows(),
))

OBSERVATION = Entity("observation", "observations", "o", (
    _id_column(group="core"),
    ident("trace_id", "traceId", filter=True, group="core"),
    Field("type", "type", ENUM, choices=OBSERVATION_TYPES, filter=True, read=HAND, group="core"),
    key("name", "name", filter=True, group="basic"),
    Field("start_time", "startTime", TIMESTAMP, filter=True, group="core"),
    Field("end_time", "endTime", TIMESTAMP, filter=True, group="core"),
    Field("completion_start_time", "completionStartTime", TIMESTAMP, filter=True,
          generation=True, group="time"),
    Field("model", "model", TEXT, filter=True, filter_aliases=("providedModelName",),
          generation=True),
    Field("model_parameters", "modelParameters", OBJECT, generation=True, empty=dict),
    Field("input", "input", JSON, lazy=True),
    Field("output", "output", JSON, lazy=True),
    Field("version", "version", VERSION, filter=True, group="basic"),
    Field("metadata", "metadata", JSON, filter=True, read=HAND, lazy=True),
    Field("usage_details", "usageDetails", JSON, read=HAND, empty=dict, group="usage"),
    Field("cost_details", "costDetails", JSON, read=HAND, empty=dict, group="usage"),
    Field("level", "level", ENUM, choices=LEVELS, filter=True, group="basic"),
    Field("status_message", "statusMessage", TEXT, filter=True, group="basic"),
    ident("parent_observation_id", "parentObservationId", filter=True, group="core"),
    Field("prompt_id", "promptId", TEXT, read=SERVER, group="prompt"),
    Field("prompt_name", "promptName", TEXT, filter=True, read=HAND, group="prompt"),
    Field("prompt_version", "promptVersion", INT, filter=True, read=HAND, group="prompt"),
    Field("environment", "environment", TEXT, filter=True, read=HAND, group="basic"),
    Field("model_id", "modelId", TEXT, read=SERVER),
    Field("provided_usage_details", "providedUsageDetails", JSON, read=HAND),
    Field("provided_cost_details", "providedCostDetails", JSON, read=HAND),
    Field("total_cost", "totalCost", NUMBER, filter=True, read=HAND, shape=False, group="usage"),
    # Derived by lanterna.cost at write time (migration 0004).
    Field("cost_info", "costInfo", JSON, read=SERVER, shape=False),
    Field("usage_input", None, INT, read=SERVER),
    Field("usage_output", None, INT, read=SERVER),
    Field("usage_total", None, INT, read=SERVER),
    *_rows(project="core", times="time"),
))

SCORE = Entity("score", "scores", "s", (
    _id_column(group="core"),
    ident("trace_id", "traceId", filter=True, read=HAND),
    ident("session_id", "sessionId", filter=True, read=HAND),
    ident("observation_id", "observationId", filter=True, read=HAND),
    ident("dataset_run_id", "datasetRunId", filter=True, read=HAND),
    key("name", "name", filter=True, read=HAND, group="core"),
    Field("value", "value", NUMBER, filter=True, read=HAND),
    Field("string_value", "stringValue", TEXT, filter=True, read=HAND),
    Field("data_type", "dataType", ENUM, choices=SCORE_DATA_TYPES, filter=True, read=HAND,
          group="core"),
    Field("source", "source", ENUM, choices=SCORE_SOURCES, filter=True, read=HAND, group="core"),
    Field("timestamp", "timestamp", TIMESTAMP, filter=True, group="core"),
    Field("author_user_id", "authorUserId", TEXT, filter=True, read=SERVER, group="annotation"),
    Field("comment", "comment", TEXT, filter=True, group="details"),
    Field("metadata", "metadata", JSON, filter=True, read=HAND, empty=dict, group="details"),
    Field("config_id", "configId", TEXT, filter=True, read=HAND, group="details"),
    Field("queue_id", "queueId", TEXT, filter=True, group="annotation"),
    Field("environment", "environment", TEXT, filter=True, read=HAND, group="core"),
    *_rows(project="core", times="core"),
))
# fmt: on

#: Every entity with a field table, by name.
ENTITIES: dict[str, Entity] = {e.name: e for e in (TRACE, OBSERVATION, SCORE)}
