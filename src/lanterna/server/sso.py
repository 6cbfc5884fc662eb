"""OpenID Connect single sign-on for the web UI: the authorization-code flow with PKCE.

``GET /login/sso`` starts a login: a fresh ``state``, ``nonce`` and PKCE verifier go
into a short-lived cookie sealed with the server key (so any process sharing the key
can finish the login), and the browser is sent to the provider's authorization
endpoint (found by discovery from ``oidc_issuer``) with the S256 code challenge.
``GET /login/sso/callback`` finishes it: the ``state`` must equal the cookie's (a
mismatch gets a clear error page), the code is exchanged for tokens with the verifier
and the client secret, and the ID token must be signed by a key of the provider's JWKS
(RS256/ES256/PS256 family), name the issuer and our client id, be unexpired and carry
the cookie's nonce. Then ``accounts/identities.py`` finds or makes the account and a
normal UI session starts.

The OAuth client (authorization URL, PKCE challenge, token request) is authlib's; the
ID token is checked with joserfc (authlib's JOSE library).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from .. import _json
from ..alerts.secretbox import SecretKeyError
from ..errors import DomainError
from .channel_ops import box_of
from .runtime import Runtime
from .settings import Settings

if TYPE_CHECKING:  # authlib and joserfc load on the first sign-in (a slower start else)
    from authlib.integrations.httpx_client import AsyncOAuth2Client
    from joserfc.jwk import KeySet

log = logging.getLogger("lanterna.sso")

#: The cookie that carries a login in progress (state, nonce, verifier), sealed.
FLOW_COOKIE = "lanterna_sso"
FLOW_SECONDS = 600
CALLBACK_PATH = "/login/sso/callback"
#: Signature algorithms an ID token may use (never ``none``, never HMAC with the secret).
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
#: Clock skew tolerated on ``exp``/``iat``, in seconds.
LEEWAY = 60
_CONTEXT = "sso-login"
_BAD_SIGNATURE = "The ID token's signature is not the provider's: sign-in refused."


class SsoError(DomainError):
    """A single sign-on that cannot complete; the message is shown on the error page."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message, status=status)


@dataclass
class Provider:
    """What discovery says about the provider, and its signing keys."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    keys: KeySet | None = None
    fetched: float = field(default_factory=time.monotonic)


def enabled(settings: Settings) -> bool:
    """True when single sign-on is configured."""
    return bool(settings.oidc_issuer)


def redirect_uri(settings: Settings, request_base: str) -> str:
    """The callback URL: under ``public_url`` when set, else under the URL the
    browser used (register it at the provider)."""
    base = settings.public_url.rstrip("/") if settings.public_url else request_base.rstrip("/")
    return base + CALLBACK_PATH


async def _get_json(client: httpx.AsyncClient, url: str, what: str) -> dict[str, Any]:
    try:
        response = await client.get(url, timeout=15)
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("single sign-on: %s (%s) could not be read: %s", what, url, exc)
        raise SsoError(
            "The single sign-on provider could not be reached; try again later.", 502
        ) from None
    if not isinstance(data, dict):
        raise SsoError(f"The single sign-on provider's {what} is not a JSON object.", 502)
    return data


async def provider(rt: Runtime, *, refresh_keys: bool = False) -> Provider:
    """The provider's endpoints (discovery, cached for an hour) and keys (JWKS, fetched
    again when asked: a token signed by a key not seen yet)."""
    cached: Provider | None = getattr(rt, "_sso_provider", None)
    issuer = rt.settings.oidc_issuer.rstrip("/")
    async with httpx.AsyncClient() as client:
        if cached is None or time.monotonic() - cached.fetched > 3600:
            meta = await _get_json(
                client, issuer + "/.well-known/openid-configuration", "discovery document"
            )
            if str(meta.get("issuer", "")).rstrip("/") != issuer:
                raise SsoError(
                    "The single sign-on provider's discovery document names another issuer"
                    " than LANTERNA_OIDC_ISSUER.",
                    502,
                )
            try:
                cached = Provider(
                    issuer=str(meta["issuer"]),
                    authorization_endpoint=str(meta["authorization_endpoint"]),
                    token_endpoint=str(meta["token_endpoint"]),
                    jwks_uri=str(meta["jwks_uri"]),
                )
            except KeyError as exc:
                raise SsoError(
                    f"The single sign-on provider's discovery document lacks {exc.args[0]}.", 502
                ) from None
        if cached.keys is None or refresh_keys:
            from joserfc.errors import JoseError
            from joserfc.jwk import KeySet

            try:
                cached.keys = KeySet.import_key_set(
                    await _get_json(client, cached.jwks_uri, "key set")  # type: ignore[arg-type]
                )
            except (JoseError, ValueError, TypeError, KeyError):
                raise SsoError(
                    "The single sign-on provider's key set cannot be read.", 502
                ) from None
    rt._sso_provider = cached  # type: ignore[attr-defined]
    return cached


def _client(settings: Settings, callback: str) -> AsyncOAuth2Client:
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    return AsyncOAuth2Client(
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        scope=settings.oidc_scopes,
        redirect_uri=callback,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",
    )


async def start(rt: Runtime, callback: str, next_url: str) -> tuple[str, str]:
    """``(authorization URL, sealed flow cookie)`` of a new login."""
    from authlib.common.security import generate_token

    found = await provider(rt)
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    async with _client(rt.settings, callback) as client:
        url, _ = client.create_authorization_url(
            found.authorization_endpoint, state=state, code_verifier=verifier, nonce=nonce
        )
    flow = {"state": state, "nonce": nonce, "verifier": verifier, "next": next_url}
    flow["at"] = int(time.time())
    return url, box_of(rt).seal(_json.dumps(flow), _CONTEXT)


def open_flow(rt: Runtime, cookie: str) -> dict[str, Any]:
    """The login in progress that the cookie holds; an error page without one."""
    if not cookie:
        raise SsoError(
            "This sign-in was not started from this browser (or took longer than"
            " 10 minutes). Start again from the login page."
        )
    try:
        flow = _json.loads(box_of(rt).open(cookie, _CONTEXT))
    except (SecretKeyError, ValueError):
        raise SsoError(
            "This sign-in's state cannot be read. Start again from the login page."
        ) from None
    if not isinstance(flow, dict) or int(flow.get("at", 0)) + FLOW_SECONDS < time.time():
        raise SsoError("This sign-in took too long. Start again from the login page.")
    return flow


async def finish(
    rt: Runtime, callback: str, flow: dict[str, Any], params: dict[str, str]
) -> dict[str, Any]:
    """The checked claims of the ID token the callback's code buys: the state must
    match the flow's, then the token exchange (PKCE verifier, client secret), then
    the ID token's signature, issuer, audience, expiry and nonce."""
    if params.get("error"):
        raise SsoError(
            "The single sign-on provider refused the sign-in: "
            + (params.get("error_description") or params["error"])[:300]
        )
    if not params.get("state") or params["state"] != flow.get("state"):
        raise SsoError(
            "The sign-in's state does not match the one this browser started with, so it"
            " was refused (a forged or replayed link). Start again from the login page."
        )
    if not params.get("code"):
        raise SsoError("The single sign-on provider sent no authorization code.")
    found = await provider(rt)
    async with _client(rt.settings, callback) as client:
        try:
            token = await client.fetch_token(
                found.token_endpoint,
                code=params["code"],
                code_verifier=flow["verifier"],
                redirect_uri=callback,
                grant_type="authorization_code",
            )
        except Exception as exc:  # authlib raises OAuthError or httpx errors
            log.warning("single sign-on: the token request failed: %s", type(exc).__name__)
            raise SsoError(
                "The single sign-on provider did not issue a token for this code."
            ) from None
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise SsoError("The single sign-on provider returned no ID token.")
    return await check_id_token(rt, found, id_token, str(flow.get("nonce", "")))


async def check_id_token(rt: Runtime, found: Provider, id_token: str, nonce: str) -> dict[str, Any]:
    """The ID token's claims once its signature, issuer, audience, expiry and nonce
    are right; :class:`SsoError` otherwise."""
    from joserfc import jwt
    from joserfc.errors import InvalidKeyIdError, JoseError

    assert found.keys is not None
    try:
        try:
            decoded = jwt.decode(id_token, found.keys, algorithms=ALGORITHMS)
        except InvalidKeyIdError:  # a key not seen yet: the provider may have rotated
            found = await provider(rt, refresh_keys=True)
            assert found.keys is not None
            decoded = jwt.decode(id_token, found.keys, algorithms=ALGORITHMS)
    except (JoseError, ValueError):
        raise SsoError(_BAD_SIGNATURE) from None
    claims = decoded.claims
    registry = jwt.JWTClaimsRegistry(
        leeway=LEEWAY,
        iss={"essential": True, "value": found.issuer},
        aud={"essential": True, "value": rt.settings.oidc_client_id},
        exp={"essential": True},
        sub={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        if "expired" in str(exc).lower() or getattr(exc, "error", "") == "expired_token":
            raise SsoError("The ID token has expired: sign-in refused. Try again.") from None
        raise SsoError(f"The ID token was refused ({exc.error}).") from None
    several = isinstance(claims.get("aud"), list) and len(claims["aud"]) > 1
    if several and claims.get("azp") != rt.settings.oidc_client_id:
        raise SsoError("The ID token was issued to another client: sign-in refused.")
    if not isinstance(claims.get("email"), str) or "@" not in claims["email"]:
        raise SsoError(
            "The single sign-on provider sent no email address: ask for the email scope."
        )
    if claims.get("email_verified") is False:
        raise SsoError("Your email address is not verified at the single sign-on provider.")
    return dict(claims)


def login_button(settings: Settings, next_url: str) -> str:
    """The link that starts a single sign-on from the login page."""
    return "/login/sso?next=" + quote(next_url, safe="")
