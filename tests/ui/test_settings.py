"""Project settings through the real app: members and roles, project name and
retention, model prices, and that keys of other projects are out of reach."""

from __future__ import annotations

import re

from conftest import PASSWORD, Browser, add_user


def _row(html: str, email: str) -> str:
    """The members table row of ``email``."""
    return next(row for row in html.split("<tr>") if email in row).split("</tr>")[0]


def _user_id(client: Browser, email: str) -> str:
    return str(
        client.app.state.runtime.read_sync(
            lambda c: c.scalar("SELECT id FROM users WHERE email = ?", (email,))
        )
    )


def _post(client: Browser, path: str, **data: str):
    token = client.csrf(path.rsplit("/settings", 1)[0] + "/settings")
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


def test_invite_members_and_change_roles(two_projects) -> None:
    client, a, _ = two_projects
    assert client.login("owner-a@example.com") == 303
    base = f"/project/{a.id}/settings"
    response = _post(client, f"{base}/members", email="New.Person@Example.com", role="member")
    assert response.status_code == 200
    password = re.search(r'class="secret">([^<]+)<', response.text).group(1)
    # The invited person logs in with the one-time password and is sent to change it.
    invited = Browser(client.app, client=("127.0.0.1", 50010))
    token = invited.csrf("/login")
    login = invited.post(
        "/login",
        data={"csrf_token": token, "email": "new.person@example.com", "password": password},
        follow_redirects=False,
    )
    assert login.status_code == 303 and login.headers["location"] == "/account"
    assert invited.get(f"/project/{a.id}/traces").status_code == 200
    # An existing account is added without a new password.
    add_user(client.app.state.runtime.db.url, "existing@example.com", {})
    response = _post(client, f"{base}/members", email="existing@example.com", role="viewer")
    assert response.status_code == 303
    page = client.get(base).text
    assert "existing@example.com" in page and "new.person@example.com" in page

    viewer_a = _user_id(client, "viewer-a@example.com")
    my_id = _user_id(client, "owner-a@example.com")
    assert _post(client, f"{base}/members/role", user_id=viewer_a, role="admin").status_code == 303
    # An admin cannot make owners nor change owners; nobody edits their own row.
    admin = Browser(client.app, client=("127.0.0.1", 50011))
    assert admin.login("viewer-a@example.com") == 303
    assert _post(admin, f"{base}/members", email="x@example.com", role="owner").status_code == 403
    assert "user_id" not in _row(admin.get(base).text, "owner-a@example.com")
    assert "user_id" not in _row(admin.get(base).text, "viewer-a@example.com")
    assert "user_id" in _row(admin.get(base).text, "existing@example.com")
    response = _post(admin, f"{base}/members/role", user_id=my_id, role="viewer")
    assert response.status_code == 403
    # The last owner stays an owner.
    response = _post(client, f"{base}/members/role", user_id=my_id, role="viewer")
    assert response.status_code == 403 and "at least one owner" in response.text
    # Removing a member takes their access away.
    assert _post(client, f"{base}/members/remove", user_id=viewer_a).status_code == 303
    assert admin.get(f"/project/{a.id}/traces").status_code == 404


def test_an_admin_cannot_demote_an_organisation_owner_through_an_invite(two_projects) -> None:
    # An organisation owner is an owner of each of its projects without a project
    # membership; re-inviting their email must not let an admin lower that role, nor
    # an owner take away the project's only owner.
    from lanterna.accounts import orgs
    from lanterna.accounts import store as accounts

    client, a, _ = two_projects
    rt = client.app.state.runtime
    boss = add_user(rt.db.url, "boss@example.com", {})
    admin_id = _user_id(client, "viewer-a@example.com")

    def setup(c) -> None:
        org = c.scalar("SELECT org_id FROM projects WHERE id = ?", (a.id,))
        orgs.set_org_member(c, str(org), boss, "owner")
        c.run("UPDATE memberships SET role = 'admin' WHERE user_id = ?", (admin_id,))

    rt.writer.run_sync(setup)
    base = f"/project/{a.id}/settings"
    admin = Browser(client.app, client=("127.0.0.1", 50012))
    assert admin.login("viewer-a@example.com") == 303
    response = _post(admin, f"{base}/members", email="boss@example.com", role="viewer")
    assert response.status_code == 403 and "above yours" in response.text
    # An instance admin's access does not come from the project: an admin may add one.
    add_user(rt.db.url, "root@example.com", {}, admin=True)
    response = _post(admin, f"{base}/members", email="root@example.com", role="member")
    assert response.status_code == 303, response.text
    boss_tab = Browser(client.app, client=("127.0.0.1", 50013))
    assert boss_tab.login("boss@example.com") == 303
    role = rt.read_sync(lambda c: accounts.role_in(c, accounts.get_user(c, boss), a.id))
    assert role == "owner"  # unchanged
    # The project's member owner leaves; the organisation owner is then its only owner.
    owner_id = _user_id(client, "owner-a@example.com")
    rt.writer.run_sync(lambda c: c.run("DELETE FROM memberships WHERE user_id = ?", (owner_id,)))
    response = _post(boss_tab, f"{base}/members", email="boss@example.com", role="member")
    assert response.status_code == 403 and "at least one owner" in response.text


def test_project_name_retention_and_model_prices(two_projects) -> None:
    client, a, _ = two_projects
    assert client.login("owner-a@example.com") == 303
    base = f"/project/{a.id}/settings"
    assert _post(client, f"{base}/project", name="Renamed", retention_days="30").status_code == 303
    page = client.get(base).text
    assert "Renamed" in page and 'value="30"' in page
    bad = _post(client, f"{base}/project", name="Renamed", retention_days="-1")
    assert bad.status_code == 400 and "Retention" in bad.text

    response = _post(
        client, f"{base}/models", model_name="my-finetune", input_price="2.5", output_price="10"
    )
    assert response.status_code == 303
    listed = client.get("/api/public/models", auth=a.auth).json()["data"]
    mine = next(m for m in listed if m["modelName"] == "my-finetune")
    assert mine["inputPrice"] == 2.5e-06 and mine["outputPrice"] == 1e-05
    assert "$2.50" in client.get(base).text
    bad = _post(client, f"{base}/models", model_name="x", match_pattern="([", input_price="1")
    assert bad.status_code == 400 and "matchPattern" in bad.text
    assert _post(client, f"{base}/models/delete", model_id=mine["id"]).status_code == 303
    listed = client.get("/api/public/models", auth=a.auth).json()["data"]
    assert not any(m["modelName"] == "my-finetune" for m in listed)


def test_keys_of_other_projects_are_out_of_reach(two_projects) -> None:
    client, a, b = two_projects
    assert client.login("owner-a@example.com") == 303
    key_b = client.app.state.runtime.read_sync(
        lambda c: c.scalar("SELECT id FROM api_keys WHERE project_id = ?", (b.id,))
    )
    response = _post(client, f"/project/{a.id}/settings/keys/revoke", key_id=key_b)
    assert response.status_code == 404
    assert client.get("/api/public/projects", auth=b.auth).status_code == 200
    # Viewers see no keys and cannot make one.
    viewer = Browser(client.app, client=("127.0.0.1", 50012))
    assert viewer.login("viewer-a@example.com") == 303
    page = viewer.get(f"/project/{a.id}/settings").text
    assert a.public_key not in page
    assert _post(viewer, f"/project/{a.id}/settings/keys", note="x").status_code == 403
    assert PASSWORD  # the fixture's accounts all share it
