"""Stored dataset rows -> the JSON objects of the public API (contract 4.4): Dataset,
DatasetItem, DatasetRun, DatasetRunItem, Experiment and ExperimentItem, every property
the OpenAPI schema marks required present (``null`` when empty, ``mediaReferences: []``).

Kept beside ``shapes.py`` (which shapes the event entities) so neither grows past a
readable size; the rule is the same: one function per object, shared by every route.
"""

from __future__ import annotations

from typing import Any

from ..store.dialect import Dialect
from .shapes import score_v3_json

#: The ScoreV3 groups shown inside experiments and experiment items.
_SCORE_GROUPS = frozenset({"core", "details", "subject"})


def dataset_json(d: Dialect, row: dict[str, Any]) -> dict[str, Any]:
    """A Dataset (no items)."""
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "metadata": row["metadata"],
        "inputSchema": row["input_schema"],
        "expectedOutputSchema": row["expected_output_schema"],
        "projectId": row["project_id"],
        "createdAt": d.ts_out(row["created_at"]),
        "updatedAt": d.ts_out(row["updated_at"]),
    }


def item_json(d: Dialect, row: dict[str, Any]) -> dict[str, Any]:
    """A DatasetItem (``mediaReferences`` always present, empty: no media is stored)."""
    return {
        "id": row["id"],
        "status": row["status"],
        "input": row["input"],
        "expectedOutput": row["expected_output"],
        "metadata": row["metadata"],
        "sourceTraceId": row["source_trace_id"],
        "sourceObservationId": row["source_observation_id"],
        "datasetId": row["dataset_id"],
        "datasetName": row["dataset_name"],
        "createdAt": d.ts_out(row["created_at"]),
        "updatedAt": d.ts_out(row["updated_at"]),
        "mediaReferences": [],
    }


def run_json(d: Dialect, row: dict[str, Any]) -> dict[str, Any]:
    """A DatasetRun."""
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "metadata": row["metadata"],
        "datasetId": row["dataset_id"],
        "datasetName": row["dataset_name"],
        "createdAt": d.ts_out(row["created_at"]),
        "updatedAt": d.ts_out(row["updated_at"]),
    }


def run_item_json(d: Dialect, row: dict[str, Any]) -> dict[str, Any]:
    """A DatasetRunItem."""
    return {
        "id": row["id"],
        "datasetRunId": row["run_id"],
        "datasetRunName": row["run_name"],
        "datasetItemId": row["dataset_item_id"],
        "traceId": row["trace_id"],
        "observationId": row["observation_id"],
        "createdAt": d.ts_out(row["created_at"]),
        "updatedAt": d.ts_out(row["updated_at"]),
    }


def experiment_json(
    d: Dialect,
    row: dict[str, Any],
    groups: frozenset[str],
    scores: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """An Experiment (a dataset run over the requested range); ``metadata`` and
    ``scores`` only when their group is asked for."""
    out: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "startTime": d.ts_out(row["start_time"]),
        "endTime": d.ts_out(row["end_time"]),
        "itemCount": int(row["item_count"]),
        "datasetId": row["dataset_id"],
    }
    if "metadata" in groups:
        out["metadata"] = row["metadata"] if isinstance(row["metadata"], dict) else None
    if "scores" in groups:
        out["scores"] = [score_v3_json(d, s, _SCORE_GROUPS) for s in scores or []]
    return out


def _object_or_none(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def experiment_item_json(
    d: Dialect,
    row: dict[str, Any],
    groups: frozenset[str],
    scores: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """An ExperimentItem (a run item with its trace and dataset item); each optional
    group's fields only when it is asked for."""
    start = row["created_at"]
    out: dict[str, Any] = {
        "id": row["id"],
        "traceId": row["trace_id"],
        "startTime": d.ts_out(start),
        "endTime": None,
        "level": "DEFAULT",
        "environment": row["environment"] or "default",
        "experimentId": row["run_id"],
        "experimentName": row["run_name"],
        "experimentItemId": row["dataset_item_id"],
    }
    if "dataset" in groups:
        out["experimentDatasetId"] = row["dataset_id"]
        out["experimentItemVersion"] = d.ts_out(row["dataset_version"])
    if "io" in groups:
        out["input"] = row["input"]
        out["output"] = row["output"]
        out["expectedOutput"] = row["expected_output"]
    if "metadata" in groups:
        out["metadata"] = _object_or_none(row["metadata"])
    if "itemMetadata" in groups:
        out["experimentItemMetadata"] = _object_or_none(row["item_metadata"])
    if "experimentMetadata" in groups:
        out["experimentMetadata"] = _object_or_none(row["run_metadata"])
        out["experimentDescription"] = row["run_description"]
    if "scores" in groups:
        out["scores"] = [score_v3_json(d, s, _SCORE_GROUPS) for s in scores or []]
    return out
