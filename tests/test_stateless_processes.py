"""Several ``lanterna serve`` processes on one PostgreSQL serve the same projects as one
(docs/scale-out.md, "Several API processes"): what one writes the other reads, a
dashboard session started on one is valid on the other and ends on both at logout, the
failed-login limit counts the attempts made on either, and a key revoked with the CLI
stops working on both within the documented 5 seconds (the key cache's bound).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import httpx
import pytest

from helpers import event, iso
from support import wait_until
from test_durability import Server

pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]

EMAIL = "owner@example.com"
PASSWORD = "a long passphrase nobody guesses 42"
SESSION_COOKIE = "lanterna_session"


def _login(url: str, password: str = PASSWORD) -> httpx.Response:
    """One login through the form (its CSRF token and cookie), as a browser does."""
    with httpx.Client(base_url=url, timeout=30) as browser:
        form = browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token, form.text
        return browser.post(
            "/login",
            data={"csrf_token": token.group(1), "email": EMAIL, "password": password},
        )


def _page(url: str, session: str, path: str = "/account") -> httpx.Response:
    with httpx.Client(base_url=url, timeout=30, cookies={SESSION_COOKIE: session}) as browser:
        return browser.get(path)


def _revoke(db_url: str, public_key: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lanterna.cli", "keys", "revoke", public_key],
        capture_output=True,
        text=True,
        env={**os.environ, "LANTERNA_DATABASE_URL": db_url},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_two_processes_on_one_postgresql_agree(db_url, monkeypatch):
    monkeypatch.setenv("LANTERNA_ADMIN_EMAIL", EMAIL)
    monkeypatch.setenv("LANTERNA_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.setenv("LANTERNA_LOGIN_ATTEMPTS", "3")
    a = Server(db_url)
    b = None
    try:
        b = Server(db_url)  # the second finds the project, the owner and the schema there
        keys = a.keys()
        assert b.keys() == {}
        auth = (keys["LANGFUSE_PUBLIC_KEY"], keys["LANGFUSE_SECRET_KEY"])
        with (
            httpx.Client(base_url=a.url, auth=auth, timeout=30) as on_a,
            httpx.Client(base_url=b.url, auth=auth, timeout=30) as on_b,
        ):
            # Writes on one, reads on the other, both ways.
            batch = [
                event("trace-create", {"id": "t-a", "name": "from-a", "userId": "u"}),
                event("span-create", {"id": "s-a", "traceId": "t-a", "startTime": iso()}),
            ]
            assert on_a.post("/api/public/ingestion", json={"batch": batch}).status_code == 207
            assert on_b.get("/api/public/traces/t-a").json()["observations"][0]["id"] == "s-a"
            score = {"traceId": "t-a", "name": "q", "value": 1}
            assert on_b.post("/api/public/scores", json=score).status_code == 200
            update = [event("trace-create", {"id": "t-a", "name": "renamed"}, at=1)]
            assert on_b.post("/api/public/ingestion", json={"batch": update}).status_code == 207
            for client in (on_a, on_b):
                trace = client.get("/api/public/traces/t-a").json()
                assert (trace["name"], len(trace["scores"])) == ("renamed", 1)
                listed = client.get("/api/public/traces").json()
                assert listed["meta"]["totalItems"] == 1
                assert client.get("/api/public/sessions").status_code == 200

            # A dashboard session started on A is one on B; a logout on B ends it on A.
            logged_in = _login(a.url)
            assert logged_in.status_code == 303, logged_in.text
            session = logged_in.cookies[SESSION_COOKIE]
            for url in (a.url, b.url):
                assert _page(url, session).status_code == 200
            account = _page(b.url, session).text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', account)
            assert csrf, account
            with httpx.Client(
                base_url=b.url, timeout=30, cookies={SESSION_COOKIE: session}
            ) as browser:
                out = browser.post("/logout", data={"csrf_token": csrf.group(1)})
                assert out.status_code == 303
            for url in (a.url, b.url):
                gone = _page(url, session)
                assert gone.status_code == 303 and gone.headers["location"].startswith("/login")

            # The failed-login limit (3 here) counts the failures made on either process.
            assert _login(a.url, "wrong one").status_code == 401
            assert _login(b.url, "wrong two").status_code == 401
            assert _login(a.url, "wrong three").status_code == 401
            for url in (b.url, a.url):
                assert _login(url, "wrong again").status_code == 429

            # A key revoked with the CLI stops working on both (the cache holds a verified
            # key for at most 5 seconds, docs/cli.md).
            _revoke(db_url, auth[0])
            for client in (on_a, on_b):
                wait_until(
                    lambda c=client: c.get("/api/public/traces").status_code == 401,
                    10,
                    "the revoked key refused",
                )
    finally:
        for server in (a, b):
            if server is not None:
                assert server.stop() in (0, -signal.SIGTERM), server.output
