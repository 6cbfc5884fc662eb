"""The organisation-level API with an organisation key, through real HTTP on both
backends: create a project, a key in it, ingest with that key, list projects, change
the project, manage members, delete the project (every row of it gone); a project key
gets 403 on each organisation route; changes are in the audit log. Also
``POST /api/public/feedback`` with a project key."""

from __future__ import annotations

from typing import Any

import support
from helpers import event, ingest, iso
from lanterna.accounts import store as accounts
from lanterna.server.org_auth import require_org
from lanterna.store import projects
from spec_schemas import conforms
from support import Api
from test_org_keys import org_of


def org_key(api: Api) -> tuple[str, str]:
    """A fresh organisation key of the fixture project's organisation."""
    org = org_of(api)
    key = support._in_transaction(api.app, lambda c: projects.create_org_key(c, org))
    support.SECRETS.add(key.secret_key)
    return key.public_key, key.secret_key


def org_routes(api: Api) -> list[tuple[str, str]]:
    """Every (method, path) of the app that takes an organisation key."""
    found = []
    for route in support.all_routes(api.app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            continue
        calls = {d.call for d in dependant.dependencies}
        if require_org in calls:
            found += [(m, route.path) for m in sorted(route.methods)]
    return found


def rows_of(db_url: str, project_id: str) -> dict[str, int]:
    """Rows holding ``project_id`` per table (tables with none left out)."""

    def count(c: Any) -> dict[str, int]:
        tables = [r["name"] for r in c.all(c.dialect.tables_with_column(), ("project_id",))]
        counts = {
            t: c.scalar(f"SELECT COUNT(*) FROM {t} WHERE project_id = ?", (project_id,))
            for t in tables
        }
        counts["projects"] = c.scalar("SELECT COUNT(*) FROM projects WHERE id = ?", (project_id,))
        return {t: int(n) for t, n in counts.items() if n}

    return support._in_transaction(db_url, count)


def test_project_key_gets_403_on_every_org_route(api: Api):
    routes = org_routes(api)
    assert len(routes) >= 17, routes  # projects, keys, memberships, SCIM
    for method, path in routes:
        url = path.replace("{projectId}", api.project.id).replace("{apiKeyId}", "k")
        url = url.replace("{userId}", "u")
        answer = api.request(method, url, json={"name": "x", "userId": "u", "role": "VIEWER"})
        assert answer.status_code == 403, (method, path, answer.text)
        assert "organization-scoped" in answer.json()["message"]


def test_org_key_flow_project_key_ingest_list_delete(api: Api, db_url: str):
    key = org_key(api)
    made = api.post(
        "/api/public/projects",
        json={"name": "Checkout", "metadata": {"team": "payments"}, "retention": 30},
        auth=key,
    )
    assert made.status_code == 200, made.text
    project = made.json()
    conforms("Project", project)
    assert project["name"] == "Checkout" and project["metadata"] == {"team": "payments"}
    assert project["retentionDays"] == 30
    assert project["organization"]["id"] == org_of(api)
    pid = project["id"]

    created = api.post(f"/api/public/projects/{pid}/apiKeys", json={"note": "ci"}, auth=key)
    assert created.status_code == 200, created.text
    new_key = created.json()
    conforms("ApiKeyResponse", new_key)
    support.SECRETS.add(new_key["secretKey"])
    assert new_key["publicKey"].startswith("pk-lf-") and new_key["note"] == "ci"
    assert new_key["displaySecretKey"] == f"sk-lf-...{new_key['secretKey'][-4:]}"
    project_auth = (new_key["publicKey"], new_key["secretKey"])

    # The new key works on the project's routes (and sees only its project).
    seen = api.get("/api/public/projects", auth=project_auth).json()["data"]
    assert [p["id"] for p in seen] == [pid]
    trace = event("trace-create", {"id": "t-1", "timestamp": iso(), "name": "buy"})
    span = event("span-create", {"id": "s-1", "traceId": "t-1", "startTime": iso()})
    assert len(ingest(api, trace, span, auth=project_auth)["successes"]) == 2
    assert api.get("/api/public/traces/t-1", auth=project_auth).json()["name"] == "buy"

    listing = api.get("/api/public/organizations/projects", auth=key).json()
    conforms("OrganizationProjectsResponse", listing)
    assert [p["name"] for p in listing["projects"]] == ["Test Project", "Checkout"]
    key_list = api.get(f"/api/public/projects/{pid}/apiKeys", auth=key).json()
    conforms("ApiKeyList", key_list)
    keys = key_list["apiKeys"]
    assert [k["publicKey"] for k in keys] == [new_key["publicKey"]]
    assert new_key["secretKey"] not in str(keys)

    renamed = api.put(f"/api/public/projects/{pid}", json={"name": "Checkout v2"}, auth=key)
    assert renamed.status_code == 200
    assert renamed.json()["retentionDays"] == 30  # absent: kept
    assert renamed.json()["metadata"] == {"team": "payments"}

    assert rows_of(db_url, pid)["traces"] == 1
    gone = api.delete(f"/api/public/projects/{pid}", auth=key)
    assert gone.status_code == 202 and gone.json()["success"] is True
    conforms("ProjectDeletionResponse", gone.json())
    assert rows_of(db_url, pid) == {}
    assert api.get("/api/public/projects", auth=project_auth).status_code == 401
    listed = api.get("/api/public/organizations/projects", auth=key).json()["projects"]
    assert [p["name"] for p in listed] == ["Test Project"]
    assert api.delete(f"/api/public/projects/{pid}", auth=key).status_code == 404
    # The deletion is in the organisation's remaining project's log.
    log = api.get("/api/public/audit-log").json()["data"]
    assert any(e["action"] == "project.delete" and e["target"] == pid for e in log)
    assert all(e["actor"] == f"org-key:{key[0]}" for e in log)


def test_project_writes_are_checked_and_scoped(api: Api):
    key = org_key(api)
    bad = [{}, {"name": ""}, {"name": "x", "retention": 2}, {"name": "x", "retention": "7"}]
    for body in bad:
        answer = api.post("/api/public/projects", json=body, auth=key)
        assert answer.status_code == 400, body
    assert api.post("/api/public/projects", content=b"{", auth=key).status_code == 400
    # Another organisation's project is not there for this key.
    other = api.new_project("Elsewhere")
    assert (
        api.put(f"/api/public/projects/{other.id}", json={"name": "x"}, auth=key).status_code == 404
    )
    assert api.get(f"/api/public/projects/{other.id}/apiKeys", auth=key).status_code == 404
    assert api.delete(f"/api/public/projects/{other.id}", auth=key).status_code == 404
    assert api.get("/api/public/projects", auth=other.auth).status_code == 200


def test_predefined_keys_and_key_revocation(api: Api):
    key = org_key(api)
    pid = api.project.id
    url = f"/api/public/projects/{pid}/apiKeys"
    pair = {"publicKey": "pk-lf-fixed-public-1", "secretKey": "sk-lf-fixed-secret-1"}
    support.SECRETS.add(pair["secretKey"])
    assert api.post(url, json={"publicKey": pair["publicKey"]}, auth=key).status_code == 400
    bad = {"publicKey": "pub-1234567890", "secretKey": pair["secretKey"]}
    assert api.post(url, json=bad, auth=key).status_code == 400
    made = api.post(url, json=pair, auth=key)
    assert made.status_code == 200 and made.json()["publicKey"] == pair["publicKey"]
    assert api.post(url, json=pair, auth=key).status_code == 409
    auth = (pair["publicKey"], pair["secretKey"])
    assert api.get("/api/public/projects", auth=auth).status_code == 200
    key_id = made.json()["id"]
    deleted = api.delete(f"{url}/{key_id}", auth=key)
    assert deleted.status_code == 200 and deleted.json() == {"success": True}
    conforms("ApiKeyDeletionResponse", deleted.json())
    assert api.get("/api/public/projects", auth=auth).status_code == 401
    assert api.delete(f"{url}/{key_id}", auth=key).status_code == 404
    actions = [e["action"] for e in api.get("/api/public/audit-log").json()["data"]]
    assert actions[:2] == ["api_key.revoke", "api_key.create"]


def _user(api: Api, email: str, name: str | None = None) -> str:
    return support._in_transaction(
        api.app, lambda c: accounts.create_user(c, email, None, name=name)
    )


def test_memberships(api: Api):
    key = org_key(api)
    pid = api.project.id
    ada = _user(api, "ada@example.com", "Ada")
    bob = _user(api, "bob@example.com")
    org_url = "/api/public/organizations/memberships"
    project_url = f"/api/public/projects/{pid}/memberships"
    assert api.get(org_url, auth=key).json() == {"memberships": []}
    # Bob is no member of the organisation: no project role for him.
    refused = api.put(project_url, json={"userId": bob, "role": "VIEWER"}, auth=key)
    assert refused.status_code == 404
    assert api.put(org_url, json={"userId": ada, "role": "owner"}, auth=key).status_code == 400
    assert api.put(org_url, json={"userId": "nobody", "role": "ADMIN"}, auth=key).status_code == 404
    made = api.put(org_url, json={"userId": ada, "role": "ADMIN"}, auth=key)
    assert made.json() == {
        "userId": ada,
        "role": "ADMIN",
        "email": "ada@example.com",
        "name": "Ada",
    }
    # An organisation role reaches every project of the organisation.
    assert (
        support._in_transaction(
            api.app, lambda c: accounts.role_in(c, accounts.get_user(c, ada), pid)
        )
        == "admin"
    )
    conforms("MembershipResponse", made.json())
    conforms("MembershipsResponse", api.get(org_url, auth=key).json())
    set_role = api.put(project_url, json={"userId": ada, "role": "VIEWER"}, auth=key)
    assert set_role.status_code == 200 and set_role.json()["role"] == "VIEWER"
    assert api.get(project_url, auth=key).json()["memberships"][0]["role"] == "VIEWER"
    assert (
        support._in_transaction(
            api.app, lambda c: accounts.role_in(c, accounts.get_user(c, ada), pid)
        )
        == "viewer"
    )
    # A project keeps at least one owner (as in the dashboard).
    assert api.put(project_url, json={"userId": ada, "role": "OWNER"}, auth=key).status_code == 200
    last = api.put(project_url, json={"userId": ada, "role": "ADMIN"}, auth=key)
    assert last.status_code == 409 and "owner" in last.json()["message"]
    last = api.request("DELETE", project_url, json={"userId": ada}, auth=key)
    assert last.status_code == 409
    assert api.put(project_url, json={"userId": ada, "role": "VIEWER"}, auth=key).status_code == 409
    support._in_transaction(api.app, lambda c: accounts.set_member(c, bob, pid, "owner"))
    assert api.put(project_url, json={"userId": ada, "role": "VIEWER"}, auth=key).status_code == 200
    removed = api.request("DELETE", project_url, json={"userId": ada}, auth=key)
    assert removed.json() == {"message": "Membership deleted", "userId": ada}
    conforms("MembershipDeletionResponse", removed.json())
    left = api.get(project_url, auth=key).json()["memberships"]
    assert [(m["userId"], m["role"]) for m in left] == [(bob, "OWNER")]
    assert api.request("DELETE", project_url, json={"userId": ada}, auth=key).status_code == 404
    gone = api.request("DELETE", org_url, json={"userId": ada}, auth=key)
    assert gone.status_code == 200
    members = api.get(org_url, auth=key).json()["memberships"]
    assert [(m["userId"], m["role"]) for m in members] == [(bob, "NONE")]  # via his project
    actions = [e["action"] for e in api.get("/api/public/audit-log").json()["data"]]
    assert actions == ["member.remove", "member.remove"] + ["member.role"] * 3 + ["member.org_role"]


def test_an_organisation_role_change_never_leaves_a_project_without_owner(api: Api):
    key = org_key(api)
    made = api.post("/api/public/projects", json={"name": "Owned"}, auth=key)
    assert made.status_code == 200, made.text
    ada = _user(api, "ada@example.com", "Ada")
    bob = _user(api, "bob@example.com", "Bob")
    org_url = "/api/public/organizations/memberships"
    # Ada owns every project of the organisation through her organisation role.
    assert api.put(org_url, json={"userId": ada, "role": "OWNER"}, auth=key).status_code == 200
    demoted = api.put(org_url, json={"userId": ada, "role": "ADMIN"}, auth=key)
    assert demoted.status_code == 409 and "owner" in demoted.json()["message"]
    removed = api.request("DELETE", org_url, json={"userId": ada}, auth=key)
    assert removed.status_code == 409
    deprovisioned = api.request("DELETE", f"/api/public/scim/Users/{ada}", auth=key)
    assert deprovisioned.status_code == 409
    assert deprovisioned.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    roles = {m["userId"]: m["role"] for m in api.get(org_url, auth=key).json()["memberships"]}
    assert roles == {ada: "OWNER"}  # nothing was changed by the refused requests
    # Another organisation owner keeps every project owned: Ada's role may go.
    assert api.put(org_url, json={"userId": bob, "role": "OWNER"}, auth=key).status_code == 200
    assert api.put(org_url, json={"userId": ada, "role": "ADMIN"}, auth=key).status_code == 200
    assert api.request("DELETE", org_url, json={"userId": ada}, auth=key).status_code == 200
    # Bob is now the only owner: neither removed nor deprovisioned.
    assert api.request("DELETE", org_url, json={"userId": bob}, auth=key).status_code == 409
    assert api.request("DELETE", f"/api/public/scim/Users/{bob}", auth=key).status_code == 409
    roles = {m["userId"]: m["role"] for m in api.get(org_url, auth=key).json()["memberships"]}
    assert roles == {bob: "OWNER"}


def test_feedback(api: Api):
    body = {
        "targetType": "public-api",
        "target": "/api/public/traces",
        "feedback": "A filter by release would help.",
        "goal": "compare releases",
        "referenceUrl": "https://example.com/issue/1",
    }
    made = api.post("/api/public/feedback", json=body)
    assert made.status_code == 201, made.text
    feedback_id = made.json()["id"]
    conforms("SubmitFeedbackResponse", made.json())
    conforms("SubmitFeedbackRequest", body)
    stored = support._in_transaction(
        api.app, lambda c: c.one("SELECT * FROM feedback WHERE id = ?", (feedback_id,))
    )
    assert stored["project_id"] == api.project.id and stored["goal"] == "compare releases"
    assert stored["feedback"] == body["feedback"]
    for wrong in (
        {**body, "targetType": "ui"},
        {**body, "target": ""},
        {**body, "feedback": "x" * 3001},
        {**body, "referenceUrl": "ftp://example.com"},
        {"targetType": "docs", "target": "/docs"},
    ):
        assert api.post("/api/public/feedback", json=wrong).status_code == 400, wrong
    assert api.post("/api/public/feedback", json=body, auth=org_key(api)).status_code == 403
    refused = api.post("/api/public/feedback", json=body, auth=("pk-lf-none", "sk-lf-none"))
    assert refused.status_code == 401
    log = api.get("/api/public/audit-log").json()["data"]
    assert log[0]["action"] == "feedback.submit" and log[0]["target"] == feedback_id


def test_removal_from_one_organisation_does_not_log_the_user_out_of_others(api: Api):
    # Any organisation's key can remove (or SCIM-deprovision) a user from it; that must
    # not end the user's login sessions, which serve their other organisations too. A
    # user left with nothing is logged out.
    from lanterna.accounts import orgs

    key = org_key(api)
    other = api.new_project("Elsewhere")
    other_org = support._in_transaction(
        api.app, lambda c: str(projects.get_project(c, other.id)["org_id"])
    )
    ada = _user(api, "ada@example.com", "Ada")
    this_org = org_of(api)

    def setup(c: Any) -> str:
        orgs.set_org_member(c, this_org, ada, "member")
        orgs.set_org_member(c, other_org, ada, "member")
        return accounts.create_session(c, ada, 1)

    token = support._in_transaction(api.app, setup)

    def page(project_id: str) -> int:
        api.cookies.set("lanterna_session", token)
        try:
            return api.get(f"/project/{project_id}/traces").status_code
        finally:
            api.cookies.clear()

    assert page(api.project.id) == 200 and page(other.id) == 200
    gone = api.request("DELETE", f"/api/public/scim/Users/{ada}", auth=key)
    assert gone.status_code == 204, gone.text
    assert page(api.project.id) == 404  # what she lost is refused at once
    assert page(other.id) == 200  # still logged in for the rest
    support._in_transaction(api.app, lambda c: orgs.remove_from_org(c, other_org, ada))
    alive = support._in_transaction(api.app, lambda c: accounts.session_user(c, token))
    assert alive is None
