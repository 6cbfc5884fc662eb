"""Single sign-on pages: start an OpenID Connect login, and its callback (server/sso.py
does the protocol; this module the browser's side: cookies, the session, the audit)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ...accounts import identities
from ...accounts import store as accounts
from ...store.db import Conn
from .. import sso
from .web import LOGIN_CSRF_COOKIE, SESSION_COOKIE, UiError, rt_of, safe_next, set_cookie

router = APIRouter()


def _callback(request: Request) -> str:
    return sso.redirect_uri(rt_of(request).settings, str(request.base_url))


@router.get("/login/sso")
async def sso_start(request: Request) -> Response:
    """Send the browser to the provider with a fresh state, nonce and PKCE challenge."""
    rt = rt_of(request)
    if not sso.enabled(rt.settings):
        raise UiError(404, "Single sign-on is not set up on this server.")
    next_url = safe_next(request.query_params.get("next"))
    url, cookie = await sso.start(rt, _callback(request), next_url)
    response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
    set_cookie(request, response, sso.FLOW_COOKIE, cookie, sso.FLOW_SECONDS)
    return response


@router.get(sso.CALLBACK_PATH)
async def sso_callback(request: Request) -> Response:
    """Finish the login: state, token, ID token checked; the account found or made
    (email domain, auto-join); a session started."""
    rt = rt_of(request)
    settings = rt.settings
    if not sso.enabled(settings):
        raise UiError(404, "Single sign-on is not set up on this server.")
    flow = sso.open_flow(rt, request.cookies.get(sso.FLOW_COOKIE, ""))
    params = dict(request.query_params)
    claims = await sso.finish(rt, _callback(request), flow, params)
    email = accounts.normalize_email(claims["email"])
    if not identities.email_allowed(email, settings.oidc_allowed_domains):
        raise UiError(403, "Accounts of your email domain may not sign in to this server.")
    name = claims.get("name") if isinstance(claims.get("name"), str) else None
    days = settings.session_days
    issuer = str(claims["iss"])

    def enter(c: Conn) -> str:
        signed = identities.sign_in(
            c,
            issuer,
            str(claims["sub"]),
            email,
            name,
            auto_join_org=settings.oidc_auto_join_org,
            role=settings.oidc_default_role,
        )
        accounts.record_login(c, signed.user["id"])
        for project_id in signed.joined:
            rt.store.audit.record(
                c,
                project_id,
                f"sso:{issuer}",
                "member.add",
                email,
                {"role": settings.oidc_default_role, "via": "single sign-on"},
            )
        return accounts.create_session(c, signed.user["id"], days)

    token = await rt.write(enter)
    target = safe_next(str(flow.get("next", "/")))
    response = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
    set_cookie(request, response, SESSION_COOKIE, token, days * 86400)
    response.delete_cookie(sso.FLOW_COOKIE, path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response
