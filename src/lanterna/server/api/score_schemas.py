"""The OpenAPI shapes of the scores and score-config routes (``scores.py``,
``score_configs.py``): what they answer and the bodies they read.

Documentation only: the routes answer ``JSON(...)`` built by ``server/shapes.py``
(``score_json``, ``score_v1_json``, ``score_v3_json``, ``config_json``) and check bodies
themselves (``ingest/score_request.py``, ``ingest/score_configs.py``). A score is a union
discriminated by ``dataType``, as in Langfuse's spec: its ``value`` and ``stringValue``
depend on the type (v1/v2: ``value`` is always a number, ``stringValue`` the category,
``"True"``/``"False"``, the text or the correction; v3: ``value`` alone, typed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, Field, create_model

from ...ingest.events import SCORE_DATA_TYPES
from ...ingest.score_configs import MAX_NAME
from ...store.interface import V1_DATA_TYPES
from ..doc_models import DocModel, request_body
from .params import Meta

#: Where a score comes from (``ScoreSource``).
Source = Literal["ANNOTATION", "API", "EVAL"]
#: The data types of a score config (``ScoreConfigDataType``).
ConfigDataType = Literal["NUMERIC", "BOOLEAN", "CATEGORICAL", "TEXT"]
#: A score config name: 1 to 35 of these characters, not all spaces (``check_config``).
CONFIG_NAME = r"^[A-Za-z0-9_ .()\-]*[A-Za-z0-9_.()\-][A-Za-z0-9_ .()\-]*$"


# --- scores (v1, v2) ------------------------------------------------------------------


class ScoreTrace(DocModel):
    """The trace a listed score is on (``fields`` with ``trace``, the default)."""

    userId: str | None
    tags: list[str]
    environment: str | None
    sessionId: str | None


class _ScoreFields(DocModel):
    """The fields every v1/v2 score carries (Langfuse's ``BaseScore``)."""

    id: str
    name: str
    source: Source
    timestamp: datetime
    createdAt: datetime
    updatedAt: datetime
    authorUserId: str | None
    comment: str | None
    metadata: dict[str, Any]
    configId: str | None
    queueId: str | None
    environment: str
    projectId: str
    observationId: str | None


class _ScoreV2Fields(_ScoreFields):
    """A v2 score's target: exactly one of trace, session or dataset run is set."""

    traceId: str | None
    sessionId: str | None
    datasetRunId: str | None


class _ScoreV1Fields(_ScoreFields):
    """The legacy list has trace scores only."""

    traceId: str


class _Listed(DocModel):
    trace: ScoreTrace | None = Field(
        None, description="The score's trace; absent unless ``fields`` asks for ``trace``."
    )


#: ``dataType`` -> (``value``, ``stringValue``) of a v1/v2 score.
_VALUES: dict[str, tuple[Any, Any]] = {
    "NUMERIC": (float, None),
    "BOOLEAN": (float, Literal["True", "False"]),
    "CATEGORICAL": (float, str),
    "TEXT": (float, str),
    "CORRECTION": (float, str),
}
_DESCRIPTIONS = {
    "NUMERIC": "A numeric score: ``value``; ``stringValue`` is null.",
    "BOOLEAN": "A boolean score: ``value`` 1 or 0, ``stringValue`` ``True`` or ``False``.",
    "CATEGORICAL": "A categorical score: the category in ``stringValue``, its number (its"
    " config's category value, else 0) in ``value``.",
    "TEXT": "A text score: the text (1 to 500 characters) in ``stringValue``; ``value`` 0.",
    "CORRECTION": "A correction of a trace or observation output: ``stringValue``; ``value`` 0.",
}


def _union(name: str, bases: tuple[type[BaseModel], ...], types: tuple[str, ...]) -> Any:
    """The ``dataType``-discriminated union of a score shape, one model per data type."""
    variants = []
    for data_type in types:
        value, string_value = _VALUES[data_type]
        fields: dict[str, Any] = {
            "dataType": (Literal[data_type], ...),
            "value": (value, ...),
            "stringValue": (string_value, ...),
        }
        variants.append(
            create_model(
                f"{data_type.title()}{name}",
                __base__=bases,
                __doc__=_DESCRIPTIONS[data_type],
                **fields,
            )
        )
    return Annotated[Union[tuple(variants)], Field(discriminator="dataType")]  # noqa: UP007


#: ``GET /api/public/v2/scores/{id}``: one score of any target.
Score = _union("Score", (_ScoreV2Fields,), SCORE_DATA_TYPES)
#: An item of ``GET /api/public/v2/scores``.
ListedScore = _union("ListedScore", (_ScoreV2Fields, _Listed), SCORE_DATA_TYPES)
#: ``GET /api/public/scores/{id}``: a trace score in the legacy shape (no corrections).
ScoreV1 = _union("ScoreV1", (_ScoreV1Fields,), V1_DATA_TYPES)
#: An item of ``GET /api/public/scores``.
ListedScoreV1 = _union("ListedScoreV1", (_ScoreV1Fields, _Listed), V1_DATA_TYPES)


class ScoreList(DocModel):
    """A page of scores (trace, observation, session and dataset-run scores), newest first."""

    data: list[ListedScore]  # type: ignore[valid-type]
    meta: Meta


class ScoreV1List(DocModel):
    """A page of trace scores in the legacy shape, newest first."""

    data: list[ListedScoreV1]  # type: ignore[valid-type]
    meta: Meta


# --- scores v3 ------------------------------------------------------------------------


class ScoreSubject(DocModel):
    """What a score rates; an observation's subject also names its trace."""

    kind: Literal["trace", "observation", "session", "experiment"]
    id: str
    traceId: str | None = Field(None, description="Only for an observation.")


class _ScoreV3Fields(DocModel):
    """The ``core`` fields, then those of the ``fields`` groups asked for (absent
    otherwise): ``details`` (comment, metadata, configId), ``annotation``
    (authorUserId, queueId), ``subject``."""

    id: str
    projectId: str
    name: str
    source: Source
    timestamp: datetime
    environment: str
    createdAt: datetime
    updatedAt: datetime
    comment: str | None = None
    metadata: dict[str, Any] | None = None
    configId: str | None = None
    authorUserId: str | None = None
    queueId: str | None = None
    subject: ScoreSubject | None = None


#: ``dataType`` -> the type of a v3 score's ``value``, and its description.
_V3_VALUES: dict[str, tuple[Any, str]] = {
    "NUMERIC": (float, "A numeric score: ``value`` is its number."),
    "BOOLEAN": (bool, "A boolean score: ``value`` is true or false."),
    "CATEGORICAL": (str, "A categorical score: ``value`` is its category (label)."),
    "TEXT": (str, "A text score: ``value`` is its text."),
    "CORRECTION": (str, "A correction: ``value`` is its content (empty when unset)."),
}


def _v3_union() -> Any:
    """The ``dataType``-discriminated union of a v3 score."""
    variants = []
    for data_type, (value, description) in _V3_VALUES.items():
        fields: dict[str, Any] = {"dataType": (Literal[data_type], ...), "value": (value, ...)}
        variants.append(
            create_model(
                f"{data_type.title()}ScoreV3",
                __base__=_ScoreV3Fields,
                __doc__=description,
                **fields,
            )
        )
    return Annotated[Union[tuple(variants)], Field(discriminator="dataType")]  # noqa: UP007


ScoreV3 = _v3_union()


class ScoreV3Meta(DocModel):
    """``cursor`` (base64url) fetches the next page; absent on the last one."""

    limit: int
    cursor: str | None = None


class ScoreV3List(DocModel):
    """A cursor page of scores, newest first."""

    data: list[ScoreV3]  # type: ignore[valid-type]
    meta: ScoreV3Meta


# --- creating scores ------------------------------------------------------------------


class CreateScore(DocModel):
    """A score to create (Langfuse's ``CreateScoreRequest``). Exactly one of ``traceId``
    (with an optional ``observationId``), ``sessionId`` or ``datasetRunId``; ``value`` a
    number for NUMERIC (the default when it is a number) and BOOLEAN (0 or 1) scores, a
    string for CATEGORICAL (the default when it is a string), TEXT (1 to 500 characters)
    and CORRECTION scores (a trace or observation only). A ``configId`` must name a
    config of the project, not archived, whose type, range or categories the score
    fits. ``source`` EVAL is refused."""

    id: str | None = None
    traceId: str | None = None
    sessionId: str | None = None
    observationId: str | None = None
    datasetRunId: str | None = None
    name: str
    value: float | str
    dataType: Literal["NUMERIC", "BOOLEAN", "CATEGORICAL", "CORRECTION", "TEXT"] | None = None
    comment: str | None = None
    metadata: Any = None
    environment: str | None = None
    queueId: str | None = None
    configId: str | None = None
    source: Literal["API", "ANNOTATION"] | None = None
    timestamp: datetime | None = None


class CreatedScore(DocModel):
    """One score created: its id."""

    id: str


class ScoresAccepted(DocModel):
    """Every score of the list was written."""

    message: Literal["Accepted"]


class ScoreRefused(DocModel):
    """Why one score of a list was refused (``index`` in the list, its ``id`` if it gave
    one)."""

    message: str
    index: int
    id: str | None


class ScoresPartly(DocModel):
    """Some scores of the list were written, the others refused (nothing is half
    written: each score is whole or absent)."""

    accepted: int
    rejected: int
    errors: list[ScoreRefused]


def scores_body() -> dict[str, Any]:
    """``POST /api/public/scores``: one score object, or a non-empty list of them."""

    def schema() -> dict[str, Any]:
        one = CreateScore.model_json_schema()
        defs = one.pop("$defs", {})
        return {
            "oneOf": [
                {"$ref": "#/$defs/CreateScore"},
                {"type": "array", "items": {"$ref": "#/$defs/CreateScore"}, "minItems": 1},
            ],
            "$defs": {**defs, "CreateScore": one},
        }

    return request_body(schema)


# --- score configs --------------------------------------------------------------------


class ConfigCategory(DocModel):
    """A category of a CATEGORICAL (or BOOLEAN) config: its label and number."""

    value: float
    label: str


class ScoreConfig(DocModel):
    """A score config (Langfuse's ``ScoreConfig``)."""

    id: str
    name: str
    createdAt: datetime
    updatedAt: datetime
    projectId: str
    dataType: ConfigDataType
    isArchived: bool
    minValue: float | None
    maxValue: float | None
    categories: list[ConfigCategory] | None
    description: str | None


class ScoreConfigList(DocModel):
    """A page of the project's score configs, newest first."""

    data: list[ScoreConfig]
    meta: Meta


class CategoryBody(DocModel):
    """A category to configure: a label and a finite number, both unique in the config."""

    value: float
    label: str = Field(min_length=1)


class ScoreConfigBody(DocModel):
    """Create a score config. ``categories`` (a non-empty list) for CATEGORICAL configs
    only and always; ``minValue``/``maxValue`` (min <= max) for NUMERIC configs only;
    BOOLEAN configs get the categories True (1) and False (0)."""

    name: str = Field(max_length=MAX_NAME, pattern=CONFIG_NAME)
    dataType: ConfigDataType
    categories: list[CategoryBody] | None = None
    minValue: float | None = None
    maxValue: float | None = None
    description: str | None = None
    isArchived: bool = False


class ScoreConfigPatch(DocModel):
    """Change a score config: the fields given; the result is checked as on create
    (``dataType``, if given, must be the config's own: it cannot change)."""

    name: str | None = Field(None, max_length=MAX_NAME, pattern=CONFIG_NAME)
    dataType: ConfigDataType | None = None
    categories: list[CategoryBody] | None = None
    minValue: float | None = None
    maxValue: float | None = None
    description: str | None = None
    isArchived: bool | None = None


# --- the query parameters of the v1/v2 lists ------------------------------------------


def _parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


_TEXT: dict[str, Any] = {"type": "string"}


def list_parameters(operators: tuple[str, ...], page_max: int, limit_max: int) -> dict[str, Any]:
    """The query parameters ``GET /api/public/scores`` and ``/v2/scores`` read from the
    query string themselves (``openapi_extra=``). Not all of their rules are JSON Schema:
    ``operator`` and ``value`` go together, filters on the trace (``userId``,
    ``traceTags``) need ``trace`` in ``fields``, and ``filter`` is a JSON document."""
    parameters = [
        _parameter("page", {"type": "integer", "minimum": 1, "maximum": page_max}, "From 1."),
        _parameter(
            "limit", {"type": "integer", "minimum": 1, "maximum": limit_max}, "50 by default."
        ),
        *(
            _parameter(name, _TEXT, f"Only scores with this {name}.")
            for name in ("userId", "name", "configId", "sessionId", "datasetRunId", "traceId")
        ),
        _parameter("queueId", _TEXT, "Only scores made in this annotation queue."),
        _parameter("fromTimestamp", _TEXT, "Scores at or after this instant."),
        _parameter("toTimestamp", _TEXT, "Scores before this instant."),
        _parameter("source", {"type": "string", "enum": list(get_args(Source))}, "One source."),
        _parameter("dataType", {"type": "string", "enum": list(SCORE_DATA_TYPES)}, "One type."),
        _parameter("environment", {"type": "array", "items": _TEXT}, "Any of these environments."),
        _parameter("traceTags", {"type": "array", "items": _TEXT}, "Traces with all these tags."),
        _parameter("scoreIds", _TEXT, "Comma-separated score ids."),
        _parameter("observationId", _TEXT, "Comma-separated observation ids."),
        _parameter(
            "operator",
            {"type": "string", "enum": list(operators)},
            "Compare ``value`` to the score's number (with ``value``).",
        ),
        _parameter("value", {"type": "number"}, "The number ``operator`` compares to."),
        _parameter(
            "fields", _TEXT, "Comma-separated groups: ``score``, ``trace`` (both by default)."
        ),
        _parameter("filter", _TEXT, "A JSON array of filter conditions (docs/api-read.md)."),
    ]
    return {"parameters": parameters}
