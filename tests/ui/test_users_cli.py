"""``lanterna users create`` and ``users reset-password``: one-time passwords that must be
changed at the next login before any project page opens; the forced change in a browser."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from conftest import PASSWORD, Browser, Site, add_user, login, shot
from lanterna.cli import main
from lanterna.server.app import create_app
from support import make_settings, new_project

NEW = "my own long passphrase"


def _db_args(db_url: str) -> list[str]:
    if db_url.startswith("sqlite:///"):
        return ["--data-dir", str(Path(db_url.removeprefix("sqlite:///")).parent)]
    return ["--database-url", db_url]


def _one_time(out: str) -> str:
    found = re.search(r"^One-time password \(shown only now\): (\S+)$", out, re.M)
    assert found, out
    return found.group(1)


def _change(client: Browser, current: str, new: str, next_url: str = "") -> object:
    token = client.csrf("/account" + (f"?next={next_url}" if next_url else ""))
    data = {"csrf_token": token, "current": current, "new": new, "again": new}
    if next_url:
        data["next"] = next_url
    return client.post("/account", data=data, follow_redirects=False)


def test_users_create_gives_a_one_time_password_to_change_first(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project(db_url)
    args = ["users", "create", "Ann@Example.com", "--role", "viewer", *_db_args(db_url)]
    assert main(args) == 0
    out, err = capsys.readouterr()
    password = _one_time(out)
    assert "ann@example.com (viewer of project" in out and "changed at the next login" in out
    assert password not in err
    # The same email again: refused, nothing printed as a password.
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert "exists already" in err and "One-time" not in out

    traces = f"/project/{project.id}/traces"
    with Browser(create_app(make_settings(db_url, tmp_path))) as client:
        assert client.login("ann@example.com", password) == 303
        # Every project page leads to the account page first.
        response = client.get(traces, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/account"
        assert client.get("/", follow_redirects=False).headers["location"] == "/account"
        # Nothing but the account page may be posted to either.
        token = client.csrf("/account")
        response = client.post(
            f"/project/{project.id}/scores", data={"csrf_token": token, "trace_id": "x"}
        )
        assert response.status_code == 403 and "password of your own" in response.text
        # The change leads on to the page asked for; the project opens from now on.
        response = _change(client, password, NEW, next_url=traces)
        assert response.status_code == 303 and response.headers["location"] == traces
        assert client.get(traces).status_code == 200
        assert client.get("/account").status_code == 200
        assert "must-change" not in client.get("/account").text
    # Shown once: the account page never shows it, the output said so.
    assert password not in capsys.readouterr().out


def test_users_create_needs_a_project_when_several_and_a_known_role(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    new_project(db_url, "One")
    second = new_project(db_url, "Two")
    with pytest.raises(SystemExit, match="--project"):
        main(["users", "create", "bo@example.com", *_db_args(db_url)])
    with pytest.raises(SystemExit):
        main(["users", "create", "bo@example.com", "--role", "god", *_db_args(db_url)])
    assert "invalid choice: 'god'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="not an email"):
        main(["users", "create", "bo", "--project", second.id, *_db_args(db_url)])
    assert (
        main(["users", "create", "bo@example.com", "--project", second.id, *_db_args(db_url)]) == 0
    )
    assert f"(member of project {second.id})" in capsys.readouterr().out


def test_reset_password_ends_sessions_and_must_be_changed(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    project = new_project(db_url)
    add_user(db_url, "cy@example.com", {project.id: "admin"})
    app = create_app(make_settings(db_url, tmp_path))
    with Browser(app) as client, Browser(app) as fresh:
        assert client.login("cy@example.com") == 303
        assert client.get(f"/project/{project.id}/traces").status_code == 200

        assert main(["users", "reset-password", "CY@example.com", *_db_args(db_url)]) == 0
        out, err = capsys.readouterr()
        password = _one_time(out)
        assert "Reset the password of cy@example.com" in out and password not in err
        # The logged-in browser is logged out; the old password no longer works.
        response = client.get(f"/project/{project.id}/traces", follow_redirects=False)
        assert response.headers["location"].startswith("/login")
        assert fresh.login("cy@example.com", PASSWORD) == 401
        response = fresh.post(
            "/login",
            data={
                "csrf_token": fresh.csrf("/login"),
                "email": "cy@example.com",
                "password": password,
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == "/account"
        assert _change(fresh, password, NEW).status_code == 200
        assert fresh.get(f"/project/{project.id}/traces").status_code == 200

    # A chosen password from standard input (never on the command line), one-time too.
    monkeypatch.setattr("sys.stdin", io.StringIO("a chosen temporary pass\n"))
    args = ["users", "reset-password", "cy@example.com", "--password-stdin", *_db_args(db_url)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "a chosen temporary pass" not in out and "changed at the next login" in out
    with Browser(create_app(make_settings(db_url, tmp_path))) as client:
        assert client.login("cy@example.com", "a chosen temporary pass") == 303
        response = client.get(f"/project/{project.id}/traces", follow_redirects=False)
        assert response.headers["location"] == "/account"

    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    with pytest.raises(SystemExit, match="no password"):
        main(args)
    assert main(["users", "reset-password", "nobody@example.com", *_db_args(db_url)]) == 1
    assert "No account nobody@example.com" in capsys.readouterr().err


def test_forced_password_change_in_a_browser(
    site: Site, page, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["users", "create", "dee@example.com", *_db_args(site.db_url)]) == 0
    password = _one_time(capsys.readouterr().out)
    page.goto(site.path("traces"))
    page.fill("input[name=email]", "dee@example.com")
    page.fill("input[name=password]", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()
    assert "/account?next=" in page.url
    assert page.get_by_test_id("must-change").is_visible()
    shot(page, "forced-password-change")
    # The project is out of reach until the password changes.
    page.goto(site.path("sessions"))
    assert page.url == site.url + "/account"
    page.go_back()
    assert "/account?next=" in page.url
    page.fill("input[name=current]", password)
    page.fill("input[name=new]", NEW)
    page.fill("input[name=again]", NEW)
    page.click("[data-testid=password-form] button[type=submit]")
    page.wait_for_load_state()
    assert page.url == site.path("traces")  # the page asked for before logging in
    # Next time, the new password goes straight to the project.
    page.context.clear_cookies()
    login(page, site.url, "dee@example.com", NEW)
    assert page.url == site.path("traces")
