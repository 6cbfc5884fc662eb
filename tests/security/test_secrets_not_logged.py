"""A real ``lanterna serve`` at its most verbose (debug log level, access log) never
writes an API secret, a password, a session or device cookie, an Authorization header or
a channel's secret to its output, whatever it is sent. Only the first start prints the
new key, once, before the server listens (by design: docs/cli.md)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from support import wait_until

pytestmark = pytest.mark.slow

ADMIN = "owner@example.com"
PASSWORD = "a-strong-owner-passphrase-91"
WRONG = "guess-number-one-xyz"
CHANNEL_SECRET = "channel-signing-secret-7f3a9c"


def _login(client: httpx.Client, password: str) -> httpx.Response:
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    return client.post(
        "/login", data={"csrf_token": token.group(1), "email": ADMIN, "password": password}
    )


def test_nothing_secret_reaches_the_servers_output(tmp_path: Path):
    out_path = tmp_path / "output.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANTERNA_")}
    env |= {"LANTERNA_ADMIN_EMAIL": ADMIN, "LANTERNA_ADMIN_PASSWORD": PASSWORD}
    with out_path.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lanterna", "serve", "--port", "0",
             "--data-dir", str(tmp_path / "data"), "--log-level", "debug", "--access-log"],
            stdout=out, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
    try:
        wait_until(lambda: "Listening on" in out_path.read_text(), 30, "the server to listen")
        first = out_path.read_text()
        port = re.search(r"Listening on http://[^:]+:(\d+)", first)
        public = re.search(r"LANGFUSE_PUBLIC_KEY=(\S+)", first)
        secret = re.search(r"LANGFUSE_SECRET_KEY=(\S+)", first)
        assert port and public and secret, first
        base = f"http://127.0.0.1:{port.group(1)}"
        auth = (public.group(1), secret.group(1))
        wait_until(lambda: httpx.get(f"{base}/api/public/health").status_code == 200, 30, "health")
        batch = {"batch": [{"id": "e1", "type": "trace-create", "timestamp":
                 "2026-01-01T00:00:00Z", "body": {"id": "t1", "name": "n"}}]}  # fmt: skip
        assert httpx.post(f"{base}/api/public/ingestion", json=batch, auth=auth).status_code == 207
        bad = (public.group(1), "sk-lf-00000000-0000-0000-0000-000000000000")
        assert httpx.get(f"{base}/api/public/traces", auth=bad).status_code == 401
        assert httpx.get(f"{base}/api/public/traces", auth=auth).status_code == 200
        config = {"url": "https://hooks.example.com/x", "secret": CHANNEL_SECRET}
        channel = {"name": "hook", "type": "webhook", "config": config}
        made = httpx.post(f"{base}/api/public/alert-channels", json=channel, auth=auth)
        assert made.status_code in (200, 201), made.text
        with httpx.Client(base_url=base) as client:
            assert _login(client, WRONG).status_code in (200, 401, 429)
            assert _login(client, PASSWORD).status_code in (200, 303)
            cookies = [c.value for c in client.cookies.jar]
            assert cookies
            assert client.get("/").status_code in (200, 303)
    finally:
        proc.terminate()
        proc.wait(15)
    output = out_path.read_text()
    after_start = output[output.index("Listening on") :]
    assert "GET /api/public/traces" in after_start  # the access log was on
    secrets = [secret.group(1), PASSWORD, WRONG, CHANNEL_SECRET, *cookies]
    for value in secrets:
        assert value not in after_start, f"a secret reached the log: {value[:6]}..."
    assert not re.search(r"Basic [A-Za-z0-9+/]{24,}", output)
    assert first.count(secret.group(1)) == 1  # printed once, at the first start
