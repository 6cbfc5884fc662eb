"""The project's data: export (JSONL, CSV, Parquet with the trace list's filters, for
every member), and for admins and owners deleting a user's or a session's data, the
masking rules, and the audit log page (``/project/{id}/audit``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ... import _json
from ...errors import InvalidInput
from ...ingest.masking import BUILTINS, check_rules
from ...lifecycle.deletion import delete_session, delete_user
from ..audit import audit
from ..export import streamed
from .web import Page, UiError, page_form, project_page, redirect, render, rt_of

router = APIRouter()
AUDIT_PAGE = 50


async def _render(request: Request, page: Page, *, status: int = 200, **extra: Any) -> Response:
    rt = rt_of(request)
    rules = await rt.read(lambda c: rt.store.masking.get_rules(c, page.pid))
    context = {
        "rules_text": _json.dumps(rules) if rules else "[]",
        "builtins": list(BUILTINS),
        "deleted": None,
        "error": "",
        **extra,
    }
    return render(request, "data.html", context, page=page, status=status)


@router.get("/project/{project_id}/data")
async def data_page(request: Request, project_id: str) -> Response:
    """Export forms; deletion and masking for admins and owners."""
    page = await project_page(request, project_id)
    return await _render(request, page)


@router.get("/project/{project_id}/data/export")
async def export(request: Request, project_id: str) -> Response:
    """The export as a download (the query string as ``GET /api/public/export``)."""
    page = await project_page(request, project_id)
    rt = rt_of(request)
    return streamed(rt.store, rt.read_sync, page.pid, request.query_params, rt.blobs.read)


@router.post("/project/{project_id}/data/delete")
async def delete_data(request: Request, project_id: str) -> Response:
    """Delete a user's or a session's data (typed id confirmed); the counts shown."""
    page, form = await page_form(request, project_id, "manage_project")
    what, target = form.get("what"), form.get("id")
    if what not in ("user", "session"):
        raise UiError(400, "Choose a user or a session.")
    if not target or form.get("confirm") != target:
        return await _render(
            request, page, status=400, error="Type the id again to confirm the deletion."
        )
    rt = rt_of(request)
    run = delete_user if what == "user" else delete_session
    gone = await run_in_threadpool(
        run, rt.store, rt.read_sync, rt.writer.run_sync, page.pid, target
    )
    await run_in_threadpool(rt.purge_media_sync)  # media whose last trace went
    await audit(rt, page, f"{what}.delete", target, gone.as_json())
    return await _render(request, page, deleted={"what": what, "id": target, **gone.as_json()})


@router.post("/project/{project_id}/data/masking")
async def save_masking(request: Request, project_id: str) -> Response:
    """Replace the masking rules with the JSON list in the form."""
    page, form = await page_form(request, project_id, "manage_project")
    text = form.raw("rules") or "[]"
    try:
        rules = check_rules(_json.loads(text))
    except _json.JSONDecodeError:
        return await _render(request, page, status=400, error="Rules: not JSON.", rules_text=text)
    except InvalidInput as exc:
        return await _render(request, page, status=400, error=str(exc), rules_text=text)
    rt = rt_of(request)
    await rt.write(lambda c: rt.store.masking.set_rules(c, page.pid, rules))
    rt.store.masking.forget(page.pid)
    await audit(rt, page, "masking.update", None, {"rules": len(rules)})
    return redirect(f"/project/{page.pid}/data#masking")


@router.get("/project/{project_id}/audit")
async def audit_page(request: Request, project_id: str) -> Response:
    """Who changed what, newest first (admins and owners)."""
    page = await project_page(request, project_id)
    if not page.can("manage_project"):
        raise UiError(403, "The audit log is for admins and owners.")
    action = request.query_params.get("action") or None
    try:
        number = min(max(1, int(request.query_params.get("page", "1"))), 1_000_000)
    except ValueError:
        number = 1
    rt = rt_of(request)

    def read(c: Any) -> tuple[list[dict[str, Any]], int]:
        return rt.store.audit.page_entries(
            c, page.pid, limit=AUDIT_PAGE, offset=(number - 1) * AUDIT_PAGE, action=action
        )

    entries, total = await rt.read(read)
    for e in entries:
        e["detail_text"] = _json.dumps(e["detail"]) if e["detail"] else ""
    context = {
        "entries": entries,
        "total": total,
        "number": number,
        "pages": max(1, -(-total // AUDIT_PAGE)),
        "action": action or "",
    }
    return render(request, "audit.html", context, page=page)
