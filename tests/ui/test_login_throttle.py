"""Login throttling: guesses slow down, but nobody can lock a real user out; forwarded
headers count only from a named proxy; lockouts are logged and shown."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from conftest import PASSWORD, Browser, add_user
from lanterna.accounts import LoginThrottle
from lanterna.cli import main as cli_main
from lanterna.server.app import create_app
from support import make_settings, new_project

EMAIL = "owner@example.com"


class Clock:
    """An injected clock the test moves by hand (no sleeping)."""

    def __init__(self) -> None:
        self.at = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.at


def _db_args(db_url: str) -> list[str]:
    if db_url.startswith("sqlite:///"):
        return ["--data-dir", str(Path(db_url.removeprefix("sqlite:///")).parent)]
    return ["--database-url", db_url]


def _app(db_url: str, tmp_path: Path, clock: Clock | None = None, **settings: object):
    config = make_settings(db_url, tmp_path)
    for name, value in settings.items():
        setattr(config, name, value)
    project = new_project(db_url)
    add_user(db_url, EMAIL, {project.id: "owner"})
    app = create_app(config)
    if clock is not None:
        app.state.login_throttle = LoginThrottle(config.login_attempts, clock=clock)
    return app


def test_fifty_fast_guesses_do_not_lock_out_another_client(db_url, tmp_path):
    # A frozen clock: "fast" must not depend on how quickly this machine hashes.
    app = _app(db_url, tmp_path, Clock())
    with Browser(app, client=("192.0.2.66", 40000)) as attacker:
        codes = [attacker.login(EMAIL, f"guess number {i}") for i in range(50)]
        assert codes[:5] == [401] * 5  # then the attacker backs off, exponentially
        assert set(codes[5:]) == {429}
        assert attacker.login(EMAIL) == 429  # even the right password waits, from there
        owner = Browser(app, client=("198.51.100.7", 40000))  # another client
        assert owner.login(EMAIL) == 303


def test_guessing_for_hours_never_locks_out_a_known_client(db_url, tmp_path, caplog):
    clock = Clock()
    app = _app(db_url, tmp_path, clock)
    known = Browser(app, client=("198.51.100.7", 40000))
    with known, Browser(app, client=("192.0.2.66", 40000)) as attacker:
        assert known.login(EMAIL) == 303  # this browser now holds a device cookie
        known.post("/logout", data={"csrf_token": known.csrf("/account")})
        caplog.set_level(logging.WARNING, logger="lanterna.login")
        for i in range(50):
            clock.at += timedelta(minutes=15, seconds=1)  # each back-off has passed
            assert attacker.login(EMAIL, f"guess number {i}") == 401
        # The account is throttled for clients it does not know...
        stranger = Browser(app, client=("203.0.113.5", 40000))
        assert stranger.login(EMAIL) == 429
        # ...but its owner's browser logs in with the right password.
        assert known.login(EMAIL) == 303
        account = known.get("/account")
        assert "Recent login lockouts" in account.text and "192.0.2.66" in account.text
        logged = [r.getMessage() for r in caplog.records]
        assert any("login throttled" in m and EMAIL in m and "192.0.2.66" in m for m in logged)
        assert not any("guess number" in m for m in logged)  # never a password

        assert cli_main(["users", "unlock", EMAIL, *_db_args(db_url)]) == 0
        assert stranger.login(EMAIL) == 303


def test_unlock_of_an_unknown_account_fails(db_url, capsys):
    assert cli_main(["users", "unlock", "nobody@example.com", *_db_args(db_url)]) == 1
    assert "No account" in capsys.readouterr().err


def test_limits_are_shared_by_server_processes(db_url, tmp_path):
    """Two apps on one database (two processes' worth of state) see the same counters."""
    clock = Clock()  # frozen: the back-off after five failures (1 s) cannot pass meanwhile
    first = _app(db_url, tmp_path, clock)
    second = create_app(make_settings(db_url, tmp_path))
    second.state.login_throttle = LoginThrottle(first.state.login_throttle.attempts, clock=clock)
    one = Browser(first, client=("192.0.2.66", 40000))
    other = Browser(second, client=("192.0.2.66", 40000))
    with one, other:
        for i in range(5):
            assert one.login(EMAIL, f"guess number {i}") == 401
        assert other.login(EMAIL, "another guess") == 429


def _login(client: httpx.Client, email: str, password: str, forwarded: str) -> int:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    response = client.post(
        "/login",
        data={"csrf_token": token.group(1), "email": email, "password": password},
        headers={"X-Forwarded-For": forwarded},
    )
    return response.status_code


def test_rotating_forwarded_for_from_an_untrusted_peer_does_not_escape_the_limit(
    live_server,
):
    add_user(live_server.db_url, EMAIL, {live_server.project.id: "owner"})
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        codes = [
            _login(client, f"user{i}@example.com", "wrong password", f"203.0.113.{i}")
            for i in range(12)
        ]
        # Ten failures per address in 15 minutes, whatever the header says.
        assert codes == [401] * 10 + [429] * 2
        assert _login(client, EMAIL, PASSWORD, "198.51.100.1") == 429


def test_forwarded_for_from_a_named_proxy_is_the_client(db_url, tmp_path):
    app = _app(db_url, tmp_path, forwarded_allow_ips="10.0.0.1")
    with Browser(app, client=("10.0.0.1", 40000)) as proxy:
        proxy.headers["X-Forwarded-For"] = "203.0.113.9"
        for _ in range(5):
            assert proxy.login(EMAIL, "wrong password") == 401
        assert proxy.login(EMAIL) == 429
        proxy.headers["X-Forwarded-For"] = "203.0.113.10"  # another client behind the proxy
        assert proxy.login(EMAIL) == 303
        assert "203.0.113.9" in proxy.get("/account").text


@pytest.mark.parametrize(
    ("public_url", "hsts"), [("https://lanterna.example.com", True), ("", False)]
)
def test_hsts_when_the_public_url_is_https(db_url, tmp_path, public_url, hsts):
    app = _app(db_url, tmp_path, public_url=public_url)
    with Browser(app) as client:
        for path in ("/login", "/api/public/health"):
            header = client.get(path).headers.get("strict-transport-security")
            assert (header == "max-age=31536000; includeSubDomains") if hsts else header is None
