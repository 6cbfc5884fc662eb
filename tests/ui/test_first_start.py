"""``lanterna serve`` as a user runs it: the owner account at first start, ``--no-auth``."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from support import serve_process

pytestmark = pytest.mark.slow


@contextmanager
def serve(db_url: str, *extra: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """Run ``lanterna serve``; yield (base URL, what it printed before listening)."""
    with serve_process(db_url, *extra, env=env) as served:
        yield served


def _login(base: str, email: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=base) as client:
        form = client.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token
        return client.post(
            "/login", data={"csrf_token": token.group(1), "email": email, "password": password}
        )


def test_first_start_prints_a_one_time_owner_password_once(db_url: str) -> None:
    with serve(db_url) as (base, printed):
        found = re.search(r"owner account for the web UI: (\S+)\n.*password.*: (\S+)\n", printed)
        assert found, printed
        email, password = found.groups()
        assert email == "admin@localhost"
        response = _login(base, email, password)
        # Logged in, and sent to set a password of their own.
        assert response.status_code == 303 and response.headers["location"] == "/account"
        assert _login(base, email, "not it").status_code == 401
    with serve(db_url) as (_base, printed):
        assert "password" not in printed.lower()


def test_owner_from_environment(db_url: str) -> None:
    env = {
        "LANTERNA_ADMIN_EMAIL": "Me@Example.com",
        "LANTERNA_ADMIN_PASSWORD": "s3cret pass phrase",
    }
    with serve(db_url, env=env) as (base, printed):
        assert "me@example.com" in printed and "s3cret pass phrase" not in printed
        response = _login(base, "me@example.com", "s3cret pass phrase")
        assert response.status_code == 303 and response.headers["location"] == "/"


def test_no_auth_warns_and_binds_loopback(db_url: str) -> None:
    with serve(db_url, "--no-auth", "--host", "0.0.0.0") as (base, printed):
        assert "WARNING: --no-auth" in printed
        assert "binding 127.0.0.1 only" in printed
        with httpx.Client(base_url=base, follow_redirects=True) as client:
            page = client.get("/")
            assert page.status_code == 200 and "/traces" in str(page.url)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_data_is_readable_only_by_the_server_user(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    url = f"sqlite:///{data / 'lanterna.db'}"
    files = [data / n for n in ("lanterna.db", "lanterna.db-wal", "lanterna.db-shm")]
    with serve(url) as (base, printed):
        assert httpx.get(f"{base}/api/public/health").status_code == 200
        assert _mode(data) == 0o700
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert "tightened" not in printed  # made right, nothing to fix
    # An installation from before (readable by every local user) is fixed at start.
    data.chmod(0o755)
    files[0].chmod(0o644)
    with serve(url) as (_base, printed):
        assert f"tightened the permissions of {data} from 755 to 700" in printed
        assert f"tightened the permissions of {files[0]} from 644 to 600" in printed
        assert _mode(data) == 0o700
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}


def test_a_port_in_use_stops_serve_before_it_bootstraps_or_claims_to_listen(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("LANTERNA_")}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "lanterna",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            env=clean,
            timeout=60,
        )
    assert done.returncode == 2
    assert f"Port {port} on 127.0.0.1 is in use" in done.stderr
    assert "--port" in done.stderr
    assert "Listening" not in done.stdout and "LANGFUSE_SECRET_KEY" not in done.stdout
    assert not list(tmp_path.iterdir())  # no database made, no keys shown and lost
