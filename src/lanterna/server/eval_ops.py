"""Evaluation operations shared by the API (``api/evaluations.py``) and the settings
page (``ui/evaluations_page.py``): LLM connections sealed and stored, evaluators and
rules checked against what the project holds, then stored."""

from __future__ import annotations

import uuid
from typing import Any

from ..errors import DomainError
from ..evaluation.connections import check_connection, seal
from ..evaluation.definitions import check_evaluator, check_rule, check_rule_mapping
from ..store.db import Conn
from ..store.filters import conditions_of
from ..store.interface import Evaluations
from .errors import ApiError
from .eval_shapes import connection_json, evaluator_json, rule_json
from .runtime import Runtime


class PreflightFailed(DomainError):
    """422: the evaluator names an LLM connection the project does not have."""

    status = 422
    error = "evaluator_preflight_failed"


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
    conn: Conn, store: Evaluations, project_id: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """A rule's stored fields with its evaluator looked up by name and its filter and
    mapping checked against it (400 naming what is wrong)."""
    out = dict(fields)
    name = out.pop("evaluator_name", None)
    if name is not None:
        evaluator = store.evaluator_by_name(conn, project_id, name)
        if evaluator is None:
            raise ApiError(400, "Invalid request data", f"evaluator.name: no evaluator {name!r}")
        check_rule_mapping(evaluator, out.get("mapping"))
        out["evaluator_id"] = evaluator["id"]
    if "filter" in out:
        store.check_trace_filter(conn, conditions_of(out["filter"], "filter"))
    return out


async def create_rule(rt: Runtime, project_id: str, body: Any) -> dict[str, Any]:
    """Create a rule (it evaluates traces that arrive from now on); its JSON."""
    fields = check_rule(body)
    evaluations = rt.store.evaluations

    def work(conn: Conn) -> dict[str, Any]:
        row = evaluations.create_rule(
            conn, project_id, resolve_rule(conn, evaluations, project_id, fields)
        )
        evaluator = evaluations.get_evaluator(conn, project_id, row["evaluator_id"])
        return rule_json(conn.dialect, row, evaluator)

    return await rt.write(work)
