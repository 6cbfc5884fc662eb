"""In a real browser: an LLM connection in the evaluations settings, a prompt version
run in the playground against a local OpenAI-compatible stub (output, tokens, cost,
latency), saved as a new version, and a generation opened in the playground. And the
settings page showing an evaluation rule's failed runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from conftest import Browser, Site, _site, add_user, login, shot
from helpers import event
from lanterna.server.app import create_app
from lanterna.timeutil import now
from llm_stub import LlmStub, llm_stub
from support import SECRETS, make_settings, new_project, serve

SECRETS.update({"sk-browser-key-4321", "sk-x-12345678"})  # never logged (log audit)


@pytest.fixture
def stub() -> Iterator[LlmStub]:
    with llm_stub() as s:
        yield s


@pytest.fixture
def stub_site(tmp_path: Path) -> Iterator[Site]:
    """A live server (SQLite) that may call the loopback stub."""
    url = f"sqlite:///{tmp_path / 'lanterna.db'}"
    with serve(url, tmp_path, outbound_allow="127.0.0.1", evaluation_tick_seconds=0) as server:
        yield _site(server)


def test_playground_runs_a_prompt_and_saves_a_version(stub_site: Site, stub: LlmStub, page):
    site = stub_site
    auth = site.project.auth
    prompt = {
        "name": "qa",
        "type": "chat",
        "config": {"model": "gpt-4o-mini", "temperature": 0.2},
        "prompt": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "{{question}}"},
        ],
    }
    assert httpx.post(f"{site.url}/api/public/v2/prompts", json=prompt, auth=auth).status_code < 300
    stub.content = "Four."

    login(page, site.url, site.owner)
    page.goto(site.path("settings/evaluations"))
    form = page.get_by_test_id("new-connection")
    form.locator("input[name=provider]").fill("stub")
    form.locator("input[name=base_url]").fill(stub.base_url)
    form.locator("input[name=secret_key]").fill("sk-browser-key-4321")
    form.locator("button").click()
    page.wait_for_load_state()
    table = page.get_by_test_id("llm-connections").inner_text()
    assert "stub" in table and "...4321" in table and "sk-browser-key" not in page.content()

    page.goto(site.path("prompts/qa"))
    page.get_by_test_id("open-playground").click()
    page.wait_for_load_state()
    form = page.get_by_test_id("playground-form")
    assert form.locator("input[name=model]").input_value() == "gpt-4o-mini"
    form.locator("textarea[name=var_question]").fill("What is 2+2?")
    page.get_by_test_id("run").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("output").inner_text() == "Four."
    assert page.get_by_test_id("input-tokens").inner_text() == "120"
    assert page.get_by_test_id("output-tokens").inner_text() == "30"
    assert page.get_by_test_id("cost").inner_text().startswith("$")
    assert page.get_by_test_id("latency").inner_text().endswith(("ms", "s"))
    shot(page, "playground-result")
    (sent,) = stub.requests
    assert sent["messages"][1] == {"role": "user", "content": "What is 2+2?"}
    assert sent["temperature"] == 0.2 and sent["model"] == "gpt-4o-mini"
    assert stub.headers[0]["Authorization"] == "Bearer sk-browser-key-4321"

    edited = [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "{{question}}"},
    ]
    page.get_by_test_id("prompt").fill(json.dumps(edited))
    page.get_by_test_id("save").click()
    page.wait_for_load_state()
    assert "/prompts/qa" in page.url and "version=2" in page.url
    saved = httpx.get(f"{site.url}/api/public/v2/prompts/qa", params={"version": 2}, auth=auth)
    assert saved.json()["prompt"] == [{**m, "type": "chatmessage"} for m in edited]
    assert saved.json()["config"] == {"model": "gpt-4o-mini", "temperature": 0.2}

    generation = {
        "id": "gen-1",
        "traceId": "t-gen",
        "name": "llm call",
        "model": "gpt-4o-mini",
        "input": [{"role": "user", "content": "Hello <there>"}],
        "output": "Hi",
        "modelParameters": {"temperature": 0.7},
    }
    batch = [
        event("trace-create", {"id": "t-gen", "name": "chat"}),
        event("generation-create", generation),
    ]
    assert (
        httpx.post(f"{site.url}/api/public/ingestion", json={"batch": batch}, auth=auth).status_code
        == 207
    )
    page.goto(site.path("traces/t-gen?observation=gen-1"))
    page.get_by_test_id("open-in-playground").click()
    page.wait_for_load_state()
    assert "Hello <there>" in page.get_by_test_id("prompt").input_value()
    form = page.get_by_test_id("playground-form")
    assert form.locator("input[name=model]").input_value() == "gpt-4o-mini"
    assert '"temperature": 0.7' in form.locator("textarea[name=config]").input_value()


def test_settings_page_shows_a_rule_and_its_failed_runs(db_url, tmp_path, stub: LlmStub):
    settings = make_settings(db_url, tmp_path)
    settings.outbound_allow = "127.0.0.1"
    settings.evaluation_tick_seconds = settings.alert_tick_seconds = 0
    app = create_app(settings)
    project = new_project(db_url)
    add_user(db_url, "admin@example.com", {project.id: "admin"})
    stub.status = 503
    with Browser(app, client=("127.0.0.1", 50000)) as client:
        assert client.login("admin@example.com") == 303
        api = {"auth": project.auth}
        client.put(
            "/api/public/llm-connections",
            **api,
            json={
                "provider": "stub",
                "adapter": "openai",
                "secretKey": "sk-x-12345678",
                "baseURL": stub.base_url,
            },
        )
        client.post(
            "/api/public/unstable/evaluators",
            **api,
            json={
                "name": "tone <judge>",
                "prompt": "Rate {{output}}",
                "modelConfig": {"provider": "stub", "model": "gpt-4o-mini"},
                "outputDefinition": {
                    "dataType": "BOOLEAN",
                    "reasoning": {"description": "r"},
                    "score": {"description": "s"},
                },
            },
        )
        made = client.post(
            "/api/public/unstable/evaluation-rules",
            **api,
            json={
                "name": "all traces",
                "evaluator": {"name": "tone <judge>"},
                "target": "trace",
                "enabled": True,
            },
        )
        assert made.status_code == 200, made.text
        batch = {"batch": [event("trace-create", {"id": "t-1", "output": "hi"})]}
        assert client.post("/api/public/ingestion", json=batch, **api).status_code == 207
        app.state.runtime.evaluation.run_until_idle(now() + timedelta(minutes=1))
        html = client.get(f"/project/{project.id}/settings/evaluations").text
    assert "tone &lt;judge&gt;" in html and "all traces" in html
    assert "the LLM endpoint answered 503" in html
    assert "sk-x-12345678" not in html and "...5678" in html
