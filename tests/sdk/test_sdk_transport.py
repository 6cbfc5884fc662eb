"""The SDK's one transport: the server URL's variables, the errors explicit calls raise,
retry rules shared by every request, and the server refusing a URL as its bind address."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sdk_support import Reply, free_port

import lanterna
from lanterna import (
    LanternaAPIError,
    LanternaConnectionError,
    LanternaError,
    LanternaTimeoutError,
)
from lanterna.sdk import client as client_module

URL_VARIABLES = ("LANTERNA_BASE_URL", "LANGFUSE_BASE_URL", "LANGFUSE_HOST", "LANTERNA_HOST")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in URL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(client_module, "_warned_lanterna_host", False)
    return monkeypatch


def _url(make_client, **kwargs) -> str:
    return str(make_client(enabled=False, **kwargs).base_url)


def test_base_url_variables_in_their_order(make_client, clean_env):
    assert _url(make_client) == "http://localhost:3000"
    clean_env.setenv("LANGFUSE_HOST", "http://langfuse-host:1/")
    assert _url(make_client) == "http://langfuse-host:1"
    clean_env.setenv("LANGFUSE_BASE_URL", "http://langfuse-base:2")
    assert _url(make_client) == "http://langfuse-base:2"
    clean_env.setenv("LANTERNA_BASE_URL", "http://lanterna-base:3")
    assert _url(make_client) == "http://lanterna-base:3"
    assert _url(make_client, host="http://argument:4") == "http://argument:4"
    client = make_client(enabled=False, base_url="http://argument:5")
    assert client.base_url == client.host == "http://argument:5"


def test_the_bind_interface_variable_is_not_the_sdk_url(make_client, clean_env):
    clean_env.setenv("LANTERNA_HOST", "0.0.0.0")  # the server's bind setting in one shell
    assert _url(make_client) == "http://localhost:3000"
    clean_env.setenv("LANTERNA_HOST", "http://old-setup:3000")
    with pytest.warns(DeprecationWarning, match="LANTERNA_BASE_URL"):
        assert _url(make_client) == "http://old-setup:3000"
    clean_env.setenv("LANGFUSE_HOST", "http://langfuse:3000")
    assert _url(make_client) == "http://langfuse:3000"  # any other variable wins


@pytest.mark.parametrize("how", [["--host", "http://127.0.0.1:3000"], "env"], ids=["flag", "env"])
def test_serve_refuses_a_url_as_its_bind_interface(tmp_path: Path, how):
    env = {k: v for k, v in os.environ.items() if k not in URL_VARIABLES}
    env["LANTERNA_DATA_DIR"] = str(tmp_path)
    args = [sys.executable, "-m", "lanterna.cli", "serve", "--port", str(free_port())]
    if how == "env":
        env["LANTERNA_HOST"] = "https://lanterna.example.com"
    else:
        args += how
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "LANTERNA_BASE_URL" in result.stderr and "is a URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())  # refused before touching the data directory


def test_explicit_calls_raise_the_sdk_errors_only(make_client, stand_in):
    # 2 s: under a loaded machine a local answer can take longer than 0.5 s
    client = make_client(public_key="pk", secret_key="sk", host=stand_in.url, timeout=2.0)
    stand_in.script = [Reply(401, {"message": "Invalid credentials"})]
    with pytest.raises(LanternaAPIError) as refused:
        client.get_budget_status("b1")
    assert refused.value.status == 401 and refused.value.body == {"message": "Invalid credentials"}
    assert "Invalid credentials" in str(refused.value)

    # 503 is retried (twice), then reported with its status
    stand_in.script = [Reply(503)] * 3
    with pytest.raises(LanternaAPIError) as unavailable:
        client.get_budget_status("b1")
    assert unavailable.value.status == 503 and len(stand_in.gets) == 4

    # a retried 502 that then succeeds is invisible to the caller
    stand_in.script = [Reply(502), Reply(200, {"state": "ok"})]
    assert client.get_budget_status("b/1") == {"state": "ok"}
    assert stand_in.gets[-1] == "/api/public/budgets/b%2F1/status"

    # no answer within the timeout
    never = threading.Event()  # the server answers only after the test
    stand_in.script = [Reply(200, {}, gate=never)] * 3
    try:
        with pytest.raises(LanternaTimeoutError):
            client.get_budget_status("slow")
    finally:
        never.set()

    down = make_client(public_key="pk", secret_key="sk", host=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(LanternaConnectionError) as unreachable:
        down.get_budget_status("b1")
    assert "Connection refused" in str(unreachable.value)
    assert isinstance(unreachable.value, ConnectionError)  # also the built-in
    assert down.auth_check() is False  # logs, never raises


def test_cost_look_ups_answer_none_instead_of_raising(make_client, stand_in):
    # 2 s: under a loaded machine a local answer can take longer than 0.5 s
    client = make_client(public_key="pk", secret_key="sk", host=stand_in.url, timeout=2.0)
    stand_in.script = [Reply(401, {"message": "Invalid credentials"})]
    assert client.get_user_cost("u1") is None
    stand_in.script = [Reply(503)] * 3
    assert client.get_session_cost("s1") is None
    stand_in.script = [Reply(502), Reply(200, {"id": "s1", "totalCost": 1.5})]
    assert client.get_session_cost("s1") == 1.5
    assert stand_in.gets[-1] == "/api/public/sessions/s1"
    never = threading.Event()
    stand_in.script = [Reply(200, {}, gate=never)] * 3
    try:
        assert client.get_session_cost("slow") is None
    finally:
        never.set()
    stand_in.script = [Reply(200, ["not", "a", "page"])]
    assert client.get_user_cost("u2") is None
    assert client.get_user_cost("u3", period="fortnight") is None  # no request made

    down = make_client(public_key="pk", secret_key="sk", host=f"http://127.0.0.1:{free_port()}")
    assert down.get_user_cost("u1", "day") is None
    assert down.get_session_cost("s1") is None


def test_the_error_family_is_exported_and_prompt_errors_belong_to_it():
    assert issubclass(LanternaAPIError, LanternaError)
    assert issubclass(LanternaTimeoutError, LanternaConnectionError)
    assert issubclass(LanternaTimeoutError, TimeoutError)
    assert issubclass(lanterna.PromptError, LanternaError)


def test_every_request_carries_the_same_auth_and_sdk_headers(make_client, stand_in):
    seen: list[dict[str, str]] = []
    original = stand_in.server.RequestHandlerClass.do_POST

    def record(handler):
        seen.append(dict(handler.headers))
        original(handler)

    stand_in.server.RequestHandlerClass.do_POST = record
    client = make_client(public_key="pk-1", secret_key="sk-1", host=stand_in.url)
    client.trace(name="t")
    assert client.flush(10)
    (headers,) = seen
    assert headers["Authorization"] == "Basic cGstMTpzay0x"  # pk-1:sk-1
    assert headers["User-Agent"] == f"lanterna-python/{lanterna.__version__}"
    assert headers["x-langfuse-public-key"] == "pk-1"
    assert "sk-1" not in repr(client.transport)


@pytest.fixture
def https_stand_in(stand_in, tls_cert):
    """The stand-in behind TLS with a self-signed certificate for 127.0.0.1."""
    import ssl

    cert, key = tls_cert
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = stand_in.server
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return stand_in.url.replace("http://", "https://"), cert


def test_tls_is_verified_unless_told_otherwise(make_client, stand_in, https_stand_in, clean_env):
    url, cert = https_stand_in
    strict = make_client(public_key="pk", secret_key="sk", host=url, timeout=5)
    with pytest.raises(LanternaConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        strict.get_budget_status("b1")
    assert strict.get_user_cost("u1") is None
    bundle = make_client(public_key="pk", secret_key="sk", host=url, tls_verify=str(cert))
    assert bundle.get_user_cost("u1") == 0.0
    # the exporter's own session (its socket read and written directly) over TLS too
    for i in range(3):
        bundle.trace(name=f"over tls {i}")
        assert bundle.flush(10)
    assert [e["body"]["name"] for e in stand_in.events()] == [f"over tls {i}" for i in range(3)]
    clean_env.setenv("LANTERNA_TLS_VERIFY", "false")
    unchecked = make_client(public_key="pk", secret_key="sk", host=url)
    assert unchecked.get_user_cost("u1") == 0.0


def test_requests_go_through_the_proxy_the_environment_names(make_client, stand_in, clean_env):
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        clean_env.delenv(name, raising=False)
    clean_env.setenv("HTTP_PROXY", stand_in.url)  # the stand-in plays a forward proxy
    client = make_client(
        public_key="pk", secret_key="sk", host="http://lanterna.invalid:3000/prefix"
    )
    assert client.get_user_cost("u1") == 0.0
    client.trace(name="through the proxy")
    assert client.flush(10)
    # a plain-HTTP proxy is sent the absolute URL, path prefix included
    assert stand_in.gets == [
        "http://lanterna.invalid:3000/prefix/api/public/metrics/daily?userId=u1&page=1&limit=100"
    ]
    assert [e["body"]["name"] for e in stand_in.events()] == ["through the proxy"]
