"""API keys' roles on every project route, as the web UI checks its users' roles: a
``viewer`` key only reads (403 on every other method, ingestion included), a
``member`` key sends and changes data but gets 403 from the routes of project settings
and data deletion (retention, masking rules, model prices, LLM connections,
evaluators and evaluation rules, deleting traces, users' and sessions' data, the audit
log), which need ``admin`` or ``owner``; an ``admin`` key (the default) does all."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from helpers import event
from lanterna.server.app import create_app
from lanterna.server.auth import allow_public_key, require_project
from lanterna.store import projects
from support import SECRETS, _in_transaction, all_routes, make_settings, new_project

#: Routes a member key may not use: the project's settings and data deletion.
ADMIN_ONLY = {
    ("DELETE", "/api/public/traces"),
    ("DELETE", "/api/public/traces/{trace_id:path}"),
    ("DELETE", "/api/public/users/{user_id:path}"),
    ("DELETE", "/api/public/sessions/{session_id:path}"),
    ("PUT", "/api/public/retention"),
    ("PUT", "/api/public/masking-rules"),
    ("GET", "/api/public/audit-log"),
    ("POST", "/api/public/models"),
    ("DELETE", "/api/public/models/{model_id:path}"),
    ("PUT", "/api/public/llm-connections"),
    ("DELETE", "/api/public/llm-connections/{connection_id}"),
    ("POST", "/api/public/unstable/evaluators"),
    ("DELETE", "/api/public/unstable/evaluators/{evaluator_id}"),
    ("POST", "/api/public/unstable/evaluation-rules"),
    ("PATCH", "/api/public/unstable/evaluation-rules/{rule_id}"),
    ("DELETE", "/api/public/unstable/evaluation-rules/{rule_id}"),
    # A/B tests: created, changed and concluded by admins (the web UI's manage_project).
    ("POST", "/api/public/ab-tests"),
    ("PATCH", "/api/public/ab-tests/{name}"),
    ("DELETE", "/api/public/ab-tests/{name}"),
    ("POST", "/api/public/ab-tests/{name}/start"),
    ("POST", "/api/public/ab-tests/{name}/stop"),
    ("POST", "/api/public/ab-tests/{name}/conclude"),
    # Alert rules, channels and budgets (tests/alerts/test_key_roles.py reads them).
    ("POST", "/api/public/alerts/rules"),
    ("PATCH", "/api/public/alerts/rules/{rule_id}"),
    ("DELETE", "/api/public/alerts/rules/{rule_id}"),
    ("POST", "/api/public/alert-channels"),
    ("PATCH", "/api/public/alert-channels/{channel_id}"),
    ("DELETE", "/api/public/alert-channels/{channel_id}"),
    ("POST", "/api/public/alert-channels/{channel_id}/test"),
    ("POST", "/api/public/budgets"),
    ("PATCH", "/api/public/budgets/{budget_id}"),
    ("DELETE", "/api/public/budgets/{budget_id}"),
}


def _project_routes(app: Any) -> list[tuple[str, str]]:
    """Every (method, path) that takes a project key."""
    found = []
    for route in all_routes(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            continue
        calls: set[Any] = set()
        stack = list(dependant.dependencies)
        while stack:
            dep = stack.pop()
            calls.add(dep.call)
            stack.extend(dep.dependencies)
        uses_key = (
            require_project in calls
            or allow_public_key in calls
            or any(getattr(c, "__qualname__", "").startswith("_may.") for c in calls)
        )
        if uses_key:
            found += [(m, route.path) for m in sorted(route.methods) if m != "HEAD"]
    return found


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


@pytest.fixture
def keyed(db_url: str, tmp_path) -> Iterator[tuple[TestClient, dict[str, tuple[str, str]]]]:
    app = create_app(make_settings(db_url, tmp_path))
    project = new_project(db_url)

    def make(c: Any) -> dict[str, tuple[str, str]]:
        keys = {}
        for role in ("viewer", "member", "admin"):
            key = projects.create_key(c, project.id, role=role)
            SECRETS.add(key.secret_key)
            keys[role] = (key.public_key, key.secret_key)
        return keys

    keys = _in_transaction(db_url, make)
    with TestClient(app) as client:
        yield client, keys


def test_each_role_reaches_what_its_role_allows_on_every_project_route(keyed):
    client, keys = keyed
    routes = _project_routes(client.app)
    writes = [(m, p) for m, p in routes if m != "GET"]
    assert len(writes) >= 60, writes
    assert set(routes) >= ADMIN_ONLY, ADMIN_ONLY - set(routes)
    for method, path in routes:
        url = _url(path)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        as_viewer = client.request(method, url, json=body, auth=keys["viewer"])
        as_member = client.request(method, url, json=body, auth=keys["member"])
        as_admin = client.request(method, url, json=body, auth=keys["admin"])
        viewer_refused = method != "GET" or (method, path) in ADMIN_ONLY
        member_refused = (method, path) in ADMIN_ONLY
        assert (as_viewer.status_code == 403) == viewer_refused, (method, path, as_viewer.text)
        assert (as_member.status_code == 403) == member_refused, (method, path, as_member.text)
        assert as_admin.status_code != 403, (method, path, as_admin.text)
        if viewer_refused:
            assert "may only read" in as_viewer.json()["message"]


def test_a_viewer_key_cannot_send_traces_or_scores_by_any_route(keyed):
    client, keys = keyed
    batch = {"batch": [event("trace-create", {"id": "t-viewer", "name": "x"})]}
    assert client.post("/api/public/ingestion", json=batch, auth=keys["viewer"]).status_code == 403
    score = {"traceId": "t-viewer", "name": "q", "value": 1}
    bearer = {"Authorization": f"Bearer {keys['viewer'][0]}"}
    assert client.post("/api/public/scores", json=score, headers=bearer).status_code == 403
    otlp = client.post(
        "/api/public/otel/v1/traces", json={"resourceSpans": []}, auth=keys["viewer"]
    )
    assert otlp.status_code == 403
    assert client.get("/api/public/traces/t-viewer", auth=keys["admin"]).status_code == 404
    # The member key sends; the viewer key reads what it sent.
    sent = client.post("/api/public/ingestion", json=batch, auth=keys["member"])
    assert sent.status_code == 207 and not sent.json()["errors"], sent.text
    read = client.get("/api/public/traces/t-viewer", auth=keys["viewer"])
    assert read.status_code == 200 and read.json()["name"] == "x"
    # Deleting it takes an admin key.
    assert client.delete("/api/public/traces/t-viewer", auth=keys["member"]).status_code == 403
    assert client.delete("/api/public/traces/t-viewer", auth=keys["admin"]).status_code == 200
