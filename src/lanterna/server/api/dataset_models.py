"""The OpenAPI shapes of the dataset and experiment routes (``datasets.py``,
``experiments.py``): the request bodies as the routes check them and the answers as
``server/dataset_shapes.py`` builds them, compatible with Langfuse's ``Dataset``,
``DatasetItem``, ``DatasetRun``, ``DatasetRunWithItems``, ``DatasetRunItem``,
``Experiment`` and ``ExperimentItem`` (the official clients parse them).

Documentation only: the routes read their bodies themselves (a bad field is a 400 naming
it) and answer ``JSON(...)``. Free-form values (input, output, metadata, JSON schemas)
are any JSON; ``server/openapi.py`` adds what every body and parameter obeys (no NUL).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from ...schema.datasets import MAX_ITEM_ID, MAX_LINKED_ID, MAX_NAME
from ...schema.entities import LEVELS, SCORE_DATA_TYPES, SCORE_SOURCES
from ..doc_models import DocModel
from .body import NOT_BLANK
from .params import Meta

# --- answers ---------------------------------------------------------------------------


class Dataset(DocModel):
    """A dataset (without its items)."""

    id: str
    name: str
    description: str | None
    metadata: Any
    inputSchema: Any = Field(description="JSON Schema the items' input must match, or null")
    expectedOutputSchema: Any = Field(
        description="JSON Schema the items' expectedOutput must match, or null"
    )
    projectId: str
    createdAt: datetime
    updatedAt: datetime


class DatasetItem(DocModel):
    """A dataset item; ``mediaReferences`` is always empty (no media is resolved)."""

    id: str
    status: Literal["ACTIVE", "ARCHIVED"]
    input: Any
    expectedOutput: Any
    metadata: Any
    sourceTraceId: str | None
    sourceObservationId: str | None
    datasetId: str
    datasetName: str
    createdAt: datetime
    updatedAt: datetime
    mediaReferences: list[dict[str, Any]] = Field(description="Always empty")


class LegacyDataset(Dataset):
    """The v1 Dataset: with its active items and the names of its runs."""

    items: list[DatasetItem]
    runs: list[str]


class DatasetRun(DocModel):
    """A dataset run (an experiment over a dataset)."""

    id: str
    name: str
    description: str | None
    metadata: Any
    datasetId: str
    datasetName: str
    createdAt: datetime
    updatedAt: datetime


class DatasetRunItem(DocModel):
    """A trace (and optionally one of its observations) linked to an item in a run."""

    id: str
    datasetRunId: str
    datasetRunName: str
    datasetItemId: str
    traceId: str
    observationId: str | None
    createdAt: datetime
    updatedAt: datetime


class DatasetRunWithItems(DatasetRun):
    """A dataset run with its run items, oldest first."""

    datasetRunItems: list[DatasetRunItem]


class PaginatedDatasets(DocModel):
    """A page of the project's datasets, newest first."""

    data: list[Dataset]
    meta: Meta


class PaginatedLegacyDatasets(DocModel):
    """A page of the project's datasets (v1: with items and run names), newest first."""

    data: list[LegacyDataset]
    meta: Meta


class PaginatedDatasetItems(DocModel):
    """A page of dataset items, newest first."""

    data: list[DatasetItem]
    meta: Meta


class PaginatedDatasetRuns(DocModel):
    """A page of a dataset's runs, newest first."""

    data: list[DatasetRun]
    meta: Meta


class PaginatedDatasetRunItems(DocModel):
    """A page of a run's items, oldest first."""

    data: list[DatasetRunItem]
    meta: Meta


class ExperimentScoreSubject(DocModel):
    """What a score rates (an observation's subject also names its trace)."""

    kind: Literal["trace", "observation", "session", "experiment"]
    id: str
    traceId: str | None = None


class ExperimentScore(DocModel):
    """A ScoreV3 inside an experiment or an experiment item (the ``core``, ``details``
    and ``subject`` groups): ``value`` a number (NUMERIC), a boolean (BOOLEAN) or a
    string (the other types)."""

    id: str
    projectId: str
    name: str
    dataType: str = Field(json_schema_extra={"enum": list(SCORE_DATA_TYPES)})
    source: str = Field(json_schema_extra={"enum": list(SCORE_SOURCES)})
    timestamp: datetime
    environment: str
    createdAt: datetime
    updatedAt: datetime
    value: float | bool | str
    comment: str | None
    metadata: dict[str, Any] | None
    configId: str | None
    subject: ExperimentScoreSubject | None


class Experiment(DocModel):
    """A dataset run over the requested range; ``metadata`` and ``scores`` (the run's
    own) only when their field group is asked for."""

    id: str
    name: str
    description: str | None
    startTime: datetime = Field(description="The first run item in the range")
    endTime: datetime = Field(description="The last run item in the range")
    itemCount: int = Field(description="Run items in the range")
    datasetId: str | None
    metadata: dict[str, Any] | None = Field(None, description="With fields=metadata")
    scores: list[ExperimentScore] | None = Field(None, description="With fields=scores")


class ExperimentsResponseMeta(DocModel):
    """``cursor``: the next page's, absent on the last page."""

    cursor: str | None = None


class ExperimentsResponse(DocModel):
    """A cursor page of experiments, latest activity first."""

    data: list[Experiment]
    meta: ExperimentsResponseMeta


class ExperimentItem(DocModel):
    """A run item with its trace and dataset item; each optional group's fields only
    when it is asked for (``fields``)."""

    id: str
    traceId: str
    startTime: datetime
    endTime: datetime | None
    level: str = Field(json_schema_extra={"enum": list(LEVELS)})
    environment: str
    experimentId: str
    experimentName: str
    experimentItemId: str = Field(description="The dataset item's id")
    experimentDatasetId: str | None = Field(None, description="With fields=dataset")
    experimentItemVersion: datetime | None = Field(None, description="With fields=dataset")
    input: Any = Field(None, description="The trace's input, with fields=io")
    output: Any = Field(None, description="The trace's output, with fields=io")
    expectedOutput: Any = Field(None, description="The item's, with fields=io")
    metadata: dict[str, Any] | None = Field(None, description="The trace's, with fields=metadata")
    experimentItemMetadata: dict[str, Any] | None = Field(
        None, description="The dataset item's, with fields=itemMetadata"
    )
    experimentMetadata: dict[str, Any] | None = Field(
        None, description="The run's, with fields=experimentMetadata"
    )
    experimentDescription: str | None = Field(
        None, description="The run's, with fields=experimentMetadata"
    )
    scores: list[ExperimentScore] | None = Field(
        None, description="The trace's scores, with fields=scores"
    )


class ExperimentItemsResponse(DocModel):
    """A cursor page of experiment items, newest first."""

    data: list[ExperimentItem]
    meta: ExperimentsResponseMeta


# --- request bodies --------------------------------------------------------------------


class DatasetBody(DocModel):
    """Create a dataset, or update the one with this ``name`` (keys left out or null
    keep the stored value). ``inputSchema`` and ``expectedOutputSchema``: JSON Schemas
    (any draft, ``$schema`` picks it, else 2020-12; patterns RE2 can compile) that the
    dataset's items, those stored too, must match."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "qa",
                    "description": "Questions and answers",
                    "inputSchema": {"type": "object", "required": ["question"]},
                }
            ]
        }
    )

    name: str = Field(max_length=MAX_NAME, pattern=NOT_BLANK)
    description: str | None = Field(None)
    metadata: Any = None
    inputSchema: dict[str, Any] | bool | None = None
    expectedOutputSchema: dict[str, Any] | bool | None = None


class DatasetItemBody(DocModel):
    """Create an item in the dataset ``datasetName``, or update the item with this
    ``id`` (keys left out or null keep the stored value); its input and expectedOutput
    must match the dataset's schemas."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"datasetName": "qa", "input": {"question": "2+2?"}, "expectedOutput": "4"}
            ]
        }
    )

    datasetName: str = Field(max_length=MAX_NAME, pattern=NOT_BLANK)
    id: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_ITEM_ID,
        description="Items are upserted on their id (unique in the project)",
    )
    input: Any = None
    expectedOutput: Any = None
    metadata: Any = None
    sourceTraceId: str | None = Field(None)
    sourceObservationId: str | None = Field(None)
    status: Literal["ACTIVE", "ARCHIVED"] | None = Field(None, description="ACTIVE when new")


_NOT_EMPTY: dict[str, Any] = {"type": "string", "minLength": 1}


class DatasetRunItemBody(DocModel):
    """Link a trace (or an observation: its stored trace is used) to a dataset item in
    the run ``runName``, created on first use. Strict: no other key."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"runName": "run-1", "datasetItemId": "item-1", "traceId": "trace-1"}],
            # A traceId or an observationId (an empty one counts as none).
            "anyOf": [
                {"required": ["traceId"], "properties": {"traceId": _NOT_EMPTY}},
                {"required": ["observationId"], "properties": {"observationId": _NOT_EMPTY}},
            ],
        },
    )

    runName: str = Field(max_length=MAX_NAME, pattern=NOT_BLANK)
    runDescription: str | None = Field(None)
    metadata: Any = None
    datasetItemId: str = Field(max_length=MAX_NAME, pattern=NOT_BLANK)
    traceId: str | None = Field(None, max_length=MAX_LINKED_ID)
    observationId: str | None = Field(None, max_length=MAX_LINKED_ID)
    datasetVersion: datetime | None = Field(
        None, description="Use the items as they were at this time"
    )
    createdAt: datetime | None = Field(None, description="The run item's time (default: now)")
