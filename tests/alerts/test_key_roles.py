"""API keys have a role: a ``viewer`` (or ``member``) key made with ``lanterna keys
create --role`` reads alert rules, channels and budgets but every change answers 403
and writes nothing; keys made without ``--role`` (and those made before roles existed)
are ``admin`` keys and change as before."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lanterna.cli import main
from lanterna.server.app import create_app
from support import make_settings, new_project

RULE = {"name": "errors", "metric": "error_rate", "threshold": 5}
SECRET = "whsec-0123456789abcdef"
HOOK = {"name": "ops", "type": "webhook",
        "config": {"url": "https://hooks.example.com/x", "secret": SECRET}}  # fmt: skip
BUDGET = {"name": "monthly", "scope": "project", "period": "month", "limitUsd": 10}


def _db_args(db_url: str) -> list[str]:
    if db_url.startswith("sqlite:///"):
        return ["--data-dir", str(Path(db_url.removeprefix("sqlite:///")).parent)]
    return ["--database-url", db_url]


def _cli_key(db_url: str, project_id: str, capsys: pytest.CaptureFixture[str], *role: str):
    assert main(["keys", "create", "--project", project_id, *role, *_db_args(db_url)]) == 0
    out = capsys.readouterr().out
    public = re.search(r"LANGFUSE_PUBLIC_KEY=(\S+)", out)
    secret = re.search(r"LANGFUSE_SECRET_KEY=(\S+)", out)
    assert public and secret, out
    return public.group(1), secret.group(1)


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    app = create_app(make_settings(db_url, tmp_path))
    project = new_project(db_url)
    with TestClient(app) as client:
        client.auth = project.auth
        yield client, project.id


def test_a_viewer_key_reads_but_every_change_is_refused(api, db_url, capsys):
    client, project_id = api
    # What there is to read, made with the project's (admin) key.
    rule = client.post("/api/public/alerts/rules", json=RULE).json()
    hook = client.post("/api/public/alert-channels", json=HOOK).json()
    budget = client.post("/api/public/budgets", json=BUDGET).json()
    viewer = _cli_key(db_url, project_id, capsys, "--role", "viewer")
    member = _cli_key(db_url, project_id, capsys, "--role", "member")
    assert main(["keys", "list", "--project", project_id, *_db_args(db_url)]) == 0
    listed = capsys.readouterr().out
    assert f"{viewer[0]}" in listed and "role=viewer" in listed and "role=member" in listed

    for key in (viewer, member):
        for path in ("/api/public/alerts/rules", f"/api/public/alerts/rules/{rule['id']}",
                     "/api/public/alert-channels", "/api/public/budgets",
                     f"/api/public/budgets/{budget['id']}/status"):  # fmt: skip
            assert client.get(path, auth=key).status_code == 200, path
        changes = [
            ("POST", "/api/public/alerts/rules", RULE),
            ("PATCH", f"/api/public/alerts/rules/{rule['id']}", {"threshold": 1}),
            ("DELETE", f"/api/public/alerts/rules/{rule['id']}", None),
            ("POST", "/api/public/alert-channels", HOOK),
            ("PATCH", f"/api/public/alert-channels/{hook['id']}", {"name": "x"}),
            ("POST", f"/api/public/alert-channels/{hook['id']}/test", None),
            ("DELETE", f"/api/public/alert-channels/{hook['id']}", None),
            ("POST", "/api/public/budgets", BUDGET),
            ("PATCH", f"/api/public/budgets/{budget['id']}", {"limitUsd": 1}),
            ("DELETE", f"/api/public/budgets/{budget['id']}", None),
        ]
        for method, path, body in changes:
            r = client.request(method, path, json=body, auth=key)
            assert r.status_code == 403, (method, path, r.text)
            assert "may only read" in r.json()["message"]

    # Nothing changed: one of each, as the admin key made them.
    rules = client.get("/api/public/alerts/rules").json()["data"]
    assert [(r["id"], r["threshold"]) for r in rules] == [(rule["id"], 5.0)]
    assert [c["name"] for c in client.get("/api/public/alert-channels").json()["data"]] == ["ops"]
    budgets = client.get("/api/public/budgets").json()["data"]
    assert [(b["id"], b["limitUsd"]) for b in budgets] == [(budget["id"], 10.0)]


def test_keys_made_without_a_role_are_admin_keys_and_change(api, db_url, capsys):
    client, project_id = api
    key = _cli_key(db_url, project_id, capsys)
    r = client.post("/api/public/alerts/rules", json=RULE, auth=key)
    assert r.status_code == 200, r.text
    assert client.delete(f"/api/public/alerts/rules/{r.json()['id']}", auth=key).status_code == 200
    assert client.post("/api/public/budgets", json=BUDGET, auth=key).status_code == 200
