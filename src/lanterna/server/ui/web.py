"""What every dashboard route shares: templates, the logged-in viewer, the project and
role of a page, CSRF-checked forms, errors and redirects as HTML.

Pages are server-rendered Jinja2 templates with autoescaping on: everything a user or a
model wrote reaches the browser as escaped text. Scripts come only from ``/static``
(the Content-Security-Policy forbids inline script), so an injected ``<script>`` could
not run even if it slipped through.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ...accounts import Permission, allowed
from ...accounts import store as accounts
from ...errors import DomainError
from ...store.db import Conn
from ..media import with_media_origin
from ..runtime import Runtime, runtime
from . import fmt

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "lanterna_session"
LOGIN_CSRF_COOKIE = "lanterna_login_csrf"
MAX_FORM_BYTES = 2 * 1024 * 1024

#: Sent with every page. Inline styles are allowed (plotly and the waterfall bars set
#: them); scripts only from this origin, so injected markup cannot run script.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
        " img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none';"
        " base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Environment(
    loader=FileSystemLoader(str(HERE / "templates")),
    autoescape=select_autoescape(("html",), default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
fmt.install(templates)


class UiError(DomainError):
    """Answer with an HTML error page (:func:`error_page`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, status=status)


class Redirect(Exception):
    """Answer with a 303 to ``url`` (setting ``cookies``: name -> (value, max_age))."""

    def __init__(self, url: str, cookies: dict[str, tuple[str, int]] | None = None) -> None:
        super().__init__(url)
        self.url = url
        self.cookies = cookies or {}


def not_found(what: str = "Page") -> UiError:
    """A 404: also what a user gets for a project they are not a member of."""
    return UiError(404, f"{what} not found")


@dataclass
class Viewer:
    """The logged-in person: their user row, the session's CSRF token and cookie."""

    user: dict[str, Any]
    csrf: str
    token: str


@dataclass
class Page:
    """A page inside a project: who looks, the project, their role, their projects."""

    viewer: Viewer
    project: dict[str, Any]
    role: str
    projects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pid(self) -> str:
        """The project id."""
        return str(self.project["id"])

    def can(self, permission: Permission) -> bool:
        """True when the viewer's role holds ``permission`` here."""
        return allowed(self.role, permission)


def rt_of(request: Request) -> Runtime:
    """The server runtime."""
    return runtime(request)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or rt_of(request).settings.base_url.startswith("https")


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """A cookie scripts cannot read (HttpOnly), not sent on cross-site posts (SameSite)."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )


def _is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def viewer_of(request: Request, *, required: bool = True) -> Viewer | None:
    """The logged-in viewer; without one, a redirect to the login page (or None)."""
    rt = rt_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    user = await rt.read(lambda c: accounts.session_user(c, token)) if token else None
    if user is not None:
        if user["must_change_password"] and request.url.path not in ("/account", "/logout"):
            # A one-time or too weak password: nothing else until it is changed.
            if request.method == "GET":
                raise Redirect("/account")
            raise UiError(403, "Set a password of your own on the account page first.")
        return Viewer(user, str(user.pop("csrf_token")), token)
    if rt.settings.no_auth and _is_loopback(request):
        # --no-auth: the local user is logged in on first sight, through a real session
        # (so forms still carry a CSRF token).
        days = rt.settings.session_days

        def login_local(c: Conn) -> str:
            return accounts.create_session(c, accounts.local_user(c)["id"], days)

        new_token = await rt.write(login_local)
        raise Redirect(_here(request), {SESSION_COOKIE: (new_token, days * 86400)})
    if not required:
        return None
    if request.method == "GET":
        raise Redirect("/login?next=" + quote(_here(request), safe=""))
    raise UiError(403, "Your session has ended: log in again.")


def account_url(next_url: str) -> str:
    """The account page, going on to ``next_url`` once the password is changed."""
    target = safe_next(next_url)
    return "/account" if target in ("/", "/account") else "/account?next=" + quote(target, safe="")


def _here(request: Request) -> str:
    path = request.url.path
    return path + ("?" + request.url.query if request.url.query else "")


async def project_page(request: Request, project_id: str, need: Permission = "read") -> Page:
    """The viewer, project and role of a project page; 404 when the viewer has no access.

    A project the viewer is not a member of answers exactly like one that does not
    exist, so ids of other projects cannot be probed.
    """
    viewer = await viewer_of(request)
    assert viewer is not None
    rt = rt_of(request)

    def read(c: Conn) -> tuple[str | None, dict[str, Any] | None, list[dict[str, Any]]]:
        role = accounts.role_in(c, viewer.user, project_id)
        if role is None:
            return None, None, []
        project = rt.store.projects.get_project(c, project_id)
        return role, project, accounts.projects_of(c, viewer.user)

    role, project, projects = await rt.read(read)
    if role is None or project is None:
        raise not_found()
    page = Page(viewer, project, role, projects)
    if not page.can(need):
        raise UiError(403, "Your role in this project does not allow this.")
    return page


class Form:
    """A posted ``application/x-www-form-urlencoded`` form."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, name: str, default: str = "") -> str:
        """The first value of ``name`` (stripped of surrounding blanks), or ``default``."""
        for key, value in self.pairs:
            if key == name:
                return value.strip()
        return default

    def raw(self, name: str) -> str:
        """The first value of ``name`` exactly as sent."""
        return next((v for k, v in self.pairs if k == name), "")

    def getlist(self, name: str) -> list[str]:
        """Every non-empty value of ``name``."""
        return [v.strip() for k, v in self.pairs if k == name and v.strip()]


async def read_form(request: Request, expected_csrf: str) -> Form:
    """The posted form, after checking its CSRF token (403 without the right one)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise UiError(413, "The form is too large.")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=2000)
    except (UnicodeDecodeError, ValueError):
        raise UiError(400, "The form could not be read.") from None
    form = Form(pairs)
    sent = form.raw("csrf_token")
    if not sent or not expected_csrf or not hmac.compare_digest(sent, expected_csrf):
        raise UiError(403, "The form's CSRF token is missing or wrong: reload the page and retry.")
    return form


async def page_form(request: Request, project_id: str, need: Permission) -> tuple[Page, Form]:
    """A POST inside a project: access, permission, then the CSRF-checked form."""
    page = await project_page(request, project_id, "read")
    form = await read_form(request, page.viewer.csrf)
    if not page.can(need):
        raise UiError(403, "Your role in this project does not allow this.")
    return page, form


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    page: Page | None = None,
    viewer: Viewer | None = None,
    status: int = 200,
) -> HTMLResponse:
    """Render ``template`` with the frame's context (project, role, switcher, CSRF)."""
    if page is not None:
        viewer = page.viewer
    base = {
        "request": request,
        "path": request.url.path,
        "page": page,
        "project": page.project if page else None,
        "pid": page.pid if page else None,
        "role": page.role if page else None,
        "projects": page.projects if page else [],
        "viewer": viewer.user if viewer else None,
        "csrf": viewer.csrf if viewer else "",
        "no_auth": rt_of(request).settings.no_auth,
        "can": (page.can if page else (lambda _p: False)),
        "asset_v": _asset_version(),
    }
    html = templates.get_template(template).render({**base, **context})
    headers = SECURITY_HEADERS
    rt = rt_of(request)
    if rt.settings.media_storage == "s3" and context.get("media"):
        # Media shown on the page loads from the bucket's presigned URLs.
        headers = with_media_origin(headers, getattr(rt.blobs, "origin", ""))
    return HTMLResponse(html, status_code=status, headers=headers)


def _asset_version() -> str:
    from .static import asset_version

    return asset_version()


def redirect(url: str) -> RedirectResponse:
    """A 303 (see other) after a successful form post."""
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


async def error_page(request: Request, exc: DomainError) -> Response:
    """A domain error (e.g. :class:`UiError`) on a dashboard path, as an HTML page."""
    viewer = None
    if exc.status != 403 or "session" not in exc.message:
        try:
            viewer = await viewer_of(request, required=False)
        except (Redirect, UiError):
            viewer = None
    return render(
        request,
        "error.html",
        {"status": exc.status, "message": exc.message},
        viewer=viewer,
        status=exc.status,
    )


async def ui_redirect(request: Request, exc: Exception) -> Response:
    """Exception handler: :class:`Redirect` as a 303 with its cookies."""
    assert isinstance(exc, Redirect)
    response = redirect(exc.url)
    for name, (value, max_age) in exc.cookies.items():
        set_cookie(request, response, name, value, max_age)
    return response


def new_token() -> str:
    """A random token for a cookie or form."""
    return secrets.token_urlsafe(32)


def safe_next(value: str | None) -> str:
    """A local path to go to after login (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value
