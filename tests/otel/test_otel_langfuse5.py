"""The official Langfuse Python SDK 5.x (OTLP export) against a live server, both stores.

The SDK runs in its own virtualenv (``.venvs/langfuse5``, see tests/clients/) as a
subprocess; the test reads what it sent back through the public REST API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venvs" / "langfuse5" / "bin" / "python"
CLIENTS = Path(__file__).resolve().parent / "clients"

pytestmark = [pytest.mark.slow, pytest.mark.clickhouse]


def run_client(script: str, live_server, **env: str) -> dict[str, str]:
    if not PYTHON.exists():
        pytest.fail(f"{PYTHON} is missing: create it as tests/clients/ describes")
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANGFUSE_BASE_URL": live_server.url,
        "LANGFUSE_PUBLIC_KEY": live_server.project.public_key,
        "LANGFUSE_SECRET_KEY": live_server.project.secret_key,
        **env,
    }
    done = subprocess.run(
        [str(PYTHON), str(CLIENTS / script)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # The SDK logs export failures instead of raising: make them fail the test.
    assert "Failed to export" not in done.stderr, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def get(live_server, path: str) -> dict:
    response = httpx.get(live_server.url + path, auth=live_server.project.auth, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_observe_generation_and_trace_attributes(live_server):
    ids = run_client(
        "lf5_otel.py",
        live_server,
        LANGFUSE_TRACING_ENVIRONMENT="e2e",
        LANGFUSE_RELEASE="rel-1",
    )
    trace = get(live_server, f"/api/public/traces/{ids['trace']}")

    assert trace["name"] == "qa-pipeline"
    assert trace["userId"] == "user-1"
    assert trace["sessionId"] == "session-1"
    assert trace["tags"] == ["e2e", "otel"]
    assert trace["environment"] == "e2e"
    assert trace["release"] == "rel-1"
    assert trace["version"] == "v5-test"
    assert trace["metadata"]["tenant"] == "acme"
    assert trace["metadata"]["attempt"] == "3"  # v5 encodes strings too; decoded once
    assert trace["input"] == {"args": ["what is six times seven?"], "kwargs": {}}
    assert trace["output"] == {"answer": "42", "docs": ["doc-1", "doc-2"]}

    obs = {o["id"]: o for o in trace["observations"]}
    assert set(obs) == {ids["root"], ids["retrieve"], ids["generation"], ids["failing"]}
    root = obs[ids["root"]]
    assert root["name"] == "pipeline"
    assert root["type"] == "SPAN"
    assert root["parentObservationId"] is None
    for child in ("retrieve", "generation", "failing"):
        assert obs[ids[child]]["parentObservationId"] == ids["root"]
        assert obs[ids[child]]["environment"] == "e2e"
        assert obs[ids[child]]["version"] == "v5-test"

    assert obs[ids["retrieve"]]["output"] == ["doc-1", "doc-2"]

    gen = obs[ids["generation"]]
    assert gen["type"] == "GENERATION"
    assert gen["name"] == "llm-call"
    assert gen["model"] == "gpt-4o-mini"
    assert gen["modelParameters"] == {"temperature": 0.3, "max_tokens": 64}
    assert gen["usageDetails"] == {"input": 12, "output": 7, "total": 19}
    assert gen["costDetails"]["input"] == pytest.approx(0.0012)
    assert gen["costDetails"]["output"] == pytest.approx(0.0021)
    assert gen["calculatedTotalCost"] == pytest.approx(0.0033)
    assert gen["usage"]["input"] == 12 and gen["usage"]["output"] == 7
    assert gen["metadata"]["provider"] == "stand-in"
    assert gen["output"] == "42"
    assert gen["startTime"] <= gen["endTime"]

    failing = obs[ids["failing"]]
    assert failing["level"] == "ERROR"
    assert "the tool broke" in failing["statusMessage"]

    # The session was created by the trace that carries it.
    session = get(live_server, "/api/public/sessions/session-1")
    assert ids["trace"] in [t["id"] for t in session.get("traces", [])]
    scores = {s["name"]: s for s in trace["scores"]}
    assert scores["helpfulness"]["value"] == 0.75
    assert scores["helpfulness"]["comment"] == "ok"
    assert scores["helpfulness"]["observationId"] is None
    assert scores["correct"]["dataType"] == "BOOLEAN" and scores["correct"]["value"] == 1
    assert scores["correct"]["observationId"] == ids["generation"]


def test_python_executable_is_the_pinned_sdk():
    if not PYTHON.exists():
        pytest.fail(f"{PYTHON} is missing")
    done = subprocess.run(
        [str(PYTHON), "-c", "import langfuse; print(langfuse.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip().startswith("5."), done.stdout
    assert sys.executable != str(PYTHON)
