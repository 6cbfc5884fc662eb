"""Fixtures of the dashboard tests: accounts on a live server, a shared headless
Chromium (Debian's, never a downloaded one), logins, screenshots."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import support

sys.path.insert(0, str(Path(__file__).resolve().parent))

from starlette.testclient import TestClient

from lanterna.accounts import store as accounts
from lanterna.server.app import create_app
from lanterna.store.db import Database
from lanterna.store.migrations import migrate
from support import LiveServer, Project, make_settings, new_project, serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
#: Screenshots of every page the browser tests visit, for a reviewer to look at.
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
VIEWPORT = {"width": 1440, "height": 900}
PASSWORD = "correct horse battery"
support.SECRETS.add(PASSWORD)


def in_transaction(db_url: str, work: Any) -> Any:
    """Run ``work(conn)`` in one committed transaction (test setup, like support.py)."""
    db = Database(db_url)
    try:
        migrate(db)
        with db.transaction() as conn:
            return work(conn)
    finally:
        db.close()


def add_user(db_url: str, email: str, memberships: dict[str, str], *, admin: bool = False) -> str:
    """An account with ``PASSWORD`` and the given ``project id -> role``."""

    def work(conn: Any) -> str:
        user_id = accounts.create_user(conn, email, PASSWORD, is_admin=admin)
        for project_id, role in memberships.items():
            accounts.set_member(conn, user_id, project_id, role)
        return str(user_id)

    return str(in_transaction(db_url, work))


@dataclass
class Site:
    """A live server with a project, its owner and a viewer."""

    url: str
    project: Project
    db_url: str
    owner: str = "owner@example.com"
    viewer: str = "viewer@example.com"
    extra: dict[str, Any] = field(default_factory=dict)

    def path(self, rest: str) -> str:
        """A URL inside the project."""
        return f"{self.url}/project/{self.project.id}/{rest.lstrip('/')}"


def _site(server: LiveServer) -> Site:
    site = Site(server.url, server.project, server.db_url)
    add_user(server.db_url, site.owner, {site.project.id: "owner"})
    add_user(server.db_url, site.viewer, {site.project.id: "viewer"})
    return site


@pytest.fixture
def site(live_server: LiveServer) -> Site:
    """The shared live server (both backends) with an owner and a viewer."""
    return _site(live_server)


@pytest.fixture
def sqlite_site(tmp_path: Path) -> Iterator[Site]:
    """A live server on SQLite only, for checks no storage backend can change
    (what the browser does with rendered markup)."""
    with serve(f"sqlite:///{tmp_path / 'lanterna.db'}", tmp_path) as server:
        yield _site(server)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page at 1440x900; fails the test on any
    JavaScript dialog (an executed injected ``alert`` would open one)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.dialogs = dialogs
    tab.js_errors = errors
    try:
        yield tab
    finally:
        context.close()
    assert not dialogs, f"a JavaScript dialog opened: {dialogs}"
    assert not errors, f"JavaScript errors on the page: {errors}"


class Browser(TestClient):
    """The app in-process, speaking as a browser does (cookies, forms)."""

    def csrf(self, path: str) -> str:
        """The CSRF token of the form on ``path``."""
        response = self.get(path)
        assert response.status_code == 200, response.text
        found = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
        assert found, f"no form on {path}"
        return found.group(1)

    def login(self, email: str, password: str = PASSWORD) -> int:
        token = self.csrf("/login")
        response = self.post(
            "/login",
            data={"csrf_token": token, "email": email, "password": password},
            follow_redirects=False,
        )
        return response.status_code


@pytest.fixture
def two_projects(db_url: str, tmp_path: Path) -> Iterator[tuple[Browser, Project, Project]]:
    """The app with projects A and B, their owners and a viewer of A."""
    app = create_app(make_settings(db_url, tmp_path))
    a, b = new_project(db_url, "A"), new_project(db_url, "B")
    add_user(db_url, "owner-a@example.com", {a.id: "owner"})
    add_user(db_url, "viewer-a@example.com", {a.id: "viewer"})
    add_user(db_url, "owner-b@example.com", {b.id: "owner"})
    with Browser(app, client=("127.0.0.1", 50000)) as client:
        yield client, a, b


def shot(tab: Any, name: str) -> None:
    """Save a 1440x900 screenshot of the page as tests/ui/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(exist_ok=True)
    target = SCREENSHOTS / f"{re.sub(r'[^a-z0-9_-]+', '-', name.lower())}.png"
    # Written aside and renamed: another xdist worker may save the same name (the other
    # backend's run of the test) at the same moment.
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    partial.write_bytes(tab.screenshot())
    os.replace(partial, target)


@contextmanager
def logged_in(site: Site, email: str) -> Iterator[httpx.Client]:
    """An HTTP client of ``site`` logged in as ``email`` through the login form."""
    with httpx.Client(base_url=site.url, timeout=30) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token
        data = {"csrf_token": token.group(1), "email": email, "password": PASSWORD}
        assert client.post("/login", data=data).status_code in (200, 303)
        yield client


def login(tab: Any, url: str, email: str, password: str = PASSWORD) -> None:
    """Log in through the login form."""
    tab.goto(f"{url}/login")
    tab.fill("input[name=email]", email)
    tab.fill("input[name=password]", password)
    tab.click("form[action='/login'] button[type=submit]")
    tab.wait_for_load_state()
    assert "/login" not in tab.url, "login failed"
