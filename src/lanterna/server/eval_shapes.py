"""Stored rows -> API JSON for comments, annotation queues, LLM connections, evaluators
and evaluation rules (Langfuse's field names; every required property present). Kept
beside ``shapes.py`` (which holds the tracing entities' shapes) so neither grows past
a readable size."""

from __future__ import annotations

from typing import Any

from ..evaluation.definitions import variables
from ..store.dialect import Dialect


def comment_json(d: Dialect, row: dict[str, Any]) -> dict[str, Any]:
    """A stored comment as Langfuse's ``Comment``."""
    return {
        "id": row["id"],
        "projectId": row["project_id"],
        "createdAt": d.ts_out(row["created_at"]),
        "updatedAt": d.ts_out(row["updated_at"]),
        "objectType": row["object_type"],
        "objectId": row["object_id"],
        "content": row["content"],
        "authorUserId": row["author_user_id"],
    }


def queue_json(d: Dialect, row: dict[str, Any]) -> dict[str, Any]:
    """A stored queue as Langfuse's ``AnnotationQueue``."""
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "scoreConfigIds": list(row["score_config_ids"]),
        "createdAt": d.ts_out(row["created_at"]),
        "updatedAt": d.ts_out(row["updated_at"]),
    }


def queue_item_json(d: Dialect, row: dict[str, Any]) -> dict[str, Any]:
    """A stored queue item as Langfuse's ``AnnotationQueueItem``."""
    return {
        "id": row["id"],
        "queueId": row["queue_id"],
        "objectId": row["object_id"],
        "objectType": row["object_type"],
        "status": row["status"],
        "completedAt": d.ts_out(row["completed_at"]),
        "createdAt": d.ts_out(row["created_at"]),
        "updatedAt": d.ts_out(row["updated_at"]),
    }


def connection_json(d: Dialect, row: dict[str, Any]) -> dict[str, Any]:
    """A stored LLM connection as Langfuse's ``LlmConnection``: the key only masked,
    the extra headers only by name."""
    return {
        "id": row["id"],
        "provider": row["provider"],
        "adapter": row["adapter"],
        "displaySecretKey": row["display_secret_key"],
        "baseURL": row["base_url"],
        "customModels": list(row["custom_models"] or []),
        "withDefaultModels": row["with_default_models"],
        "extraHeaderKeys": list(row["extra_header_keys"] or []),
        "config": row["config"],
        "createdAt": d.ts_out(row["created_at"]),
        "updatedAt": d.ts_out(row["updated_at"]),
    }


def _mapping(entries: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if not entries:
        return None
    return [
        {"variable": e["variable"], "source": e["source"], "jsonPath": e.get("jsonPath")}
        for e in entries
    ]


def evaluator_json(d: Dialect, row: dict[str, Any], rule_count: int) -> dict[str, Any]:
    """The latest version of a stored evaluator as the unstable API's ``Evaluator``
    (deterministic ones add their ``config``)."""
    out: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "version": row["version"],
        "type": row["type"],
        "variables": variables(row),
        "mapping": _mapping(row["mapping"]),
        "evaluationRuleCount": rule_count,
        "outputDefinition": row["output_definition"],
        "createdAt": d.ts_out(row["created_at"]),
        "updatedAt": d.ts_out(row["updated_at"]),
    }
    if row["type"] == "llm_as_judge":
        out.update(prompt=row["prompt"], modelConfig=row["model_config"])
    else:
        out["config"] = row["config"]
    return out


def rule_json(d: Dialect, row: dict[str, Any], evaluator: dict[str, Any] | None) -> dict[str, Any]:
    """A stored rule as the unstable API's ``EvaluationRule``."""
    ref = (
        None
        if evaluator is None
        else {"id": evaluator["id"], "name": evaluator["name"], "type": evaluator["type"]}
    )
    mapping = _mapping(row["mapping"])
    return {
        "id": row["id"],
        "name": row["name"],
        "evaluator": ref,
        "evaluators": [] if ref is None else [{"evaluator": ref, "mapping": mapping}],
        "enabled": row["enabled"],
        "status": "active" if row["enabled"] and ref is not None else "inactive",
        "pausedReason": None,
        "pausedMessage": None,
        "sampling": row["sampling"],
        "target": row["target"],
        "filter": row["filter"],
        "mapping": mapping or [],
        "createdAt": d.ts_out(row["created_at"]),
        "updatedAt": d.ts_out(row["updated_at"]),
    }
