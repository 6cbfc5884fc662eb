"""SCIM 2.0 provisioning through real HTTP on both backends, driven by a small client
that speaks RFC 7644 as an identity provider does (``application/scim+json``, list
responses, ``userName eq`` filters, error bodies): discovery, provisioning, listing
with a filter and pages, deprovisioning, after which the person's dashboard session
cookie stops working on the next request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import support
from lanterna.accounts import store as accounts
from lanterna.server.app import create_app
from lanterna.store import projects
from spec_schemas import conforms
from ui.conftest import PASSWORD, Browser

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimClient:
    """What an identity provider sends (RFC 7644 section 3)."""

    def __init__(self, http: Browser, auth: tuple[str, str]) -> None:
        self.http, self.auth = http, auth
        self.base = "/api/public/scim"
        self.headers = {"Content-Type": "application/scim+json", "Accept": "application/scim+json"}

    def get(self, path: str, **params: Any) -> Any:
        return self.http.get(self.base + path, params=params, auth=self.auth, headers=self.headers)

    def create(self, user: dict[str, Any]) -> Any:
        import json

        return self.http.post(
            self.base + "/Users", content=json.dumps(user), auth=self.auth, headers=self.headers
        )

    def delete(self, user_id: str) -> Any:
        return self.http.delete(
            f"{self.base}/Users/{user_id}", auth=self.auth, headers=self.headers
        )

    def find(self, user_name: str) -> list[dict[str, Any]]:
        answer = self.get("/Users", filter=f'userName eq "{user_name}"')
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["schemas"] == [LIST]
        return list(body["Resources"])


@pytest.fixture
def scim(db_url: str, tmp_path: Path) -> Iterator[tuple[ScimClient, Browser, support.Project]]:
    """The app, a project, an organisation key's SCIM client and a browser."""
    app = create_app(support.make_settings(db_url, tmp_path))
    project = support.new_project(db_url, "Shop")

    def org_key(c: Any) -> Any:
        org_id = projects.get_project(c, project.id)["org_id"]
        return projects.create_org_key(c, org_id, "okta")

    key = support._in_transaction(db_url, org_key)
    support.SECRETS.add(key.secret_key)
    with Browser(app, client=("127.0.0.1", 50000)) as browser:
        yield ScimClient(browser, (key.public_key, key.secret_key)), browser, project


def test_discovery(scim):
    client, _, _ = scim
    config = client.get("/ServiceProviderConfig").json()
    conforms("ServiceProviderConfig", config)
    assert config["filter"] == {"supported": True, "maxResults": 100}
    assert config["patch"] == {"supported": False}
    assert config["authenticationSchemes"][0]["type"] == "httpbasic"
    types = client.get("/ResourceTypes").json()
    conforms("ResourceTypesResponse", types)
    assert types["totalResults"] == 1 and types["Resources"][0]["endpoint"] == "/Users"
    assert types["Resources"][0]["schema"] == USER
    schemas = client.get("/Schemas").json()
    conforms("SchemasResponse", schemas)
    names = [a["name"] for a in schemas["Resources"][0]["attributes"]]
    assert schemas["Resources"][0]["id"] == USER and "userName" in names


def test_provision_list_deprovision_ends_session(scim, db_url: str):
    client, browser, project = scim
    grace = {
        "schemas": [USER],
        "userName": "Grace.Hopper@Example.com",
        "name": {"givenName": "Grace", "familyName": "Hopper"},
        "emails": [{"primary": True, "value": "grace.hopper@example.com", "type": "work"}],
        "active": True,
        "password": "placeholder-from-the-idp",
    }
    made = client.create(grace)
    assert made.status_code == 201, made.text
    user = made.json()
    conforms("ScimUser", user)
    assert user["schemas"] == [USER] and user["userName"] == "grace.hopper@example.com"
    assert user["name"] == {"formatted": "Grace Hopper"}
    assert user["emails"][0]["value"] == "grace.hopper@example.com"
    assert user["meta"]["resourceType"] == "User"
    again = client.create(grace)
    assert again.status_code == 409
    assert again.json()["schemas"] == [ERROR] and again.json()["scimType"] == "uniqueness"
    for n in range(3):
        body = {"userName": f"user{n}@example.com", "name": {"formatted": f"User {n}"}}
        assert client.create(body).status_code == 201

    assert [u["id"] for u in client.find("grace.hopper@example.com")] == [user["id"]]
    assert client.find("nobody@example.com") == []
    page = client.get("/Users", startIndex=2, count=2).json()
    conforms("ScimUsersListResponse", page)
    assert page["totalResults"] == 4 and page["startIndex"] == 2 and page["itemsPerPage"] == 2
    assert [u["userName"] for u in page["Resources"]] == ["user0@example.com", "user1@example.com"]
    bad = client.get("/Users", filter='displayName co "x"')
    assert bad.status_code == 400 and bad.json()["scimType"] == "invalidFilter"
    assert client.get(f"/Users/{user['id']}").json()["userName"] == "grace.hopper@example.com"

    # Provisioned without a password; the person sets one (the reset flow) and gets a
    # project role from an administrator, then works in the dashboard.
    def activate(c: Any) -> None:
        accounts.set_password(c, user["id"], PASSWORD)
        accounts.set_member(c, user["id"], project.id, "member")

    support._in_transaction(db_url, activate)
    assert browser.login("grace.hopper@example.com") == 303
    traces = f"/project/{project.id}/traces"
    assert browser.get(traces).status_code == 200

    gone = client.delete(user["id"])
    assert gone.status_code == 204 and gone.content == b""
    after = browser.get(traces, follow_redirects=False)
    assert after.status_code in (302, 303) and "/login" in after.headers["location"]
    assert client.find("grace.hopper@example.com") == []
    missing = client.get(f"/Users/{user['id']}")
    assert missing.status_code == 404 and missing.json()["schemas"] == [ERROR]
    assert client.delete(user["id"]).status_code == 404
    # The account stays (other organisations may hold it); its project role went.
    members = support._in_transaction(db_url, lambda c: accounts.list_members(c, project.id))
    assert members == []
    # Provisioning the person again brings them back without a role of their own.
    assert client.create(grace).status_code == 201


def test_bad_bodies_are_scim_errors(scim):
    client, _, _ = scim
    for body in ({"name": {}}, {"userName": "not-an-email"}, [1]):
        answer = client.create(body)  # type: ignore[arg-type]
        assert answer.status_code == 400 and answer.json()["schemas"] == [ERROR], body
