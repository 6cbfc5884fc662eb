# ruff: noqa: F811  (the fixtures imported from test_sdk_prompts are parameters here)
"""The SDK's A/B tests against the real server (through a counting proxy): ``assign``
and ``get_prompt(..., ab_test=, unit_id=)`` give each user the server's variant, record
metadata ``experiment``/``variant`` and a tag on the current trace, and fetch the test
once (stale-while-revalidate afterwards); a restarted client and another process assign
every user the same variant."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
import pytest
from sdk_support import VirtualClock, wait_until
from test_sdk_prompts import Proxy, clock, proxied, proxy, server_api  # noqa: F401

from lanterna import observe
from lanterna.abtests.assign import variant_for
from lanterna.sdk.ab_tests import AbTestError

AB = "/api/public/ab-tests"
NAME = "research-agent-prompt"


@pytest.fixture
def running(server_api: httpx.Client) -> dict[str, Any]:
    """Two prompt versions, a user_rating score config and a running 50/50 test."""
    for text in ("v1: {{input}}", "v2: {{input}}"):
        body = {"name": "research_agent", "type": "text", "prompt": text, "labels": []}
        assert server_api.post("/api/public/v2/prompts", json=body).status_code == 200
    config = {"name": "user_rating", "dataType": "NUMERIC", "minValue": 1, "maxValue": 5}
    assert server_api.post("/api/public/score-configs", json=config).status_code == 200
    test = {
        "name": NAME,
        "prompt": "research_agent",
        "variants": [
            {"name": "A", "weight": 50, "promptVersion": 1},
            {"name": "B", "weight": 50, "promptVersion": 2},
        ],
        "primaryMetric": "user_rating",
    }
    assert server_api.post(AB, json=test).status_code == 200
    started = server_api.post(f"{AB}/{NAME}/start")
    assert started.status_code == 200, started.text
    return started.json()  # type: ignore[no-any-return]


def ab_fetches(proxy: Proxy) -> int:
    with proxy.lock:
        return sum(1 for p in proxy.gets if p.startswith(f"{AB}/"))


def test_assign_and_get_prompt_record_the_variant_with_one_fetch(
    running,
    proxied,
    proxy,
    clock,
    live_server,
):
    trace_ids: dict[str, str] = {}

    @observe()
    def ab_test_prompts(user_input: str, user_id: str) -> str:
        from lanterna import context

        prompt = proxied.get_prompt("research_agent", ab_test=NAME, unit_id=user_id)
        assert proxied.assign(NAME, user_id) == variant_for(running, user_id)
        trace_ids[user_id] = context.get_current_trace_id() or ""
        return prompt.compile(input=user_input)

    users = [f"user-{i}" for i in range(40)]
    answers = {u: ab_test_prompts("hello", u) for u in users}
    for u in users:
        expected = "v1: hello" if variant_for(running, u) == "A" else "v2: hello"
        assert answers[u] == expected
    assert ab_fetches(proxy) == 1  # one fetch of the test, then local assignment
    assert proxied.flush(10)
    with httpx.Client(base_url=live_server.url, auth=live_server.project.auth) as http:
        for u in users[:5]:
            trace = http.get(f"/api/public/traces/{trace_ids[u]}").json()
            variant = variant_for(running, u)
            assert trace["metadata"]["experiment"] == NAME
            assert trace["metadata"]["variant"] == variant
            assert f"ab-test:{NAME}:{variant}" in trace["tags"]
    # Stale after the TTL: served at once, refreshed in the background (one more fetch).
    clock.advance(61)
    assert proxied.assign(NAME, "user-1") == variant_for(running, "user-1")
    wait_until(lambda: ab_fetches(proxy) == 2, what="the background refresh")


def test_a_restarted_client_and_another_process_assign_the_same_variants(
    running, live_server, make_client
):
    p = live_server.project
    users = [f"user-{i}" for i in range(300)]
    first = make_client(public_key=p.public_key, secret_key=p.secret_key, host=live_server.url)
    before = [first.assign(NAME, u) for u in users]
    first.shutdown(5)
    again = make_client(public_key=p.public_key, secret_key=p.secret_key, host=live_server.url)
    assert [again.assign(NAME, u) for u in users] == before
    script = (
        "import json, sys\n"
        "from lanterna import Lanterna\n"
        "key, secret, host, name, users = json.load(sys.stdin)\n"
        "client = Lanterna(public_key=key, secret_key=secret, host=host)\n"
        "print(json.dumps([client.assign(name, u) for u in users]))\n"
        "client.shutdown(5)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps([p.public_key, p.secret_key, live_server.url, NAME, users]),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(out.stdout) == before
    assert {"A", "B"} == set(before)


def test_without_the_server_assign_gives_the_default(make_client):
    client = make_client(
        public_key="pk",
        secret_key="sk",
        host="http://127.0.0.1:9",
        flush_interval=3600,
        clock=VirtualClock(),  # the fetch's retries wait on virtual time
    )
    assert client.assign("missing", "u1", default="A") == "A"
    with pytest.raises(AbTestError, match="unreachable"):
        client.assign("missing", "u1")
