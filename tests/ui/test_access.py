"""Accounts and access through the real app in-process: login, sessions, CSRF, roles,
project isolation, the login rate limit and --no-auth."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from seed import chat_trace
from starlette.testclient import TestClient

from conftest import PASSWORD, Browser, add_user, in_transaction
from lanterna.server.app import create_app
from support import Project, make_settings, new_project


def _ingest(client: TestClient, project: Project, **kwargs: object) -> str:
    from datetime import datetime, timezone

    trace_id, events = chat_trace(
        at=datetime.now(timezone.utc),
        name="t",
        user="u",
        session="s-1",
        question="q",
        answer="a",
        **kwargs,  # type: ignore[arg-type]
    )
    response = client.post("/api/public/ingestion", json={"batch": events}, auth=project.auth)
    assert response.status_code == 207 and not response.json()["errors"]
    return trace_id


def test_pages_need_a_login(two_projects) -> None:
    client, a, _ = two_projects
    for path in ("/", f"/project/{a.id}/traces", f"/project/{a.id}/sessions", "/projects"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
    assert client.login("owner-a@example.com", "wrong password") == 401
    assert client.login("nobody@example.com", PASSWORD) == 401
    assert client.login("Owner-A@Example.com ", PASSWORD) == 303  # emails compare loosely
    cookie = next(c for c in client.cookies.jar if c.name == "lanterna_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert (cookie.get_nonstandard_attr("SameSite") or "").lower() == "lax"
    assert client.get(f"/project/{a.id}/traces").status_code == 200


def test_user_of_project_a_gets_404_for_project_b(two_projects) -> None:
    client, a, b = two_projects
    trace_b = _ingest(client, b)
    trace_a = _ingest(client, a)
    assert client.login("owner-a@example.com") == 303
    assert client.get(f"/project/{a.id}/traces/{trace_a}").status_code == 200
    # B's trace, under B's URL or smuggled under A's, is not found; B's pages too.
    for path in (
        f"/project/{b.id}/traces/{trace_b}",
        f"/project/{a.id}/traces/{trace_b}",
        f"/project/{b.id}/traces",
        f"/project/{b.id}/sessions/s-1",
        f"/project/{b.id}/settings",
        "/project/no-such-project/traces",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert trace_b not in response.text
    # Nor can a form post reach B (annotating B's trace from A's session).
    token = client.csrf(f"/project/{a.id}/traces/{trace_a}")
    response = client.post(
        f"/project/{b.id}/scores",
        data={"csrf_token": token, "trace_id": trace_b, "name": "x", "value": "1"},
    )
    assert response.status_code == 404
    response = client.post(
        f"/project/{a.id}/scores",
        data={"csrf_token": token, "trace_id": trace_b, "name": "x", "value": "1"},
    )
    assert response.status_code == 404
    scores = client.get("/api/public/v2/scores", auth=b.auth).json()["data"]
    assert scores == []
    # The project switcher lists only A.
    page = client.get(f"/project/{a.id}/traces").text
    assert a.id in page and b.id not in page


def test_forms_without_the_csrf_token_are_refused(two_projects) -> None:
    client, a, _ = two_projects
    trace_a = _ingest(client, a)
    assert client.login("owner-a@example.com") == 303
    token = client.csrf(f"/project/{a.id}/traces/{trace_a}")
    posts = [
        (f"/project/{a.id}/scores", {"trace_id": trace_a, "name": "x", "value": "1"}),
        ("/projects", {"name": "Sneaky project", "org": "new", "new_org": "Org"}),
        ("/account", {"current": PASSWORD, "new": "another password", "again": "another password"}),
        ("/logout", {}),
    ]
    for path, data in posts:
        for bad in ({}, {"csrf_token": ""}, {"csrf_token": token[:-2] + "xx"}):
            response = client.post(path, data={**data, **bad}, follow_redirects=False)
            assert response.status_code == 403, (path, bad)
            assert "CSRF" in response.text
    # Nothing happened: no score, no project, same password, still logged in.
    assert client.get("/api/public/v2/scores", auth=a.auth).json()["data"] == []
    assert "Sneaky project" not in client.get("/projects").text
    assert client.get(f"/project/{a.id}/traces", follow_redirects=False).status_code == 200
    # The login form has its own token (no session exists yet).
    fresh = Browser(client.app, client=("127.0.0.1", 50001))
    response = fresh.post(
        "/login",
        data={"email": "owner-a@example.com", "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 403
    # With the token, the same post works.
    response = client.post(
        f"/project/{a.id}/scores",
        data={"csrf_token": token, "trace_id": trace_a, "name": "x", "value": "1"},
        follow_redirects=False,
    )
    assert response.status_code == 303


def test_viewer_reads_but_cannot_annotate(two_projects) -> None:
    client, a, _ = two_projects
    trace_a = _ingest(client, a)
    assert client.login("viewer-a@example.com") == 303
    page = client.get(f"/project/{a.id}/traces/{trace_a}")
    assert page.status_code == 200 and 'data-testid="add-score"' not in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # logout form
    response = client.post(
        f"/project/{a.id}/scores",
        data={"csrf_token": token, "trace_id": trace_a, "name": "x", "value": "1"},
    )
    assert response.status_code == 403
    assert client.get("/api/public/v2/scores", auth=a.auth).json()["data"] == []


def test_logout_and_password_change_end_sessions(two_projects) -> None:
    client, a, _ = two_projects
    other = Browser(client.app, client=("127.0.0.1", 50002))
    assert client.login("owner-a@example.com") == 303
    assert other.login("owner-a@example.com") == 303
    token = client.csrf("/account")
    response = client.post(
        "/account",
        data={"csrf_token": token, "current": PASSWORD, "new": "short", "again": "short"},
    )
    assert response.status_code == 400 and "at least 12" in response.text
    response = client.post(
        "/account",
        data={
            "csrf_token": token,
            "current": PASSWORD,
            "new": "a new password",
            "again": "a new password",
        },
    )
    assert response.status_code == 200 and "Password changed" in response.text
    # The other session ended; this one goes on until logout.
    assert other.get(f"/project/{a.id}/traces", follow_redirects=False).status_code == 303
    assert client.get(f"/project/{a.id}/traces").status_code == 200
    client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert client.get(f"/project/{a.id}/traces", follow_redirects=False).status_code == 303
    assert client.login("owner-a@example.com") == 401
    assert client.login("owner-a@example.com", "a new password") == 303


def test_failed_logins_are_rate_limited(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path)
    settings.login_attempts = 3
    project = new_project(db_url)
    add_user(db_url, "owner@example.com", {project.id: "owner"})
    with Browser(create_app(settings), client=("127.0.0.1", 50000)) as client:
        for _ in range(3):
            assert client.login("owner@example.com", "guess") == 401
        # Blocked now, even with the right password.
        assert client.login("owner@example.com") == 429
        # Another address is blocked for this email too, but not for other emails.
        other = Browser(client.app, client=("127.0.0.2", 50000))
        assert other.login("owner@example.com") == 429
        add_user(db_url, "second@example.com", {project.id: "viewer"})
        assert other.login("second@example.com") == 303


def test_no_auth_logs_in_local_requests_only(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path)
    settings.no_auth = True
    project = new_project(db_url)
    app = create_app(settings)
    with Browser(app, client=("127.0.0.1", 50000)) as local:
        response = local.get(f"/project/{project.id}/traces")
        assert response.status_code == 200 and "no auth (local)" in response.text
        # Forms still need their token.
        assert (
            local.post("/projects", data={"name": "x", "org": "new", "new_org": "y"}).status_code
            == 403
        )
    with Browser(app, client=("192.0.2.7", 50000)) as remote:
        response = remote.get(f"/project/{project.id}/traces", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_no_auth_is_never_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from lanterna.server.settings import Settings

    monkeypatch.setenv("LANTERNA_NO_AUTH", "1")
    assert Settings.from_env().no_auth is False


def test_members_see_their_projects_and_can_create_one(two_projects) -> None:
    client, a, b = two_projects
    assert client.login("viewer-a@example.com") == 303
    listing = client.get("/projects").text
    assert "A" in listing and b.id not in listing
    token = client.csrf("/projects")
    # A viewer of A may not add projects to A's organisation...
    org_a = in_transaction(
        client.app.state.runtime.db.url,
        lambda c: c.scalar("SELECT org_id FROM projects WHERE id = ?", (a.id,)),
    )
    response = client.post("/projects", data={"csrf_token": token, "name": "P", "org": org_a})
    assert response.status_code == 404
    # ...but may start an organisation of their own, and owns its first project.
    response = client.post(
        "/projects",
        data={"csrf_token": token, "name": "Side project", "org": "new", "new_org": "Mine"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    new_id = response.headers["location"].split("/")[2]
    assert client.get(f"/project/{new_id}/traces").status_code == 200
    assert "owner" in client.get(f"/project/{new_id}/traces").text
