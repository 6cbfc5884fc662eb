"""The dataset pages over real HTTP (the live server, both backends): owners create
datasets and add and edit items, a schema violation or bad JSON is answered on the page
with nothing stored, viewers read but cannot write, another project's dataset is a 404,
and what users typed is escaped."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from conftest import PASSWORD, Site

XSS = "<script>alert(1)</script>"


@pytest.fixture
def logged_in(site: Site) -> Iterator[Callable[[str], httpx.Client]]:
    """Clients logged in through the login form; closed after the test."""
    made: list[httpx.Client] = []

    def login(email: str) -> httpx.Client:
        client = httpx.Client(base_url=site.url, follow_redirects=False)
        made.append(client)
        data = {"csrf_token": csrf(client, "/login"), "email": email, "password": PASSWORD}
        assert client.post("/login", data=data).status_code == 303
        return client

    yield login
    for client in made:
        client.close()


def csrf(client: httpx.Client, path: str) -> str:
    reply = client.get(path)
    assert reply.status_code == 200, reply.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', reply.text)
    assert found, f"no form on {path}"
    return found.group(1)


def post(client: httpx.Client, site: Site, path: str, **data: str) -> httpx.Response:
    token = csrf(client, f"/project/{site.project.id}/datasets")
    return client.post(
        f"/project/{site.project.id}/datasets{path}", data={"csrf_token": token, **data}
    )


def api(site: Site, path: str, **params: Any) -> Any:
    reply = httpx.get(f"{site.url}{path}", params=params, auth=site.project.auth)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_owner_creates_a_dataset_adds_and_edits_items(site: Site, logged_in) -> None:
    owner = logged_in(site.owner)
    schema = '{"type": "object", "required": ["q"]}'
    made = post(owner, site, "", name="ui-qa", description=XSS, input_schema=schema)
    assert made.status_code == 303
    dataset_path = made.headers["location"]
    dataset_id = dataset_path.rsplit("/", 1)[1]
    listed = owner.get(f"/project/{site.project.id}/datasets").text
    assert "ui-qa" in listed and XSS not in listed and "&lt;script&gt;" in listed

    added = post(owner, site, f"/{dataset_id}/items", input='{"q": "hi"}', expected_output="HI")
    assert added.status_code == 303
    (item,) = api(site, "/api/public/dataset-items", datasetName="ui-qa")["data"]
    assert item["input"] == {"q": "hi"} and item["expectedOutput"] == "HI"

    # Against the schema: the reason on the page, nothing stored.
    refused = post(owner, site, f"/{dataset_id}/items", input='{"other": 1}')
    assert refused.status_code == 400
    assert "&#39;q&#39; is a required property" in refused.text
    bad_json = post(owner, site, f"/{dataset_id}/items", input='{"q": 1}', metadata="{oops")
    assert bad_json.status_code == 400 and "metadata: not valid JSON" in bad_json.text
    assert len(api(site, "/api/public/dataset-items", datasetName="ui-qa")["data"]) == 1

    # Edit: archive it with a new expected output.
    edited = post(
        owner, site, f"/{dataset_id}/items", item_id=item["id"], input='{"q": "hi"}',
        expected_output="Hello", status="ARCHIVED",
    )  # fmt: skip
    assert edited.status_code == 303
    stored = api(site, f"/api/public/dataset-items/{item['id']}")
    assert (stored["expectedOutput"], stored["status"]) == ("Hello", "ARCHIVED")
    page = owner.get(dataset_path).text
    assert "ARCHIVED" in page and "Hello" in page


def test_viewer_cannot_write_and_other_projects_get_404(site: Site, logged_in) -> None:
    owner = logged_in(site.owner)
    dataset_id = post(owner, site, "", name="kept").headers["location"].rsplit("/", 1)[1]
    viewer = logged_in(site.viewer)
    page = viewer.get(f"/project/{site.project.id}/datasets/{dataset_id}")
    assert page.status_code == 200 and "kept" in page.text and "Add an item" not in page.text
    assert post(viewer, site, "", name="mine").status_code == 403
    assert post(viewer, site, f"/{dataset_id}/items", input="x").status_code == 403
    assert api(site, "/api/public/v2/datasets")["meta"]["totalItems"] == 1
    assert owner.get(f"/project/{site.project.id}/datasets/nope").status_code == 404
    compare = owner.get(f"/project/{site.project.id}/datasets/{dataset_id}/compare?runs=a&runs=b")
    assert compare.status_code == 404
