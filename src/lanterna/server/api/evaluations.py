"""LLM connections (``/api/public/llm-connections``), evaluators and evaluation rules
(``/api/public/unstable/evaluators``, ``/api/public/unstable/evaluation-rules``), as in
Langfuse's OpenAPI spec. Keys are sealed before they are stored and never returned
(``displaySecretKey`` is masked); see docs/evaluations.md for what Lanterna adds
(deterministic evaluator types; the ``trace`` target, legacy in Langfuse) and refuses
(code evaluators)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ...evaluation.definitions import check_rule
from ...store.db import Conn
from ...store.interface import Evaluations
from .. import eval_ops as ops
from ..audit import audit
from ..auth import ProjectAdminKey, ProjectKey
from ..errors import ApiError, not_found
from ..eval_shapes import connection_json, evaluator_json, rule_json
from ..responses import JSON
from ..runtime import runtime
from .body import Deleted, json_body, ok, read_json, read_json_object
from .evaluation_models import (
    EvaluationRule,
    EvaluationRules,
    Evaluator,
    EvaluatorBody,
    Evaluators,
    LlmConnection,
    LlmConnectionBody,
    LlmConnections,
    RuleBody,
    RuleChange,
    rule_body,
)
from .params import LimitParam, Page, PageParam, page_of
from .reading import one_json, page_json

router = APIRouter()

CONNECTIONS = "/api/public/llm-connections"
EVALUATORS = "/api/public/unstable/evaluators"
RULES = "/api/public/unstable/evaluation-rules"


# --- LLM connections -------------------------------------------------------------------


@router.get(CONNECTIONS, responses=ok(LlmConnections))
async def list_connections(
    request: Request, principal: ProjectKey, page: PageParam = None, limit: LimitParam = None
) -> JSON:
    """The project's LLM connections (keys masked), by provider."""
    paging = page_of(page, limit)
    project_id = principal.project_id
    rt = runtime(request)

    def read(conn: Conn, p: Page) -> tuple[list[dict[str, Any]], int]:
        rows, total = rt.store.evaluations.page_connections(conn, project_id, p.limit, p.offset)
        return [connection_json(conn.dialect, r) for r in rows], total

    return await page_json(rt, paging, read)


@router.put(CONNECTIONS, responses=ok(LlmConnection), openapi_extra=json_body(LlmConnectionBody))
async def upsert_connection(request: Request, principal: ProjectAdminKey) -> JSON:
    """Create the connection named ``provider`` or replace its settings and key."""
    body = await read_json(request)
    rt = runtime(request)
    shown = await ops.save_connection(rt, principal.project_id, body)
    detail = {"provider": shown["provider"], "baseURL": shown["baseURL"]}
    await audit(rt, principal, "llm_connection.upsert", shown["id"], detail)
    return JSON(shown)


@router.delete(CONNECTIONS + "/{connection_id}", responses=ok(Deleted))
async def delete_connection(
    request: Request, connection_id: str, principal: ProjectAdminKey
) -> JSON:
    """Delete a connection (its sealed key goes with it)."""
    project_id = principal.project_id
    rt = runtime(request)
    removed = await rt.write(
        lambda c: rt.store.evaluations.delete_connection(c, project_id, connection_id)
    )
    if not removed:
        raise not_found(f"LLM connection {connection_id}")
    await audit(rt, principal, "llm_connection.delete", connection_id)
    return JSON({"message": "LLM connection successfully deleted"})


# --- evaluators ------------------------------------------------------------------------


# Stays in LOOSE (tests/test_openapi_fuzz.py): modelConfig.provider must name one of the
# project's LLM connections (422), a regex or JSON schema in the config must compile, a
# mapping names a variable once and a NUMERIC score's minValue is at most its maxValue:
# rules no schema states.
@router.post(EVALUATORS, responses=ok(Evaluator), openapi_extra=json_body(EvaluatorBody))
async def create_evaluator(request: Request, principal: ProjectAdminKey) -> JSON:
    """Create an evaluator, or the next version of the one with that name."""
    body = await read_json(request)
    rt = runtime(request)
    shown = await ops.create_evaluator(rt, principal.project_id, body)
    detail = {"name": shown["name"], "version": shown["version"], "type": shown["type"]}
    await audit(rt, principal, "evaluator.create", shown["id"], detail)
    return JSON(shown)


@router.get(EVALUATORS, responses=ok(Evaluators))
async def list_evaluators(
    request: Request, principal: ProjectKey, page: PageParam = None, limit: LimitParam = None
) -> JSON:
    """The latest version of each of the project's evaluators, by name."""
    paging = page_of(page, limit)
    project_id = principal.project_id
    rt = runtime(request)

    def read(conn: Conn, p: Page) -> tuple[list[dict[str, Any]], int]:
        evaluations = rt.store.evaluations
        rows, total = evaluations.page_evaluators(conn, project_id, p.limit, p.offset)
        counts = evaluations.rule_counts(conn, project_id)
        return [evaluator_json(conn.dialect, r, counts.get(r["id"], 0)) for r in rows], total

    return await page_json(rt, paging, read)


@router.get(EVALUATORS + "/{evaluator_id}", responses=ok(Evaluator))
async def get_evaluator(request: Request, evaluator_id: str, principal: ProjectKey) -> JSON:
    """The latest version of one evaluator (404 when missing)."""
    project_id = principal.project_id
    rt = runtime(request)

    def read(conn: Conn) -> dict[str, Any] | None:
        row = rt.store.evaluations.get_evaluator(conn, project_id, evaluator_id)
        if row is None:
            return None
        count = rt.store.evaluations.rule_counts(conn, project_id).get(evaluator_id, 0)
        return evaluator_json(conn.dialect, row, count)

    return await one_json(rt, read, f"Evaluator {evaluator_id}")


@router.delete(EVALUATORS + "/{evaluator_id}", responses=ok(Deleted))
async def delete_evaluator(request: Request, evaluator_id: str, principal: ProjectAdminKey) -> JSON:
    """Delete every version of an evaluator; 409 while a rule uses it."""
    project_id = principal.project_id
    rt = runtime(request)
    evaluations = rt.store.evaluations

    def work(conn: Conn) -> bool:
        used = evaluations.rule_counts(conn, project_id).get(evaluator_id, 0)
        if used:
            raise ApiError(409, f"Evaluator {evaluator_id} is used by {used} evaluation rule(s)")
        return evaluations.delete_evaluator(conn, project_id, evaluator_id)

    if not await rt.write(work):
        raise not_found(f"Evaluator {evaluator_id}")
    await audit(rt, principal, "evaluator.delete", evaluator_id)
    return JSON({"message": "Evaluator successfully deleted"})


# --- evaluation rules ------------------------------------------------------------------


# Both stay in LOOSE (tests/test_openapi_fuzz.py): the evaluator must exist in the
# project, the mapping name its variables from sources the target offers and the filter
# the target's columns, and ``evaluators`` excludes ``evaluator``/``mapping``: rules no
# schema states (a 400 naming what is wrong).
@router.post(RULES, responses=ok(EvaluationRule), openapi_extra=rule_body(RuleBody))
async def create_rule(request: Request, principal: ProjectAdminKey) -> JSON:
    """Create a rule; it evaluates the observations, traces or run items that arrive
    from now on."""
    body = await read_json_object(request)
    rt = runtime(request)
    shown = await ops.create_rule(rt, principal.project_id, body)
    detail = {"name": shown["name"], "target": shown["target"]}
    await audit(rt, principal, "evaluation_rule.create", shown["id"], detail)
    return JSON(shown)


@router.get(RULES, responses=ok(EvaluationRules))
async def list_rules(
    request: Request, principal: ProjectKey, page: PageParam = None, limit: LimitParam = None
) -> JSON:
    """The project's rules, newest first."""
    paging = page_of(page, limit)
    project_id = principal.project_id
    rt = runtime(request)
    evaluations = rt.store.evaluations

    def read(conn: Conn, p: Page) -> tuple[list[dict[str, Any]], int]:
        rows, total = evaluations.page_rules(conn, project_id, p.limit, p.offset)
        return [_rule(evaluations, conn, project_id, r) for r in rows], total

    return await page_json(rt, paging, read)


def _rule(store: Evaluations, conn: Conn, project_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """A stored rule as JSON, with its evaluator."""
    evaluator = store.get_evaluator(conn, project_id, row["evaluator_id"])
    return rule_json(conn.dialect, row, evaluator)


@router.get(RULES + "/{rule_id}", responses=ok(EvaluationRule))
async def get_rule(request: Request, rule_id: str, principal: ProjectKey) -> JSON:
    """One rule (404 when missing)."""
    project_id = principal.project_id
    rt = runtime(request)

    def read(conn: Conn) -> dict[str, Any] | None:
        row = rt.store.evaluations.get_rule(conn, project_id, rule_id)
        return None if row is None else _rule(rt.store.evaluations, conn, project_id, row)

    return await one_json(rt, read, f"Evaluation rule {rule_id}")


@router.patch(
    RULES + "/{rule_id}", responses=ok(EvaluationRule), openapi_extra=rule_body(RuleChange)
)
async def update_rule(request: Request, rule_id: str, principal: ProjectAdminKey) -> JSON:
    """Change the fields given (name, evaluator and mapping, target, enabled, sampling,
    filter)."""
    fields = check_rule(await read_json_object(request), partial=True)
    project_id = principal.project_id
    rt = runtime(request)
    evaluations = rt.store.evaluations

    def work(conn: Conn) -> dict[str, Any] | None:
        stored = evaluations.get_rule(conn, project_id, rule_id)
        if stored is None:
            return None
        changes = ops.resolve_rule(conn, rt.store, project_id, fields, stored)
        row = evaluations.update_rule(conn, project_id, rule_id, changes)
        assert row is not None
        return _rule(evaluations, conn, project_id, row)

    found = await rt.write(work)
    if found is None:
        raise not_found(f"Evaluation rule {rule_id}")
    await audit(rt, principal, "evaluation_rule.update", rule_id, {"fields": sorted(fields)})
    return JSON(found)


@router.delete(RULES + "/{rule_id}", responses=ok(Deleted))
async def delete_rule(request: Request, rule_id: str, principal: ProjectAdminKey) -> JSON:
    """Delete a rule (the scores it gave stay)."""
    project_id = principal.project_id
    rt = runtime(request)
    if not await rt.write(lambda c: rt.store.evaluations.delete_rule(c, project_id, rule_id)):
        raise not_found(f"Evaluation rule {rule_id}")
    await audit(rt, principal, "evaluation_rule.delete", rule_id)
    return JSON({"message": "Evaluation rule successfully deleted"})
