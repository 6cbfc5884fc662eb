"""Organisation API keys: made with ``lanterna keys create --org`` or by an owner on the
settings page, accepted only by the organisation-level routes (a project key gets 403
there, an organisation key gets 403 on a project's routes), listed without their
secrets, revoked at once. Both backends, real HTTP through the app."""

from __future__ import annotations

import re
from typing import Any

import pytest

import support
from helpers import event, ingest, iso
from lanterna.accounts import orgs
from lanterna.cli import main
from lanterna.store import projects
from spec_schemas import conforms
from support import Api, db_args


def org_of(api: Api) -> str:
    """The organisation id of the fixture's project."""
    row = support._in_transaction(api.app, lambda c: projects.get_project(c, api.project.id))
    return str(row["org_id"])


def _printed_keys(out: str) -> tuple[str, str]:
    public = re.search(r"LANGFUSE_PUBLIC_KEY=(\S+)", out)
    secret = re.search(r"LANGFUSE_SECRET_KEY=(\S+)", out)
    assert public and secret, out
    support.SECRETS.add(secret.group(1))
    return public.group(1), secret.group(1)


def cli_org_key(api: Api, db_url: str, capsys: Any, org: str | None = None) -> tuple[str, str]:
    """``lanterna keys create --org``: the printed key pair."""
    assert main(["keys", "create", "--org", org or org_of(api), *db_args(db_url)]) == 0
    return _printed_keys(capsys.readouterr().out)


def test_cli_org_key_opens_org_routes_only(api: Api, db_url: str, capsys):
    org_key = cli_org_key(api, db_url, capsys)
    projects_seen = api.get("/api/public/organizations/projects", auth=org_key)
    assert projects_seen.status_code == 200, projects_seen.text
    conforms("OrganizationProjectsResponse", projects_seen.json())
    (only,) = projects_seen.json()["projects"]
    assert only["id"] == api.project.id and only["name"] == "Test Project"
    assert only["createdAt"] and only["updatedAt"]

    keys_seen = api.get("/api/public/organizations/apiKeys", auth=org_key).json()
    conforms("OrganizationApiKeysResponse", keys_seen)
    listed = keys_seen["apiKeys"]
    assert [k["publicKey"] for k in listed] == [org_key[0]]
    assert listed[0]["displaySecretKey"] == f"sk-lf-...{org_key[1][-4:]}"
    assert org_key[1] not in str(listed)

    # The organisation key opens no project's data, and says why.
    for method, path in (
        ("GET", "/api/public/traces"),
        ("GET", "/api/public/projects"),
        ("POST", "/api/public/ingestion"),
    ):
        refused = api.request(method, path, auth=org_key, json={"batch": []})
        assert refused.status_code == 403, (path, refused.text)
        assert "organization" in refused.json()["message"].lower()

    # A project key gets 403 on the organisation's routes; wrong secrets get 401.
    for path in ("/api/public/organizations/projects", "/api/public/organizations/apiKeys"):
        assert api.get(path).status_code == 403
        assert api.get(path, auth=(org_key[0], "sk-lf-wrong")).status_code == 401
        assert api.get(path).json()["message"].startswith("Access denied")
    assert api.get("/api/public/organizations/projects", auth=None).status_code == 401


def test_cli_lists_and_revokes_org_keys(api: Api, db_url: str, capsys):
    public, _ = cli_org_key(api, db_url, capsys, org="Org of Test Project")  # by name
    assert main(["keys", "list", *db_args(db_url)]) == 0
    listing = capsys.readouterr().out
    line = next(x for x in listing.splitlines() if x.startswith(public))
    assert f"org={org_of(api)}" in line and "active" in line
    assert main(["keys", "revoke", public, *db_args(db_url)]) == 0
    assert main(["keys", "list", "--org", org_of(api), *db_args(db_url)]) == 0
    assert "revoked" in capsys.readouterr().out


def test_cli_refuses_unknown_org_and_mixed_flags(db_url: str, capsys):
    with pytest.raises(SystemExit, match="no organization"):
        main(["keys", "create", "--org", "nope", *db_args(db_url)])
    with pytest.raises(SystemExit, match="--org"):
        main(["keys", "create", "--org", "nope", "--role", "viewer", *db_args(db_url)])


def test_org_key_cannot_ingest_and_project_key_still_can(api: Api, db_url: str, capsys):
    org_key = cli_org_key(api, db_url, capsys)
    batch = [event("trace-create", {"id": "t-1", "timestamp": iso()})]
    refused = api.post("/api/public/ingestion", json={"batch": batch}, auth=org_key)
    assert refused.status_code == 403
    assert ingest(api, *batch)["successes"]


def test_org_owner_makes_and_revokes_org_key_on_settings_page(db_url: str, tmp_path):
    from lanterna.server.app import create_app
    from ui.conftest import Browser, add_user

    app = create_app(support.make_settings(db_url, tmp_path))
    project = support.new_project(db_url, "Shop")
    owner_id = add_user(db_url, "owner@example.com", {project.id: "owner"})
    add_user(db_url, "project-owner@example.com", {project.id: "owner"})

    def own_org(c: Any) -> None:
        orgs.set_org_member(c, projects.get_project(c, project.id)["org_id"], owner_id, "owner")

    support._in_transaction(db_url, own_org)
    settings = f"/project/{project.id}/settings"
    with Browser(app, client=("127.0.0.1", 50000)) as owner:
        # A project's owner who does not own the organisation: no organisation keys
        # (one would reach every project of the organisation).
        assert owner.login("project-owner@example.com") == 303
        assert "Organization API keys" not in owner.get(settings).text
        token = owner.csrf(settings)
        denied = owner.post(f"{settings}/org-keys", data={"csrf_token": token, "note": "x"})
        assert denied.status_code == 403
        owner.cookies.clear()
        assert owner.login("owner@example.com") == 303
        token = owner.csrf(settings)
        made = owner.post(f"{settings}/org-keys", data={"csrf_token": token, "note": "terraform"})
        assert made.status_code == 200
        public = re.search(r"public key: (pk-lf-\S+)", made.text)
        secret = re.search(r'id="new-org-secret">(sk-lf-[^<]+)<', made.text)
        assert public and secret
        support.SECRETS.add(secret.group(1))
        key = (public.group(1), secret.group(1))
        assert owner.get("/api/public/organizations/projects", auth=key).status_code == 200
        page = owner.get(settings).text
        assert key[0] in page and key[1] not in page and "terraform" in page
        row = re.search(
            rf'data-org-key="{re.escape(key[0])}".*?name="key_id" value="([^"]+)"', page, re.S
        )
        assert row
        revoked = owner.post(
            f"{settings}/org-keys/revoke",
            data={"csrf_token": token, "key_id": row.group(1)},
            follow_redirects=False,
        )
        assert revoked.status_code == 303
        assert owner.get("/api/public/organizations/projects", auth=key).status_code == 401
        audit = support._in_transaction(
            db_url,
            lambda c: c.all(
                "SELECT actor, action FROM audit_log WHERE project_id = ? ORDER BY at",
                (project.id,),
            ),
        )
        assert [(a["actor"], a["action"]) for a in audit] == [
            ("user:owner@example.com", "org_api_key.create"),
            ("user:owner@example.com", "org_api_key.revoke"),
        ]
