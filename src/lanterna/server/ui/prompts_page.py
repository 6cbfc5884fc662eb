"""Prompts: the list, one prompt's versions with a diff between two, labels (move
production), a new version, and per-version stats (uses, latency, cost, scores)."""

from __future__ import annotations

import difflib
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from ... import _json
from ...prompts.validate import PRODUCTION, PromptError, check_create, check_labels
from ...store.db import Conn
from ...store.interface import Prompts
from ..audit import audit
from ..shapes import prompt_meta_json, version_stats_json
from .annotate_page import comments_of
from .fmt import pretty
from .web import Form, Page, not_found, page_form, project_page, redirect, render, rt_of

router = APIRouter()
PAGE_SIZE = 50


def _metas(
    prompts: Prompts, conn: Conn, project_id: str, **query: Any
) -> tuple[list[dict[str, Any]], int]:
    """A page of prompt names as PromptMeta objects, and the total number of names."""
    groups, total = prompts.list_names(conn, project_id, **query)
    return [prompt_meta_json(conn.dialect, g) for g in groups], total


def prompt_url(project_id: str, name: str, **params: Any) -> str:
    """The page of one prompt; the name encoded whole (it may hold ``/``, even ``../``)."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"/project/{project_id}/prompts/{quote(name, safe='')}" + ("?" + query if query else "")


@router.get("/project/{project_id}/prompts")
async def prompts_list(request: Request, project_id: str) -> Response:
    """Every prompt name with its versions, labels and tags."""
    page = await project_page(request, project_id)
    try:
        number = max(1, int(request.query_params.get("page") or 1))
    except ValueError:
        number = 1
    rt = rt_of(request)
    items, total = await rt.read(
        lambda c: _metas(rt.store.prompts, c, page.pid, page=number, limit=PAGE_SIZE)
    )
    return _list_response(request, page, items, total, number, error="", form=None)


def _list_response(
    request: Request,
    page: Page,
    items: list[dict[str, Any]],
    total: int,
    number: int,
    *,
    error: str,
    form: Form | None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "prompts.html",
        {
            "items": items,
            "total": total,
            "p": {"page": number},
            "current": number,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "error": error,
            "form": form,
            "prompt_url": prompt_url,
        },
        page=page,
        status=status,
    )


def _as_lines(row: dict[str, Any]) -> list[str]:
    """A version as lines to diff: the text, or each chat message, then the config."""
    lines: list[str] = []
    if row["type"] == "chat":
        for message in row["prompt"]:
            if message.get("type") == "placeholder":
                lines.append(f"[placeholder: {message.get('name')}]")
            else:
                lines.append(f"[{message.get('role')}]")
                lines.extend(str(message.get("content", "")).splitlines())
    else:
        lines.extend(str(row["prompt"]).splitlines())
    if row["config"]:
        lines.append("--- config ---")
        lines.extend(pretty(row["config"]).splitlines())
    return lines


def diff_lines(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str]]:
    """``(kind, line)`` of a unified diff from ``old`` to ``new``: add, del, hunk, same."""
    out: list[tuple[str, str]] = []
    for line in difflib.unified_diff(
        _as_lines(old),
        _as_lines(new),
        fromfile=f"version {old['version']}",
        tofile=f"version {new['version']}",
        lineterm="",
    ):
        if line.startswith(("+++", "---", "@@")):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        out.append((kind, line))
    return out


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def prompt_detail(
    prompts: Prompts, conn: Conn, project_id: str, name: str, events: Conn | None = None
) -> dict[str, Any] | None:
    """Every version of a prompt (newest first) and their stats (from the generations
    on ``events``, the store's ``events_conn``)."""
    metas, _ = _metas(prompts, conn, project_id, name=name, limit=1)
    if not metas:
        return None
    versions = []
    for number in sorted(metas[0]["versions"], reverse=True):
        row = prompts.get(conn, project_id, name, version=number)
        if row is not None:
            versions.append(row)
    stats = {
        s.version: version_stats_json(s)
        for s in prompts.version_metrics(conn, project_id, name, events=events)
    }
    return {"meta": metas[0], "versions": versions, "stats": stats}


@router.get("/project/{project_id}/prompts/{name:path}")
async def prompt_page(request: Request, project_id: str, name: str) -> Response:
    """One prompt: versions, the selected one's content, a diff, labels, stats."""
    page = await project_page(request, project_id)
    rt = rt_of(request)

    def read(c: Conn) -> dict[str, Any] | None:
        found = prompt_detail(rt.store.prompts, c, page.pid, name, rt.store.events_conn(c))
        if found is not None:  # comments are per version (its id)
            found["comments"] = {
                v["id"]: comments_of(rt.store, c, page.pid, "PROMPT", v["id"])
                for v in found["versions"]
            }
        return found

    found = await rt.read(read)
    if found is None:
        raise not_found("Prompt")
    return _prompt_response(request, page, name, found, error="", form=None)


def _prompt_response(
    request: Request,
    page: Page,
    name: str,
    found: dict[str, Any],
    *,
    error: str,
    form: Form | None,
    status: int = 200,
) -> Response:
    versions = found["versions"]
    by_number = {v["version"]: v for v in versions}
    q = request.query_params
    selected = by_number.get(_int(q.get("version")) or 0) or next(
        (v for v in versions if PRODUCTION in v["labels"]), versions[0]
    )
    older = [v["version"] for v in versions if v["version"] < selected["version"]]
    newer = [v["version"] for v in versions if v["version"] > selected["version"]]
    # By default: what changed since the previous version (or, for the first, what the
    # next one changed).
    base_number = _int(q.get("diff")) or (older[0] if older else (newer[-1] if newer else None))
    base = by_number.get(base_number) if base_number != selected["version"] else None
    return render(
        request,
        "prompt.html",
        {
            "name": name,
            "meta": found["meta"],
            "versions": versions,
            "selected": selected,
            "base": base,
            "diff": diff_lines(base, selected) if base else [],
            "stats": found["stats"],
            "prompt_url": prompt_url,
            "error": error,
            "form": form,
            "content_text": selected["prompt"] if selected["type"] == "text" else "",
            "content_json": "" if selected["type"] == "text" else pretty(selected["prompt"]),
            "config_json": pretty(selected["config"]) if selected["config"] else "",
            "comments": found.get("comments", {}).get(selected["id"], []),
            "here": prompt_url(page.pid, name, version=selected["version"]),
        },
        page=page,
        status=status,
    )


def _new_version_body(form: Form) -> dict[str, Any]:
    """The API body of a prompt create from the form; PromptError if a field is bad."""
    kind = form.get("type", "text")
    raw = form.raw("prompt").replace("\r\n", "\n")
    content: Any = raw
    if kind == "chat":
        try:
            content = _json.loads(raw)
        except _json.JSONDecodeError:
            raise PromptError(
                'prompt: a chat prompt is a JSON list like [{"role": "system", "content": "..."}]'
            ) from None
    config: Any = {}
    if form.get("config"):
        try:
            config = _json.loads(form.raw("config"))
        except _json.JSONDecodeError:
            raise PromptError("config: not valid JSON") from None
        if not isinstance(config, dict):
            raise PromptError("config: a JSON object")
    labels = [x.strip() for x in form.get("labels").split(",") if x.strip()]
    if form.get("production"):
        labels.append(PRODUCTION)
    return {
        "name": form.get("name"),
        "type": kind,
        "prompt": content,
        "config": config,
        "labels": labels,
        "commitMessage": form.get("commit_message") or None,
    }


@router.post("/project/{project_id}/prompt-versions")
async def create_version(request: Request, project_id: str) -> Response:
    """Create a prompt (its first version) or a new version of one."""
    page, form = await page_form(request, project_id, "edit_prompts")
    rt = rt_of(request)
    prompts = rt.store.prompts
    name = form.get("name")
    author = page.viewer.user["email"]
    try:
        new = check_create(_new_version_body(form))
        row = await rt.write(lambda c: prompts.create(c, page.pid, new, created_by=author))
    except PromptError as exc:
        found = (
            await rt.read(
                lambda c: prompt_detail(prompts, c, page.pid, name, rt.store.events_conn(c))
            )
            if name
            else None
        )
        if found is None:
            items, total = await rt.read(
                lambda c: _metas(prompts, c, page.pid, page=1, limit=PAGE_SIZE)
            )
            return _list_response(
                request, page, items, total, 1, error=str(exc), form=form, status=400
            )
        return _prompt_response(request, page, name, found, error=str(exc), form=form, status=400)
    await audit(rt, page, "prompt.create", row["name"], {"version": row["version"]})
    return redirect(prompt_url(page.pid, row["name"], version=row["version"]))


async def _label_refused(request: Request, page: Page, name: str, exc: PromptError) -> Response:
    """The prompt's page again, with why the label was refused (400)."""
    rt = rt_of(request)
    found = await rt.read(
        lambda c: prompt_detail(rt.store.prompts, c, page.pid, name, rt.store.events_conn(c))
    )
    if found is None:
        raise not_found("Prompt") from None
    return _prompt_response(request, page, name, found, error=str(exc), form=None, status=400)


@router.post("/project/{project_id}/prompt-labels")
async def set_label(request: Request, project_id: str) -> Response:
    """Put a label (``production`` by default) on one version; it leaves the others."""
    page, form = await page_form(request, project_id, "edit_prompts")
    name = form.get("name")
    version = _int(form.get("version"))
    rt = rt_of(request)
    prompts = rt.store.prompts
    try:
        labels = check_labels([form.get("label") or PRODUCTION])
    except PromptError as exc:
        return await _label_refused(request, page, name, exc)
    if version is None:
        raise not_found("Prompt version")
    try:
        row = await rt.write(lambda c: prompts.add_labels(c, page.pid, name, version, labels))
    except PromptError as exc:  # the move would make a cycle of references
        return await _label_refused(request, page, name, exc)
    if row is None:
        raise not_found("Prompt version")
    await audit(rt, page, "prompt.labels", name, {"version": version, "labels": labels})
    return redirect(prompt_url(page.pid, name, version=version))
