"""Evaluations in the project settings: LLM connections (keys masked), evaluators,
evaluation rules (switch on and off) and the latest runs with their errors. Everyone
with access sees them; admins and owners change them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ... import _json
from ...errors import DomainError
from ...evaluation.definitions import EVALUATOR_TYPES
from ...store.db import Conn
from .. import eval_ops as ops
from ..audit import audit
from ..eval_shapes import connection_json, evaluator_json, rule_json
from .web import Form, Page, not_found, page_form, project_page, redirect, render, rt_of

router = APIRouter()


def _base(pid: str) -> str:
    return f"/project/{pid}/settings/evaluations"


async def _render(request: Request, page: Page, *, status: int = 200, error: str = "") -> Response:
    rt = rt_of(request)
    evaluations = rt.store.evaluations

    def read(c: Conn) -> dict[str, Any]:
        d = c.dialect
        connections, _n = evaluations.page_connections(c, page.pid, 100, 0)
        evaluators, _n = evaluations.page_evaluators(c, page.pid, 100, 0)
        rules, _n = evaluations.page_rules(c, page.pid, 100, 0)
        counts = evaluations.rule_counts(c, page.pid)
        by_id = {e["id"]: e for e in evaluators}
        runs = evaluations.recent_runs(c, page.pid, limit=50)
        return {
            "connections": [connection_json(d, r) for r in connections],
            "evaluators": [evaluator_json(d, e, counts.get(e["id"], 0)) for e in evaluators],
            "rules": [rule_json(d, r, by_id.get(r["evaluator_id"])) for r in rules],
            "run_counts": evaluations.run_counts(c, page.pid),
            "runs": [{**r, "created_at": d.ts_out(r["created_at"])} for r in runs],
            "rule_names": {r["id"]: r["name"] for r in rules},
        }

    context = {**await rt.read(read), "error": error, "types": EVALUATOR_TYPES}
    return render(request, "evaluations.html", context, page=page, status=status)


@router.get("/project/{project_id}/settings/evaluations")
async def evaluations_page(request: Request, project_id: str) -> Response:
    """The project's LLM connections, evaluators, rules and latest runs."""
    return await _render(request, await project_page(request, project_id))


#: What a form's change answers for the audit log: action, target, detail.
Made = tuple[str, str, dict[str, Any]]


def _json_field(form: Form, name: str) -> Any:
    raw = form.raw(name).strip()
    if not raw:
        return None
    try:
        return _json.loads(raw)
    except _json.JSONDecodeError:
        raise DomainError(f"{name}: not valid JSON", status=400) from None


async def _submit(request: Request, project_id: str, make: Any) -> Response:
    """Run ``make`` (which answers the audit entry's action, target and detail) with the
    form; the page again with the error, or the page after the audited change."""
    page, form = await page_form(request, project_id, "manage_project")
    try:
        action, target, detail = await make(rt_of(request), page.pid, form)
    except DomainError as exc:
        detail = exc.body().get("error")
        message = exc.message if not isinstance(detail, str) or detail.endswith("Error") else detail
        return await _render(request, page, status=exc.status, error=message)
    await audit(rt_of(request), page, action, target, detail)
    return redirect(_base(page.pid))


@router.post("/project/{project_id}/settings/evaluations/connections")
async def save_connection(request: Request, project_id: str) -> Response:
    """Create or replace an LLM connection from the form."""

    async def make(rt: Any, pid: str, form: Form) -> Made:
        body = {
            "provider": form.get("provider"),
            "adapter": form.get("adapter") or "openai",
            "secretKey": form.raw("secret_key"),
            "baseURL": form.get("base_url") or None,
        }
        shown = await ops.save_connection(rt, pid, body)
        return "llm_connection.upsert", shown["id"], {"provider": shown["provider"]}

    return await _submit(request, project_id, make)


@router.post("/project/{project_id}/settings/evaluations/evaluators")
async def create_evaluator(request: Request, project_id: str) -> Response:
    """Create an evaluator (or its next version) from the form."""

    async def make(rt: Any, pid: str, form: Form) -> Made:
        kind = form.get("type")
        body: dict[str, Any] = {"name": form.get("name"), "type": kind}
        if kind == "llm_as_judge":
            model = {"provider": form.get("provider"), "model": form.get("model")}
            output = _json_field(form, "output")
            body.update(prompt=form.raw("prompt"), outputDefinition=output, modelConfig=model)
        else:
            body["config"] = _json_field(form, "config")
        shown = await ops.create_evaluator(rt, pid, body)
        return "evaluator.create", shown["id"], {"name": shown["name"], "type": kind}

    return await _submit(request, project_id, make)


@router.post("/project/{project_id}/settings/evaluations/rules")
async def create_rule(request: Request, project_id: str) -> Response:
    """Create an evaluation rule from the form."""

    async def make(rt: Any, pid: str, form: Form) -> Made:
        sampling = form.get("sampling") or "1"
        try:
            rate: Any = float(sampling)
        except ValueError:
            rate = sampling
        body = {"name": form.get("name"), "evaluator": {"name": form.get("evaluator")},
                "target": form.get("target") or "trace", "enabled": True, "sampling": rate,
                "filter": _json_field(form, "filter") or [],
                "mapping": _json_field(form, "mapping")}  # fmt: skip
        shown = await ops.create_rule(rt, pid, body)
        return "evaluation_rule.create", shown["id"], {"name": shown["name"]}

    return await _submit(request, project_id, make)


@router.post("/project/{project_id}/settings/evaluations/rules/{rule_id}/toggle")
async def toggle_rule(request: Request, project_id: str, rule_id: str) -> Response:
    """Switch a rule on or off."""
    page, form = await page_form(request, project_id, "manage_project")
    rt = rt_of(request)
    enabled = form.get("enabled") == "1"
    changed = await rt.write(
        lambda c: rt.store.evaluations.update_rule(c, page.pid, rule_id, {"enabled": enabled})
    )
    if changed is None:
        raise not_found("Evaluation rule")
    await audit(rt, page, "evaluation_rule.update", rule_id, {"enabled": enabled})
    return redirect(_base(page.pid))
