"""Password rules: 12+ characters, not a common password; weak old passwords must change."""

from __future__ import annotations

import pytest

from conftest import Browser, in_transaction
from lanterna.accounts import store as accounts
from lanterna.accounts.passwords import common_passwords
from lanterna.server.app import create_app
from support import make_settings, new_project

STRONG = "a long and unusual phrase"


@pytest.mark.parametrize(
    ("new", "reason"),
    [
        ("password", "at least 12 characters"),
        ("12345678", "at least 12 characters"),
        ("qwerty123456", "most common passwords"),
        ("1QAZ2WSX3EDC", "most common passwords"),  # in any case
    ],
)
def test_weak_new_passwords_are_refused(db_url, tmp_path, new, reason):
    new_project(db_url)
    in_transaction(db_url, lambda c: accounts.create_user(c, "me@example.com", STRONG))
    app = create_app(make_settings(db_url, tmp_path))
    with Browser(app) as client:
        assert client.login("me@example.com", STRONG) == 303
        token = client.csrf("/account")
        response = client.post(
            "/account", data={"csrf_token": token, "current": STRONG, "new": new, "again": new}
        )
        assert response.status_code == 400 and reason in response.text


def test_the_shipped_list_is_the_common_passwords():
    common = common_passwords()
    assert len(common) == 30_000
    assert {"password", "123456", "qwerty123456", "iloveyou"} <= common


def test_an_old_weak_password_must_be_changed_at_next_login(db_url, tmp_path):
    project = new_project(db_url)

    def old_account(c):  # made before the rules: create_user does not check them
        user_id = accounts.create_user(c, "old@example.com", "password")
        accounts.set_member(c, user_id, project.id, "owner")

    in_transaction(db_url, old_account)
    app = create_app(make_settings(db_url, tmp_path))
    with Browser(app) as client:
        token = client.csrf("/login")
        response = client.post(
            "/login",
            data={"csrf_token": token, "email": "old@example.com", "password": "password"},
            follow_redirects=False,
        )
        assert response.status_code == 303 and response.headers["location"] == "/account"
        page = client.get("/account")
        assert 'data-testid="must-change"' in page.text
        # Every other page sends the user back until the password is changed.
        traces = client.get(f"/project/{project.id}/traces", follow_redirects=False)
        assert traces.status_code == 303 and traces.headers["location"] == "/account"
        response = client.post(
            "/account",
            data={"csrf_token": client.csrf("/account"), "current": "password",
                  "new": STRONG, "again": STRONG},
        )  # fmt: skip
        assert response.status_code == 200 and "Password changed" in response.text
        assert client.get(f"/project/{project.id}/traces").status_code == 200
