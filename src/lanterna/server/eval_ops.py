"""Evaluation operations shared by the API (``api/evaluations.py``) and the settings
page (``ui/evaluations_page.py``): LLM connections sealed and stored, evaluators and
rules checked against what the project holds, then stored."""

from __future__ import annotations

import uuid
from typing import Any

from ..errors import DomainError
from ..evaluation.connections import check_connection, seal
from ..evaluation.definitions import (
    check_evaluator,
    check_rule,
    check_rule_mapping,
    check_target,
    dataset_filter,
    observation_filter,
)
from ..store.db import Conn
from ..store.filters import conditions_of
from ..store.interface import Store
from ..timeutil import now
from .errors import ApiError
from .eval_shapes import connection_json, evaluator_json, rule_json
from .runtime import Runtime


class PreflightFailed(DomainError):
    """422: the evaluator names an LLM connection the project does not have."""

    status = 422
    error = "evaluator_preflight_failed"

    def body(self) -> dict[str, Any]:
        """Langfuse's error envelope of the unstable evaluators API: ``code`` too."""
        return {**super().body(), "code": self.error}


async def save_connection(rt: Runtime, project_id: str, body: Any) -> dict[str, Any]:
    """Create or replace (by provider) a connection, its secrets sealed; its JSON."""
    fields = check_connection(body)
    box = rt.secret_box()
    evaluations = rt.store.evaluations

    def work(conn: Conn) -> dict[str, Any]:
        existing = evaluations.connection_by_provider(conn, project_id, fields["provider"])
        connection_id = str(uuid.uuid4()) if existing is None else existing["id"]
        sealed = seal(box, connection_id, fields)
        row = evaluations.upsert_connection(conn, project_id, connection_id, sealed)
        return connection_json(conn.dialect, row)

    return await rt.write(work)


async def create_evaluator(rt: Runtime, project_id: str, body: Any) -> dict[str, Any]:
    """Create an evaluator (or its next version); its JSON. 422 when its
    ``modelConfig.provider`` is not one of the project's connections."""
    fields = check_evaluator(body)
    evaluations = rt.store.evaluations

    def work(conn: Conn) -> dict[str, Any]:
        model = fields["model_config"]
        if model is not None and (
            evaluations.connection_by_provider(conn, project_id, model["provider"]) is None
        ):
            raise PreflightFailed(
                f"modelConfig.provider: the project has no LLM connection {model['provider']!r}"
                " (create it with PUT /api/public/llm-connections)"
            )
        row = evaluations.create_evaluator(conn, project_id, fields)
        count = evaluations.rule_counts(conn, project_id).get(row["id"], 0)
        return evaluator_json(conn.dialect, row, count)

    return await rt.write(work)


def resolve_rule(
    conn: Conn,
    store: Store,
    project_id: str,
    fields: dict[str, Any],
    stored: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A rule's stored fields (the changes to ``stored``, when given) with its evaluator
    looked up by name and its target, filter and mapping checked together (400 naming
    what is wrong: an observation filter on that target's columns, a trace filter on
    the trace list's columns, an experiment filter on the project's dataset ids). A
    rule moved to another target starts from now."""
    evaluations = store.evaluations
    out = dict(fields)
    name = out.pop("evaluator_name", None)
    evaluator = None
    if name is not None:
        evaluator = evaluations.evaluator_by_name(conn, project_id, name)
        if evaluator is None:
            raise ApiError(400, "Invalid request data", f"evaluator.name: no evaluator {name!r}")
        out["evaluator_id"] = evaluator["id"]
    elif stored is not None and "mapping" in out:
        evaluator = evaluations.get_evaluator(conn, project_id, stored["evaluator_id"])
    rule = {**(stored or {}), **out}
    if evaluator is not None:
        check_rule_mapping(evaluator, rule.get("mapping"))
    if {"target", "filter", "mapping"} & set(out):
        check_target(rule["target"], rule["filter"], rule.get("mapping"))
        if rule["target"] == "trace":
            evaluations.check_trace_filter(conn, conditions_of(rule["filter"], "filter"))
        elif rule["target"] == "observation":
            evaluations.check_observation_filter(conn, observation_filter(rule["filter"])[0])
        else:
            _check_datasets(conn, store, project_id, dataset_filter(rule["filter"]))
    if stored is not None and out.get("target", stored["target"]) != stored["target"]:
        out["cursor_at"], out["cursor_id"] = conn.dialect.ts(now()), ""
    return out


def _check_datasets(
    conn: Conn, store: Store, project_id: str, wanted: tuple[str, list[str]] | None
) -> None:
    """400 naming the dataset ids the project lacks."""
    ids = [] if wanted is None else wanted[1]
    missing = [i for i in ids if store.datasets.get_dataset(conn, project_id, i) is None]
    if missing:
        raise ApiError(
            400,
            "Invalid request data",
            f"filter: datasetId {', '.join(missing)} is not a dataset of the project (use the"
            " ids of GET /api/public/v2/datasets)",
        )


async def create_rule(rt: Runtime, project_id: str, body: Any) -> dict[str, Any]:
    """Create a rule (it evaluates the observations, traces or run items that arrive
    from now on); its JSON."""
    fields = check_rule(body)
    evaluations = rt.store.evaluations

    def work(conn: Conn) -> dict[str, Any]:
        row = evaluations.create_rule(
            conn, project_id, resolve_rule(conn, rt.store, project_id, fields)
        )
        evaluator = evaluations.get_evaluator(conn, project_id, row["evaluator_id"])
        return rule_json(conn.dialect, row, evaluator)

    return await rt.write(work)
