"""A small OpenID Connect provider on loopback for the single sign-on tests.

Discovery, JWKS, authorization and token endpoints of the authorization-code flow with
PKCE (S256 only), issuing RS256 ID tokens signed with a key generated at start. The
authorization endpoint signs in ``user`` at once (no login form: the person is the
test) and redirects back with a code. The token endpoint checks the client's id and
secret, the code, the redirect URI and the PKCE verifier against the challenge, as a
real provider does. Knobs for the refusal tests: ``expires_in`` (negative: an already
expired token) and ``sign_with`` (another key: a wrongly signed token).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "lanterna-test"
CLIENT_SECRET = "provider-client-secret-1234"


@dataclass
class Provider:
    """The provider's state: who signs in, issued codes, what was asked."""

    issuer: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "k1"}))
    user: dict[str, Any] = field(
        default_factory=lambda: {"sub": "alice-1", "email": "alice@example.com", "name": "Alice"}
    )
    expires_in: int = 300
    sign_with: RSAKey | None = None
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def id_token(self, nonce: str | None) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + self.expires_in,
            "email_verified": True,
            **self.user,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        key = self.sign_with or self.key
        return jwt.encode({"alg": "RS256", "kid": key.kid or "k1"}, claims, key)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                base = provider.issuer
                self._json(
                    200,
                    {
                        "issuer": base,
                        "authorization_endpoint": base + "/authorize",
                        "token_endpoint": base + "/token",
                        "jwks_uri": base + "/jwks",
                        "response_types_supported": ["code"],
                        "subject_types_supported": ["public"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "code_challenge_methods_supported": ["S256"],
                    },
                )
            elif url.path == "/jwks":
                self._json(200, {"keys": [provider.key.as_dict(private=False)]})
            elif url.path == "/authorize":
                provider.authorize_requests.append(query)
                if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
                    self._json(400, {"error": "invalid_request"})
                    return
                if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
                    self._json(400, {"error": "invalid_request", "error_description": "PKCE"})
                    return
                code = secrets.token_urlsafe(16)
                provider.codes[code] = query
                target = (
                    query["redirect_uri"]
                    + "?"
                    + urlencode({"code": code, "state": query.get("state", "")})
                )
                self.send_response(302)
                self.send_header("Location", target)
                self.end_headers()
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if urlsplit(self.path).path != "/token":
                self._json(404, {"error": "not_found"})
                return
            provider.token_requests.append(form)
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                self._json(401, {"error": "invalid_client"})
                return
            asked = provider.codes.pop(form.get("code", ""), None)
            if asked is None or form.get("redirect_uri") != asked["redirect_uri"]:
                self._json(400, {"error": "invalid_grant"})
                return
            if _s256(form.get("code_verifier", "")) != asked["code_challenge"]:
                self._json(400, {"error": "invalid_grant", "error_description": "PKCE"})
                return
            self._json(
                200,
                {
                    "access_token": secrets.token_urlsafe(16),
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": provider.id_token(asked.get("nonce")),
                },
            )

    return Handler


@contextmanager
def oidc_provider() -> Iterator[Provider]:
    """The provider, serving on a free loopback port until the block ends."""
    provider = Provider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
