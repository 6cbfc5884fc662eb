"""The OpenAPI shapes of the core read answers: traces, observations (v1 and v2),
sessions, users, daily metrics and the key's project list (and the time parameter
their routes share).

Documentation only: the routes answer with ``JSON(...)`` built by ``server/shapes.py``;
these models say what those functions return, field for field. Where Langfuse's spec
has the same answer (``Trace``, ``TraceWithDetails``, ``TraceWithFullDetails``,
``Traces``, ``ObservationsView``, ``ObservationV2``, ``Session``, ``SessionWithTraces``,
``Projects``, the daily metrics), the names and types are its own, required where it
requires them (or tighter: a value it allows to be null that we always give); the
fields Lanterna adds are extra properties its clients ignore. Free-form values (input,
output, metadata) are any JSON.
"""

from __future__ import annotations

from datetime import date as Date
from datetime import datetime
from typing import Any

from fastapi import Query
from pydantic import Field

from ...schema import LEVELS, OBSERVATION_TYPES, SCORE_SOURCES
from ..doc_models import DocModel
from .org_projects import Project
from .params import Meta

#: The score types of a trace's ``scores`` (Langfuse's ScoreV1 has no CORRECTION).
V1_SCORE_TYPES = ("NUMERIC", "CATEGORICAL", "BOOLEAN", "TEXT")


def time_param(alias: str) -> Any:
    """A time bound parameter: ISO-8601 with a UTC offset, as ``parse_time`` reads it (a
    400 naming the parameter otherwise); absent or empty for no bound."""
    return Query(alias=alias, json_schema_extra={"format": "date-time"})


def _enum(values: tuple[str, ...]) -> Any:
    """A required string field that is one of ``values``."""
    return Field(json_schema_extra={"enum": list(values)})


def _nullable_enum(values: tuple[str, ...]) -> Any:
    """A field that is one of ``values`` or null, absent (null) unless its group is asked."""
    return Field(None, json_schema_extra={"enum": [*values, None]})


# --- traces ----------------------------------------------------------------------------


class Trace(DocModel):
    """A trace (Langfuse's ``Trace``) with ``bookmarked``, ``projectId``, its row times and
    ``htmlPath`` (the trace's page in the dashboard)."""

    id: str
    timestamp: datetime
    name: str | None
    input: Any = Field(description="Any JSON; null when the `io` field group is left out")
    output: Any = Field(description="Any JSON; null when the `io` field group is left out")
    sessionId: str | None
    release: str | None
    version: str | None
    userId: str | None
    metadata: Any = Field(description="Any JSON; null when the `io` field group is left out")
    tags: list[str]
    public: bool
    bookmarked: bool
    environment: str
    projectId: str
    createdAt: datetime
    updatedAt: datetime
    htmlPath: str


_LATENCY = (
    "Seconds from the first observation's start to the last one's end (0 without"
    " observations); -1 when the `metrics` field group is left out"
)
_COST = "USD of the trace's observations; -1 when the `metrics` field group is left out"


class TraceWithDetails(Trace):
    """A trace of the list: the ids of its observations and scores (empty when their
    field group is left out), latency and cost."""

    observations: list[str]
    scores: list[str]
    latency: float = Field(description=_LATENCY)
    totalCost: float = Field(description=_COST)


class Traces(DocModel):
    """A page of traces, newest first unless ``orderBy`` says otherwise."""

    data: list[TraceWithDetails]
    meta: Meta


class TraceScore(DocModel):
    """A score of a trace (Langfuse's ``ScoreV1``, plus ``sessionId``, ``datasetRunId`` and
    ``projectId``): ``value`` is the number (0 for CATEGORICAL without a config and for
    TEXT), ``stringValue`` the label, ``True``/``False`` or the text (null for NUMERIC).
    CORRECTION scores are not among them (the scores API has them)."""

    id: str
    traceId: str
    sessionId: str | None
    observationId: str | None
    datasetRunId: str | None
    name: str
    value: float
    stringValue: str | None
    dataType: str = _enum(V1_SCORE_TYPES)
    source: str = _enum(SCORE_SOURCES)
    timestamp: datetime
    authorUserId: str | None
    comment: str | None
    metadata: Any
    configId: str | None
    queueId: str | None
    environment: str
    projectId: str
    createdAt: datetime
    updatedAt: datetime


# --- observations ------------------------------------------------------------------------


class ObservationUsage(DocModel):
    """Langfuse's deprecated ``usage``: input, output and total units (tokens), costs."""

    input: int
    output: int
    total: int
    unit: str
    inputCost: float | None
    outputCost: float | None
    totalCost: float | None


class ObservationsView(DocModel):
    """An observation, v1 shape (Langfuse's ``ObservationsView``): its fields, the
    derived usage, cost, unit prices and latency, and Lanterna's ``costInfo`` (what
    priced it, or why it has no cost: docs/api-cost.md)."""

    id: str
    traceId: str
    type: str = _enum(OBSERVATION_TYPES)
    name: str | None
    startTime: datetime
    endTime: datetime | None
    completionStartTime: datetime | None
    model: str | None
    modelParameters: dict[str, Any]
    input: Any
    output: Any
    version: str | None
    metadata: Any
    usageDetails: dict[str, int]
    costDetails: dict[str, float]
    level: str = _enum(LEVELS)
    statusMessage: str | None
    parentObservationId: str | None
    promptId: str | None
    promptName: str | None
    promptVersion: int | None
    environment: str
    modelId: str | None
    providedUsageDetails: dict[str, int] | None
    providedCostDetails: dict[str, float] | None
    projectId: str
    createdAt: datetime
    updatedAt: datetime
    usage: ObservationUsage
    inputPrice: float | None
    outputPrice: float | None
    totalPrice: float | None
    costInfo: dict[str, Any] | None
    calculatedInputCost: float | None
    calculatedOutputCost: float | None
    calculatedTotalCost: float | None
    latency: float | None
    timeToFirstToken: float | None
    promptTokens: int
    completionTokens: int
    totalTokens: int
    unit: str


class ObservationsViews(DocModel):
    """A page of observations (v1), newest start first."""

    data: list[ObservationsView]
    meta: Meta


class TraceWithFullDetails(Trace):
    """A trace with its observations and scores (empty when their field group is left
    out), latency and cost."""

    observations: list[ObservationsView]
    scores: list[TraceScore]
    latency: float = Field(description=_LATENCY)
    totalCost: float = Field(description=_COST)


class ObservationV2(DocModel):
    """An observation of the cursor API (Langfuse's ``ObservationV2``): the ``core``
    fields, ``modelId`` and the prices always (null unless the ``model`` group is asked
    for); each other field only when its group is asked for. ``input`` and ``output`` are
    raw strings (JSON values serialised), metadata values strings cut to 200 characters
    unless their key is in ``expandMetadata``; prices are decimal strings."""

    # core
    id: str
    traceId: str
    type: str = _enum(OBSERVATION_TYPES)
    startTime: datetime
    endTime: datetime | None
    parentObservationId: str | None
    projectId: str
    modelId: str | None
    inputPrice: str | None
    outputPrice: str | None
    totalPrice: str | None
    # basic
    name: str | None = None
    version: str | None = None
    level: str | None = _nullable_enum(LEVELS)
    statusMessage: str | None = None
    environment: str | None = None
    bookmarked: bool | None = None
    public: bool | None = None
    userId: str | None = None
    sessionId: str | None = None
    isRootObservation: bool | None = None
    # time
    completionStartTime: datetime | None = None
    createdAt: datetime | None = None
    updatedAt: datetime | None = None
    # io, metadata
    input: str | None = None
    output: str | None = None
    metadata: dict[str, str | None] | None = None
    # model
    providedModelName: str | None = None
    internalModelId: str | None = None
    modelParameters: dict[str, Any] | None = None
    # usage
    usageDetails: dict[str, int] | None = None
    costDetails: dict[str, float] | None = None
    totalCost: float | None = None
    usagePricingTierName: str | None = None
    # prompt
    promptId: str | None = None
    promptName: str | None = None
    promptVersion: int | None = None
    # metrics
    latency: float | None = None
    timeToFirstToken: float | None = None
    # trace_context
    tags: list[str] | None = None
    release: str | None = None
    traceName: str | None = None


class ObservationsV2Meta(DocModel):
    """``cursor``: give it back for the next page; absent on the last page."""

    cursor: str | None = None


class ObservationsV2Response(DocModel):
    """A page of observations of the cursor API, newest start first."""

    data: list[ObservationV2]
    meta: ObservationsV2Meta


# --- sessions ----------------------------------------------------------------------------


class Session(DocModel):
    """A session (Langfuse's ``Session``)."""

    id: str
    createdAt: datetime
    projectId: str
    environment: str


class PaginatedSessions(DocModel):
    """A page of sessions, newest first."""

    data: list[Session]
    meta: Meta


class SessionWithTraces(Session):
    """A session with its traces (oldest first) and the totals of their observations."""

    traces: list[Trace]
    countObservations: int
    inputTokens: int
    outputTokens: int
    totalTokens: int
    totalCost: float


# --- users, daily metrics, projects ------------------------------------------------------


class UserTotals(DocModel):
    """A user (a ``userId`` of traces): first and last trace, traces, observations,
    tokens, cost (USD), within the asked time range."""

    userId: str
    firstSeen: datetime
    lastSeen: datetime
    countTraces: int
    countObservations: int
    inputTokens: int
    outputTokens: int
    totalTokens: int
    totalCost: float


class UserTotalsList(DocModel):
    """A page of users, most recently seen first."""

    data: list[UserTotals]
    meta: Meta


class UsageByModel(DocModel):
    """One model's observations on a day."""

    model: str
    inputUsage: int
    outputUsage: int
    totalUsage: int
    countTraces: int
    countObservations: int
    totalCost: float


class DailyMetricsDetails(DocModel):
    """A UTC day with traces: traces, their observations, cost (USD), usage by model."""

    date: Date
    countTraces: int
    countObservations: int
    totalCost: float
    usage: list[UsageByModel]


class DailyMetrics(DocModel):
    """A page of days with traces, newest first."""

    data: list[DailyMetricsDetails]
    meta: Meta


class Projects(DocModel):
    """The key's own project, as the only item."""

    data: list[Project]
