"""OpenID Connect single sign-on: a real browser logs in through a local provider
(authorization code with PKCE); a forged state, an expired or wrongly signed ID token,
an email of another domain and password logins (when turned off) are refused."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import RSAKey

import support
from conftest import in_transaction, shot
from oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, oidc_provider
from support import LiveServer, new_project, serve

support.SECRETS.add(CLIENT_SECRET)


@contextmanager
def sso_server(
    db_url: str, tmp_path: Path, **overrides: Any
) -> Iterator[tuple[LiveServer, Provider, str, str]]:
    """A live server whose single sign-on is the local provider, and the id of a
    project in the organization new people join (as members)."""
    joined = new_project(db_url, "Joined Project")
    org = in_transaction(
        db_url, lambda c: c.scalar("SELECT org_id FROM projects WHERE id = ?", (joined.id,))
    )
    with oidc_provider() as provider:
        settings = {
            "oidc_issuer": provider.issuer,
            "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": CLIENT_SECRET,
            "oidc_display_name": "Example ID",
            "oidc_auto_join_org": org,
            "oidc_default_role": "member",
            **overrides,
        }
        with serve(db_url, tmp_path, **settings) as server:
            yield server, provider, joined.id, org


def memberships(db_url: str, email: str) -> dict[str, str]:
    """The user's organisation roles."""
    rows = in_transaction(
        db_url,
        lambda c: c.all(
            "SELECT m.org_id, m.role FROM org_memberships m JOIN users u ON u.id = m.user_id"
            " WHERE u.email = ?",
            (email,),
        ),
    )
    return {r["org_id"]: r["role"] for r in rows}


def test_browser_login_through_the_provider_with_pkce(
    db_url: str, tmp_path: Path, page: Any
) -> None:
    with sso_server(db_url, tmp_path) as (server, provider, joined, org):
        page.goto(server.url + "/login")
        shot(page, "login-with-single-sign-on")
        page.get_by_role("link", name="Log in with Example ID").click()
        page.wait_for_url(f"**/project/{joined}/traces**")
        assert "Joined Project" in page.content()
        # The flow really was the code flow with PKCE: the provider checked the verifier.
        asked = provider.authorize_requests[-1]
        assert asked["code_challenge_method"] == "S256"
        assert asked["nonce"] and asked["state"] and asked["scope"] == "openid email profile"
        assert provider.token_requests[-1]["code_verifier"]
        # The new account joined the organization with the default role.
        assert memberships(db_url, "alice@example.com") == {org: "member"}
        audit = in_transaction(
            db_url,
            lambda c: c.all(
                "SELECT actor, action, target FROM audit_log WHERE project_id = ?", (joined,)
            ),
        )
        assert {
            "actor": f"sso:{provider.issuer}",
            "action": "member.add",
            "target": "alice@example.com",
        } in audit
        # The second login finds the same account (by subject), no second membership.
        page.context.clear_cookies()
        page.goto(server.url + "/login")
        page.get_by_role("link", name="Log in with Example ID").click()
        page.wait_for_url(f"**/project/{joined}/traces**")
        assert memberships(db_url, "alice@example.com") == {org: "member"}


def _start(client: httpx.Client, server: LiveServer) -> str:
    """Start a login; follow the provider's redirect; the callback URL it sends back."""
    started = client.get(server.url + "/login/sso")
    assert started.status_code == 303, started.text
    authorize = client.get(started.headers["location"])
    assert authorize.status_code == 302, authorize.text
    return str(authorize.headers["location"])


def test_a_forged_state_is_refused_with_a_clear_page(db_url: str, tmp_path: Path) -> None:
    with sso_server(db_url, tmp_path) as (server, provider, _joined, _org):
        with httpx.Client() as client:
            callback = _start(client, server)
            forged = callback.split("&state=")[0] + "&state=forged-by-someone"
            answer = client.get(forged)
            assert answer.status_code == 400
            assert "state does not match" in answer.text
            assert "lanterna_session" not in client.cookies
            assert not provider.token_requests  # the code was never even exchanged
        # A callback in a browser that never started a login is refused too.
        with httpx.Client() as stranger:
            answer = stranger.get(callback)
            assert answer.status_code == 400
            assert "not started from this browser" in answer.text


@pytest.mark.parametrize("fault", ["expired", "wrong key", "other domain"])
def test_bad_id_tokens_are_refused(db_url: str, tmp_path: Path, fault: str) -> None:
    with sso_server(db_url, tmp_path, oidc_allowed_domains="example.com") as (
        server,
        provider,
        _joined,
        _org,
    ):
        if fault == "expired":
            provider.expires_in = -3600  # expired an hour ago (past any clock leeway)
        elif fault == "wrong key":
            provider.sign_with = RSAKey.generate_key(2048, {"kid": "k1"})
        else:
            provider.user = {**provider.user, "email": "mallory@elsewhere.test"}
        with httpx.Client() as client:
            answer = client.get(_start(client, server))
            expected = {
                "expired": (400, "expired"),
                "wrong key": (400, "signature is not the provider"),
                "other domain": (403, "email domain may not sign in"),
            }[fault]
            assert (answer.status_code, expected[1] in answer.text) == (expected[0], True), (
                answer.text
            )
            assert "lanterna_session" not in client.cookies
        assert memberships(db_url, "alice@example.com") == {}


def test_password_login_can_be_turned_off(db_url: str, tmp_path: Path) -> None:
    with (
        sso_server(db_url, tmp_path, password_login=False) as (server, _p, _j, _o),
        httpx.Client(cookies={"lanterna_login_csrf": "t"}) as client,
    ):
        login = client.get(server.url + "/login")
        assert "Log in with Example ID" in login.text
        assert 'type="password"' not in login.text
        answer = client.post(
            server.url + "/login",
            data={"email": "a@example.com", "password": "x", "csrf_token": "t"},
        )
        assert answer.status_code == 403
        assert "Password login is turned off" in answer.text


def test_sso_settings_are_checked(tmp_path: Path, monkeypatch: Any) -> None:
    from lanterna.server.settings import Settings, SettingsError

    base = {"data_dir": str(tmp_path)}
    with pytest.raises(SettingsError, match="LANTERNA_OIDC_CLIENT_ID"):
        Settings(**base, oidc_issuer="https://id.example.com")
    with pytest.raises(SettingsError, match="nobody could log in"):
        Settings(**base, password_login=False)
    with pytest.raises(SettingsError, match="LANTERNA_OIDC_DEFAULT_ROLE"):
        Settings(**base, oidc_default_role="god")
    monkeypatch.setenv("LANTERNA_PASSWORD_LOGIN", "maybe")
    with pytest.raises(SettingsError, match="true or false"):
        Settings.from_env(**base)
    monkeypatch.setenv("LANTERNA_PASSWORD_LOGIN", "false")
    monkeypatch.setenv("LANTERNA_OIDC_ISSUER", "https://id.example.com")
    monkeypatch.setenv("LANTERNA_OIDC_CLIENT_ID", "c")
    monkeypatch.setenv("LANTERNA_OIDC_CLIENT_SECRET", "s")
    settings = Settings.from_env(**base)
    assert settings.password_login is False
    assert "oidc_client_secret" not in repr(settings)  # never printed


def test_an_account_removed_since_is_made_again(db_url: str, tmp_path: Path) -> None:
    with sso_server(db_url, tmp_path) as (server, _provider, _joined, org):
        for _ in range(2):
            with httpx.Client() as client:
                answer = client.get(_start(client, server))
                assert answer.status_code == 303, answer.text
                assert "lanterna_session" in client.cookies
            assert memberships(db_url, "alice@example.com") == {org: "member"}

            def remove(c: Any) -> None:  # as deprovisioning does
                uid = c.scalar("SELECT id FROM users WHERE email = ?", ("alice@example.com",))
                for table in ("memberships", "org_memberships", "ui_sessions", "login_devices"):
                    c.run(f"DELETE FROM {table} WHERE user_id = ?", (uid,))
                c.run("DELETE FROM users WHERE id = ?", (uid,))

            in_transaction(db_url, remove)


def test_rotated_keys_are_fetched_again_and_unknown_ones_refused(
    db_url: str, tmp_path: Path
) -> None:
    with sso_server(db_url, tmp_path) as (server, provider, _joined, _org):
        with httpx.Client() as client:
            assert client.get(_start(client, server)).status_code == 303  # keys cached
        provider.key = RSAKey.generate_key(2048, {"kid": "k2"})  # the provider rotates
        with httpx.Client() as client:
            assert client.get(_start(client, server)).status_code == 303
        provider.sign_with = RSAKey.generate_key(2048, {"kid": "k9"})  # a key nobody has
        with httpx.Client() as client:
            answer = client.get(_start(client, server))
            assert answer.status_code == 400 and "signature is not the provider" in answer.text
