"""Fixtures for the SDK tests: a client wired to the live server, a scriptable stand-in
ingestion server for fault tests, and a check that the SDK swallowed no internal error."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sdk_support import Reader, StandIn

from lanterna import Lanterna, set_client
from lanterna.sdk import _errors


@pytest.fixture(autouse=True)
def no_swallowed_sdk_errors() -> Iterator[None]:
    """Fail any test during which the SDK caught (and hid) an internal exception."""
    _errors.recent.clear()
    yield
    if _errors.recent:
        where, exc = _errors.recent[0]
        _errors.recent.clear()
        pytest.fail(f"the SDK swallowed an internal error in {where}: {exc!r}")


@pytest.fixture
def make_client() -> Iterator[Callable[..., Lanterna]]:
    """Build clients that become the process-wide one; all are shut down afterwards."""
    made: list[Lanterna] = []
    previous = set_client(None)

    def make(**kwargs: Any) -> Lanterna:
        set_client(None)
        client = Lanterna(**kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.shutdown(5)
    set_client(previous)


@pytest.fixture
def client(live_server: Any, make_client: Callable[..., Lanterna]) -> Lanterna:
    """A client of the live server (fast flush interval), the process-wide one."""
    p = live_server.project
    return make_client(
        public_key=p.public_key, secret_key=p.secret_key, host=live_server.url, flush_interval=0.05
    )


@pytest.fixture
def reader(live_server: Any) -> Iterator[Reader]:
    r = Reader(live_server)
    yield r
    r.http.close()


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn()
    yield server
    server.close()


# The shipped test kit's fixture, used by the SDK's own unit tests.
from lanterna.sdk.testing import lanterna_capture  # noqa: E402, F401


@pytest.fixture
def tls_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (files), by the openssl command."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    args += ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(["openssl", *args], check=True, capture_output=True)
    return cert, key
