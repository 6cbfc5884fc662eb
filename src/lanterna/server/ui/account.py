"""Login, logout, the viewer's account (password), and the project switcher page."""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...accounts import LoginThrottle, hash_password, ratelimit, verify_password
from ...accounts import store as accounts
from ...accounts.passwords import check_new_password, needs_rehash
from ...store.db import Conn
from .web import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Form,
    UiError,
    account_url,
    new_token,
    read_form,
    redirect,
    render,
    rt_of,
    safe_next,
    set_cookie,
    viewer_of,
)

router = APIRouter()


@cache
def _dummy_hash() -> str:
    # Verified against when the email is unknown, so both cases take as long.
    return hash_password("not a password of anyone")


def _throttle(request: Request) -> LoginThrottle:
    state = request.app.state
    if getattr(state, "login_throttle", None) is None:
        state.login_throttle = LoginThrottle(rt_of(request).settings.login_attempts)
    throttle: LoginThrottle = state.login_throttle
    return throttle


def _login_page(
    request: Request, *, error: str = "", email: str = "", status: int = 200
) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_token()
    settings = rt_of(request).settings
    response = render(
        request,
        "login.html",
        {
            "error": error,
            "email": email,
            "login_csrf": token,
            "next": safe_next(request.query_params.get("next")),
            "password_login": settings.password_login,
            "sso_name": settings.oidc_display_name if settings.oidc_issuer else "",
        },
        status=status,
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, 3600)
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    """The login page (a logged-in viewer goes straight on)."""
    if await viewer_of(request, required=False) is not None:
        return redirect(safe_next(request.query_params.get("next")))
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check email and password; start a session; apply the failed-login limit."""
    form = await read_form(request, request.cookies.get(LOGIN_CSRF_COOKIE, ""))
    if not rt_of(request).settings.password_login:
        raise UiError(403, "Password login is turned off on this server: use single sign-on.")
    email = accounts.normalize_email(form.get("email"))
    password = form.raw("password")
    # The peer address; a proxy's X-Forwarded-For counts only when the proxy is named in
    # forwarded_allow_ips (see server/guards.py).
    client = request.client.host if request.client else "unknown"
    device = request.cookies.get(ratelimit.DEVICE_COOKIE, "")
    throttle = _throttle(request)
    rt = rt_of(request)

    def look(c: Conn) -> tuple[dict[str, Any] | None, float]:
        user = accounts.find_user(c, email)
        known = user is not None and ratelimit.is_known_device(c, user["id"], device)
        return user, throttle.retry_after(c, email, client, known=known)

    user, wait = await rt.read(look)
    if wait > 0:
        minutes = max(1, round(wait / 60))
        response = _login_page(
            request,
            error=f"Too many failed logins. Try again in {minutes} minute(s).",
            email=email,
            status=429,
        )
        response.headers["Retry-After"] = str(max(1, round(wait)))
        return response
    stored = user["password_hash"] if user else _dummy_hash()
    if user is None or not verify_password(stored, password):
        await rt.write(lambda c: throttle.failed(c, email, client))
        return _login_page(request, error="Wrong email or password.", email=email, status=401)
    rehashed = hash_password(password) if needs_rehash(stored) else None
    days = rt.settings.session_days
    # A password set before today's rules (12+ characters, not a common one) must change.
    weak = check_new_password(password) is not None

    def start(c: Conn) -> tuple[str, str | None]:
        throttle.succeeded(c, email, client)
        accounts.record_login(c, user["id"], rehashed, must_change=weak or None)
        known = ratelimit.is_known_device(c, user["id"], device)
        return accounts.create_session(c, user["id"], days), (
            None if known else ratelimit.remember_device(c, user["id"])
        )

    token, new_device = await rt.write(start)
    must_change = weak or user["must_change_password"]
    target = account_url(form.get("next")) if must_change else safe_next(form.get("next"))
    response = redirect(target)
    set_cookie(request, response, SESSION_COOKIE, token, days * 86400)
    if new_device is not None:  # a known client from now on (see accounts/ratelimit.py)
        set_cookie(
            request, response, ratelimit.DEVICE_COOKIE, new_device, ratelimit.DEVICE_DAYS * 86400
        )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session."""
    viewer = await viewer_of(request)
    assert viewer is not None
    await read_form(request, viewer.csrf)
    await rt_of(request).write(lambda c: accounts.delete_session(c, viewer.token))
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
async def home(request: Request) -> Response:
    """The first project's traces, or the projects page when there is none."""
    viewer = await viewer_of(request)
    assert viewer is not None
    mine = await rt_of(request).read(lambda c: accounts.projects_of(c, viewer.user))
    if viewer.user["must_change_password"]:
        return redirect("/account")
    if not mine:
        return redirect("/projects")
    return redirect(f"/project/{mine[0]['id']}/traces")


@router.get("/switch")
async def switch(request: Request) -> Response:
    """The project switcher without JavaScript: go to the chosen project's traces."""
    project_id = request.query_params.get("project", "")
    return redirect(f"/project/{quote(project_id, safe='')}/traces" if project_id else "/projects")


# --- account ------------------------------------------------------------------------


@router.get("/account")
async def account_page(request: Request) -> Response:
    """The viewer's account: change the password."""
    viewer = await viewer_of(request)
    assert viewer is not None
    context = await rt_of(request).read(lambda c: _account_context(c, viewer.user))
    context["next"] = _next_of(request.query_params.get("next"))
    return render(request, "account.html", {"error": "", "done": False, **context}, viewer=viewer)


def _account_context(c: Conn, user: dict[str, Any]) -> dict[str, Any]:
    return {
        "mine": accounts.projects_of(c, user),
        "lockouts": ratelimit.lockouts(c, user["email"]),
    }


def _next_of(value: str | None) -> str:
    """Where to go after a password change ("" for nowhere: stay on the account page)."""
    target = safe_next(value)
    return "" if target in ("/", "/account") or target.startswith("/account?") else target


@router.post("/account")
async def change_password(request: Request) -> Response:
    """Set a new password (the current one is required); other sessions end."""
    viewer = await viewer_of(request)
    assert viewer is not None
    form = await read_form(request, viewer.csrf)
    rt = rt_of(request)
    user_id = viewer.user["id"]
    found = await rt.read(lambda c: accounts.find_user(c, viewer.user["email"]))
    current, new, again = form.raw("current"), form.raw("new"), form.raw("again")
    error = ""
    if found is None or not verify_password(found["password_hash"], current):
        error = "The current password is wrong."
    elif new != again:
        error = "The two new passwords differ."
    else:
        error = check_new_password(new) or ""
    if not error:

        def change(c: Conn) -> None:
            accounts.set_password(c, user_id, new)
            accounts.delete_sessions_of(c, user_id, keep_token=viewer.token)

        await rt.write(change)
        viewer.user["must_change_password"] = False
        if _next_of(form.get("next")):  # sent here on the way to a page: go on there
            return redirect(_next_of(form.get("next")))
    context = await rt.read(lambda c: _account_context(c, viewer.user))
    context["next"] = _next_of(form.get("next"))
    return render(
        request,
        "account.html",
        {"error": error, "done": not error, **context},
        viewer=viewer,
        status=400 if error else 200,
    )


# --- projects -----------------------------------------------------------------------


def _orgs(projects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    orgs: dict[str, dict[str, Any]] = {}
    for p in projects:
        org = orgs.setdefault(
            p["org_id"], {"id": p["org_id"], "name": p["org_name"], "projects": []}
        )
        org["projects"].append(p)
    return list(orgs.values())


@router.get("/projects")
async def projects_page(request: Request) -> Response:
    """Organisations and projects the viewer can open; a form to create a project."""
    viewer = await viewer_of(request)
    assert viewer is not None
    mine = await rt_of(request).read(lambda c: accounts.projects_of(c, viewer.user))
    return render(request, "projects.html", _projects_context(mine, ""), viewer=viewer)


def _projects_context(mine: list[dict[str, Any]], error: str) -> dict[str, Any]:
    orgs = _orgs(mine)
    # A project can be made in an organisation where the viewer is owner or admin.
    creatable = [o for o in orgs if any(p["role"] in ("owner", "admin") for p in o["projects"])]
    return {"orgs": orgs, "creatable": creatable, "error": error}


@router.post("/projects")
async def create_project(request: Request) -> Response:
    """Create a project (in one of the viewer's organisations or a new one); they own it."""
    viewer = await viewer_of(request)
    assert viewer is not None
    form: Form = await read_form(request, viewer.csrf)
    rt = rt_of(request)
    name = form.get("name")
    org_choice = form.get("org")
    new_org = form.get("new_org")
    mine = await rt.read(lambda c: accounts.projects_of(c, viewer.user))
    allowed_orgs = {o["id"] for o in _projects_context(mine, "")["creatable"]}
    error = ""
    if not name or len(name) > 200:
        error = "Give the project a name (at most 200 characters)."
    elif org_choice == "new" and (not new_org or len(new_org) > 200):
        error = "Give the new organisation a name (at most 200 characters)."
    elif org_choice != "new" and org_choice not in allowed_orgs:
        raise UiError(404, "Organisation not found")
    if error:
        return render(
            request, "projects.html", _projects_context(mine, error), viewer=viewer, status=400
        )

    projects = rt.store.projects

    def create(c: Conn) -> str:
        org_id = projects.create_organization(c, new_org) if org_choice == "new" else org_choice
        project_id = projects.create_project(c, org_id, name)
        if not viewer.user["is_admin"]:
            accounts.set_member(c, viewer.user["id"], project_id, "owner")
        return project_id

    project_id = await rt.write(create)
    return redirect(f"/project/{project_id}/settings")
