"""Project settings: name and retention, API keys (secret shown once), members and
roles, custom model prices."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...accounts import assignable_roles, orgs
from ...accounts import store as accounts
from ...cost.prices import ModelError, check_create
from ...store.db import Conn
from ...store.interface import Store
from ..audit import audit, audit_org
from ..auth import key_cache
from ..org_auth import org_key_cache
from ..shapes import custom_json
from .web import Page, UiError, not_found, page_form, project_page, redirect, render, rt_of

router = APIRouter()


def _settings_data(store: Store, conn: Conn, page: Page) -> dict[str, Any]:
    pid = page.pid
    return {
        "keys": store.projects.list_keys(conn, pid) if page.can("manage_keys") else [],
        "org_owner": _org_owner(conn, page),
        "org_keys": (
            store.projects.list_org_keys(conn, page.project["org_id"])
            if _org_owner(conn, page)
            else []
        ),
        "members": accounts.list_members(conn, pid),
        "models": [custom_json(conn, r) for r in store.models.list_custom(conn, pid)],
        "export": store.blob_exports.of_project(conn, pid),
    }


async def _render(request: Request, page: Page, *, status: int = 200, **extra: Any) -> Response:
    rt = rt_of(request)
    data = await rt.read(lambda c: _settings_data(rt.store, c, page))
    context = {
        "new_key": None,
        "new_org_key": None,
        "new_member": None,
        "error": "",
        "section_error": "",
        "assignable": assignable_roles(page.role),
        **data,
        **extra,
    }
    return render(request, "settings.html", context, page=page, status=status)


def _base(page: Page) -> str:
    return f"/project/{page.pid}/settings"


@router.get("/project/{project_id}/settings")
async def settings(request: Request, project_id: str) -> Response:
    """The settings page (what each role may change is shown to it)."""
    page = await project_page(request, project_id)
    return await _render(request, page)


@router.post("/project/{project_id}/settings/project")
async def update_project(request: Request, project_id: str) -> Response:
    """Rename the project; set its retention in days (empty: keep forever)."""
    page, form = await page_form(request, project_id, "manage_project")
    name = form.get("name")
    raw_days = form.get("retention_days")
    error = ""
    days: int | None = None
    if not name or len(name) > 200:
        error = "Give the project a name (at most 200 characters)."
    elif raw_days:
        try:
            days = int(raw_days)
        except ValueError:
            days = 0
        if not 1 <= days <= 36500:
            error = "Retention: a number of days from 1 to 36500, or empty to keep everything."
    if error:
        return await _render(request, page, status=400, error=error)
    rt = rt_of(request)
    await rt.write(lambda c: rt.store.projects.update_project(c, page.pid, name, days))
    before = page.project.get("retention_days")
    await audit(rt, page, "project.update", page.pid, {"name": name})
    if before != days:
        await audit(rt, page, "retention.update", None, {"from": before, "to": days})
    return redirect(_base(page))


# --- API keys -------------------------------------------------------------------------


@router.post("/project/{project_id}/settings/keys")
async def create_key(request: Request, project_id: str) -> Response:
    """Create a key pair; the secret is in this response and never again."""
    page, form = await page_form(request, project_id, "manage_keys")
    note = form.get("note")[:200] or None
    rt = rt_of(request)
    key = await rt.write(lambda c: rt.store.projects.create_key(c, page.pid, note))
    await audit(rt, page, "api_key.create", key.public_key, {"note": note})
    return await _render(request, page, new_key=key)


@router.post("/project/{project_id}/settings/keys/revoke")
async def revoke_key(request: Request, project_id: str) -> Response:
    """Revoke one of this project's keys (it stops working at once on this server)."""
    page, form = await page_form(request, project_id, "manage_keys")
    key_id = form.get("key_id")
    rt = rt_of(request)
    projects = rt.store.projects

    def revoke(c: Conn) -> bool:
        # Only a key of this project: revoke_key alone matches any project's key.
        mine = {k["id"] for k in projects.list_keys(c, page.pid)}
        return key_id in mine and projects.revoke_key(c, key_id)

    if not await rt.write(revoke):
        raise not_found("API key")
    key_cache.clear()
    await audit(rt, page, "api_key.revoke", key_id)
    return redirect(_base(page) + "#keys")


# --- organisation API keys (owners) ---------------------------------------------------


def _org_owner(conn: Conn, page: Page) -> bool:
    """Whether the viewer owns the project's organisation (an instance admin does):
    an organisation key reaches every project of it, so a project owner alone may not
    make one."""
    user = page.viewer.user
    org_id = page.project["org_id"]
    return bool(user.get("is_admin")) or orgs.org_role(conn, org_id, user["id"]) == "owner"


async def _owner_form(request: Request, project_id: str) -> tuple[Page, Any]:
    """A POST of an owner of the project's organisation."""
    page, form = await page_form(request, project_id, "manage_keys")
    if not await rt_of(request).read(lambda c: _org_owner(c, page)):
        raise UiError(403, "Only owners of the organization manage organization API keys.")
    return page, form


@router.post("/project/{project_id}/settings/org-keys")
async def create_org_key(request: Request, project_id: str) -> Response:
    """Create an organisation key pair for the project's organisation (secret shown once)."""
    page, form = await _owner_form(request, project_id)
    note = form.get("note")[:200] or None
    rt = rt_of(request)
    org_id = page.project["org_id"]
    key = await rt.write(lambda c: rt.store.projects.create_org_key(c, org_id, note))
    await audit_org(rt, page, org_id, "org_api_key.create", key.public_key, {"note": note})
    return await _render(request, page, new_org_key=key)


@router.post("/project/{project_id}/settings/org-keys/revoke")
async def revoke_org_key(request: Request, project_id: str) -> Response:
    """Revoke one of the organisation's keys (it stops working at once on this server)."""
    page, form = await _owner_form(request, project_id)
    key_id = form.get("key_id")
    rt = rt_of(request)
    org_id = page.project["org_id"]
    if not await rt.write(lambda c: rt.store.projects.revoke_org_key(c, key_id, org_id)):
        raise not_found("API key")
    org_key_cache.clear()
    await audit_org(rt, page, org_id, "org_api_key.revoke", key_id)
    return redirect(_base(page) + "#org-keys")


# --- members --------------------------------------------------------------------------


@router.post("/project/{project_id}/settings/members")
async def add_member(request: Request, project_id: str) -> Response:
    """Invite by email with a role; a new account gets a one-time password shown once."""
    page, form = await page_form(request, project_id, "manage_members")
    email = accounts.normalize_email(form.get("email"))
    role = form.get("role")
    if role not in assignable_roles(page.role):
        raise UiError(403, "Your role cannot give that role.")
    if "@" not in email or len(email) > 254:
        return await _render(request, page, status=400, section_error="Enter an email address.")

    def invite(c: Conn) -> tuple[str | None, str | None]:
        user = accounts.find_user(c, email)
        # The role they have here now: a project membership, else their organisation's
        # role (an organisation owner is an owner of each of its projects). An instance
        # admin's own access does not come from it, so it is not theirs to lose.
        member = {**user, "is_admin": False} if user is not None else None
        current = accounts.role_in(c, member, page.pid) if member is not None else None
        if current is not None and current not in assignable_roles(page.role):
            return None, "That member's role is above yours."
        if (
            user is not None
            and current == "owner"
            and role != "owner"
            and not orgs.owners_besides(c, page.pid, user["id"])
        ):
            return None, "A project keeps at least one owner."
        return accounts.invite(c, email, page.pid, role), None

    password, error = await rt_of(request).write(invite)
    if error:
        return await _render(request, page, status=403, section_error=error)
    await audit(rt_of(request), page, "member.add", email, {"role": role})
    if password is None:
        return redirect(_base(page) + "#members")
    return await _render(request, page, new_member={"email": email, "password": password})


def _member_change(c: Conn, page: Page, user_id: str, new_role: str | None) -> str | None:
    """Change (or with None, remove) a membership; the reason it is refused, or None."""
    current = next((m for m in accounts.list_members(c, page.pid) if m["id"] == user_id), None)
    if current is None:
        return "not found"
    allowed_roles = assignable_roles(page.role)
    if current["role"] not in allowed_roles or (new_role and new_role not in allowed_roles):
        return "Your role cannot change that member."
    if (
        current["role"] == "owner"
        and new_role != "owner"
        and accounts.count_owners(c, page.pid) < 2
    ):
        return "A project keeps at least one owner."
    if new_role is None:
        accounts.remove_member(c, user_id, page.pid)
    else:
        accounts.set_member(c, user_id, page.pid, new_role)
    return None


@router.post("/project/{project_id}/settings/members/role")
async def change_role(request: Request, project_id: str) -> Response:
    """Change a member's role."""
    page, form = await page_form(request, project_id, "manage_members")
    user_id, role = form.get("user_id"), form.get("role")
    refused = await rt_of(request).write(lambda c: _member_change(c, page, user_id, role))
    if refused == "not found":
        raise not_found("Member")
    if refused:
        return await _render(request, page, status=403, section_error=refused)
    await audit(rt_of(request), page, "member.role", user_id, {"role": role})
    return redirect(_base(page) + "#members")


@router.post("/project/{project_id}/settings/members/remove")
async def remove_member(request: Request, project_id: str) -> Response:
    """Take a member out of the project."""
    page, form = await page_form(request, project_id, "manage_members")
    user_id = form.get("user_id")
    refused = await rt_of(request).write(lambda c: _member_change(c, page, user_id, None))
    if refused == "not found":
        raise not_found("Member")
    if refused:
        return await _render(request, page, status=403, section_error=refused)
    await audit(rt_of(request), page, "member.remove", user_id)
    return redirect(_base(page) + "#members")


# --- model prices ---------------------------------------------------------------------


@router.post("/project/{project_id}/settings/models")
async def add_model(request: Request, project_id: str) -> Response:
    """Add a custom model price (per unit, USD); it wins over built-in prices."""
    page, form = await page_form(request, project_id, "manage_project")
    body: dict[str, Any] = {
        "modelName": form.get("model_name"),
        "matchPattern": form.get("match_pattern") or None,
        "unit": form.get("unit") or "TOKENS",
    }
    # The form asks per million units (how providers quote); the store keeps per unit.
    for field, key in (("input_price", "inputPrice"), ("output_price", "outputPrice")):
        if form.get(field):
            try:
                body[key] = str(Decimal(form.get(field)) / 1_000_000)
            except InvalidOperation:
                return await _render(
                    request, page, status=400, section_error=f"{field}: enter a number"
                )
    if body["matchPattern"] is None and body["modelName"]:
        body["matchPattern"] = f"(?i)^{re.escape(body['modelName'])}$"
    try:
        fields = check_create(body)
    except ModelError as exc:
        return await _render(request, page, status=400, section_error=str(exc))
    rt = rt_of(request)
    row = await rt.write(lambda c: rt.store.models.create(c, page.pid, fields))
    await audit(rt, page, "model.create", row["id"], {"modelName": fields.get("model_name")})
    return redirect(_base(page) + "#models")


@router.post("/project/{project_id}/settings/models/delete")
async def delete_model(request: Request, project_id: str) -> Response:
    """Delete a custom model price."""
    page, form = await page_form(request, project_id, "manage_project")
    model_id = form.get("model_id")
    rt = rt_of(request)
    if not await rt.write(lambda c: rt.store.models.delete(c, page.pid, model_id)):
        raise not_found("Model")
    await audit(rt, page, "model.delete", model_id)
    return redirect(_base(page) + "#models")
