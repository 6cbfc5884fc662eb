"""Prompt management API (Langfuse v2 prompts), on the three backends."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import httpx
import pytest

from helpers import event, ingest

pytestmark = pytest.mark.clickhouse


def create(api, **body):
    response = api.post("/api/public/v2/prompts", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_versions_labels_and_fetching(api):
    v1 = create(
        api,
        name="research_agent_v1",
        prompt="You are a research agent on {{topic}}.",
        config={"model": "gpt-4", "temperature": 0.7},
        labels=["production"],
    )
    assert (v1["version"], v1["type"]) == (1, "text")
    assert v1["labels"] == ["production", "latest"]
    assert v1["config"] == {"model": "gpt-4", "temperature": 0.7}
    v2 = create(api, name="research_agent_v1", prompt="v2 {{topic}}", commitMessage="shorter")
    assert v2["version"] == 2 and v2["labels"] == ["latest"]

    # No label and no version: the production one.
    got = api.get("/api/public/v2/prompts/research_agent_v1").json()
    assert got["version"] == 1 and got["prompt"] == "You are a research agent on {{topic}}."
    assert got["isActive"] is True and got["tags"] == [] and got["commitMessage"] is None
    assert api.get("/api/public/v2/prompts/research_agent_v1?label=latest").json()["version"] == 2
    got2 = api.get("/api/public/v2/prompts/research_agent_v1?version=2").json()
    assert got2["commitMessage"] == "shorter"
    assert api.get("/api/public/v2/prompts/research_agent_v1?version=2&label=x").status_code == 400

    # Promote v2: production moves off v1.
    patched = api.patch(
        "/api/public/v2/prompts/research_agent_v1/versions/2", json={"newLabels": ["production"]}
    )
    assert patched.status_code == 200, patched.text
    assert set(patched.json()["labels"]) == {"latest", "production"}
    v1_now = api.get("/api/public/v2/prompts/research_agent_v1?version=1").json()
    assert v1_now["labels"] == []
    assert api.get("/api/public/v2/prompts/research_agent_v1").json()["version"] == 2


def test_first_version_without_labels_is_production(api):
    # The seed guide: create_prompt(name, prompt, config) then get_prompt(name).
    first = create(api, name="fresh", prompt="v1")
    assert first["labels"] == ["production", "latest"]
    assert api.get("/api/public/v2/prompts/fresh").json()["version"] == 1
    second = create(api, name="fresh", prompt="v2")  # later versions do not take it
    assert second["labels"] == ["latest"]
    assert api.get("/api/public/v2/prompts/fresh").json()["version"] == 1


def test_missing_prompt_is_404_with_message(api):
    response = api.get("/api/public/v2/prompts/nope")
    assert response.status_code == 404
    assert response.json()["message"] == "Prompt not found: 'nope' with label 'production'"
    create(api, name="draft", prompt="x", labels=["staging"])  # no production label
    assert api.get("/api/public/v2/prompts/draft").status_code == 404
    assert api.get("/api/public/v2/prompts/draft?version=7").status_code == 404


def test_chat_prompt_with_placeholder_and_folder_name(api):
    name = "agents/support/triage"
    chat = create(
        api,
        name=name,
        type="chat",
        prompt=[
            {"role": "system", "content": "You triage for {{team}}."},
            {"type": "placeholder", "name": "history"},
            {"role": "user", "content": "{{question}}"},
        ],
        labels=["production"],
    )
    assert chat["type"] == "chat"
    got = api.get(f"/api/public/v2/prompts/{quote(name, safe='')}").json()
    assert got["name"] == name
    assert got["prompt"][1] == {"type": "placeholder", "name": "history"}
    assert got["prompt"][0] == {
        "role": "system",
        "content": "You triage for {{team}}.",
        "type": "chatmessage",
    }
    # A chat prompt cannot become a text prompt.
    response = api.post("/api/public/v2/prompts", json={"name": name, "prompt": "text now"})
    assert response.status_code == 400 and "chat prompt" in response.json()["message"]
    assert (
        api.patch(
            f"/api/public/v2/prompts/{quote(name, safe='')}/versions/1",
            json={"newLabels": ["staging"]},
        ).status_code
        == 200
    )


def test_validation_errors(api):
    cases = [
        ({"prompt": "x"}, "name"),
        ({"name": "a|b", "prompt": "x"}, "|"),
        ({"name": "new", "prompt": "x"}, "reserved"),
        ({"name": "ok", "prompt": "x", "labels": ["Prod"]}, "label"),
        ({"name": "ok", "prompt": "x", "labels": ["latest"]}, "reserved"),
        ({"name": "ok", "prompt": 5}, "text prompt"),
        ({"name": "ok", "type": "chat", "prompt": [{"role": "user"}]}, "content"),
        ({"name": "ok", "type": "image", "prompt": "x"}, "type"),
    ]
    for body, needle in cases:
        response = api.post("/api/public/v2/prompts", json=body)
        assert response.status_code == 400, (body, response.text)
        assert needle in response.json()["message"], (body, response.json())
    assert api.post("/api/public/v2/prompts", content=b"{oops").status_code == 400
    assert api.get("/api/public/v2/prompts", params={"limit": 1000}).status_code == 400
    assert api.get("/api/public/v2/prompts").json()["data"] == []


def test_tags_list_and_delete(api):
    create(api, name="a", prompt="1", tags=["team-x"], labels=["dev"])
    create(api, name="a", prompt="2")  # inherits tags
    create(api, name="b", prompt="1", labels=["production"])
    listing = api.get("/api/public/v2/prompts").json()
    assert listing["meta"] == {"page": 1, "limit": 10, "totalItems": 2, "totalPages": 1}
    by_name = {p["name"]: p for p in listing["data"]}
    assert by_name["a"]["versions"] == [1, 2] and by_name["a"]["tags"] == ["team-x"]
    assert by_name["b"]["labels"] == ["latest", "production"]
    assert [p["name"] for p in api.get("/api/public/v2/prompts?tag=team-x").json()["data"]] == ["a"]
    assert [
        p["name"] for p in api.get("/api/public/v2/prompts?label=production").json()["data"]
    ] == ["b"]
    page = api.get("/api/public/v2/prompts?limit=1&page=2").json()
    assert page["meta"]["totalPages"] == 2 and len(page["data"]) == 1

    assert api.delete("/api/public/v2/prompts/a?version=2").status_code == 204
    assert api.get("/api/public/v2/prompts/a?label=latest").json()["version"] == 1
    assert api.delete("/api/public/v2/prompts/a").status_code == 204
    assert api.get("/api/public/v2/prompts/a?version=1").status_code == 404
    assert api.delete("/api/public/v2/prompts/a").status_code == 404


def test_prompt_references_resolve(api):
    create(api, name="tone", prompt="Be kind.", labels=["production"])
    create(
        api,
        name="main",
        prompt="Answer. @@@langfusePrompt:name=tone|label=production@@@",
        labels=["production"],
    )
    got = api.get("/api/public/v2/prompts/main").json()
    assert got["prompt"] == "Answer. Be kind."
    assert got["resolutionGraph"]["dependencies"]
    raw = api.get("/api/public/v2/prompts/main?resolve=false").json()
    assert raw["prompt"].endswith("@@@") and raw["resolutionGraph"] is None
    create(
        api,
        name="broken",
        prompt="@@@langfusePrompt:name=ghost|version=1@@@",
        labels=["production"],
    )
    response = api.get("/api/public/v2/prompts/broken")
    assert response.status_code == 400 and "ghost" in response.json()["message"]


def test_a_version_whose_references_lead_back_to_it_is_refused(api):
    create(api, name="tone", prompt="Be kind.", labels=["production"])
    create(api, name="wrap", prompt="Wrap: @@@langfusePrompt:name=main|label=production@@@")
    create(api, name="chatty", type="chat", prompt=[{"role": "user", "content": "hi"}])
    refused = {
        "itself": "@@@langfusePrompt:name=main|label=production@@@",
        "through another": "x @@@langfusePrompt:name=wrap|label=production@@@",
        "a chat prompt": "@@@langfusePrompt:name=chatty|version=1@@@",
        # Not made yet, but resolving it would come back to this prompt once it is.
        "its own next version": "@@@langfusePrompt:name=main|version=2@@@",
        "its own label": "@@@langfusePrompt:name=main|label=staging@@@",
    }
    for why, text in refused.items():
        response = api.post(
            "/api/public/v2/prompts",
            json={"name": "main", "prompt": text, "labels": ["production"]},
        )
        assert response.status_code == 400, (why, response.text)
        message = response.json()["message"]
        assert "cycle" in message or "only text prompts" in message, (why, message)
        assert api.get("/api/public/v2/prompts/main").status_code == 404, why
    # A chain that ends, and a prompt that does not exist yet, are taken.
    fine = (
        "@@@langfusePrompt:name=tone|label=production@@@ @@@langfusePrompt:name=later|version=1@@@"
    )
    create(api, name="main", prompt=fine, labels=["production"])
    create(api, name="later", prompt="Made later.")
    assert api.get("/api/public/v2/prompts/main").json()["prompt"] == "Be kind. Made later."


def test_a_label_move_that_would_make_a_cycle_is_refused(api):
    # a v1 refers to b's staging label; b v2 refers to a's production, which is a v2
    # (no references): every version resolves. Putting production back on a v1 would
    # make a v1 -> b v2 -> a v1 and both prompts unreadable: refused, nothing moved.
    ref = "@@@langfusePrompt:name={}|label={}@@@"
    create(api, name="b", prompt="plain")
    create(api, name="a", prompt="A1 " + ref.format("b", "staging"))
    create(api, name="a", prompt="A2", labels=["production"])
    create(api, name="b", prompt="B2 " + ref.format("a", "production"), labels=["staging"])
    assert (
        api.get("/api/public/v2/prompts/b", params={"label": "staging"}).json()["prompt"] == "B2 A2"
    )
    moved = api.patch("/api/public/v2/prompts/a/versions/1", json={"newLabels": ["production"]})
    assert moved.status_code == 400, moved.text
    assert "cycle" in moved.json()["message"]
    assert api.get("/api/public/v2/prompts/a").json()["version"] == 2  # nothing moved
    assert api.get("/api/public/v2/prompts/b", params={"label": "staging"}).status_code == 200
    # A move that makes no cycle is taken.
    ok = api.patch("/api/public/v2/prompts/b/versions/1", json={"newLabels": ["staging"]})
    assert ok.status_code == 200, ok.text
    assert api.get("/api/public/v2/prompts/a", params={"version": 1}).json()["prompt"] == (
        "A1 plain"
    )


def test_other_projects_prompts_are_invisible(api):
    create(api, name="secret-sauce", prompt="x", labels=["production"])
    other = api.new_project()
    assert api.get("/api/public/v2/prompts/secret-sauce", auth=other.auth).status_code == 404
    assert api.get("/api/public/v2/prompts", auth=other.auth).json()["data"] == []


def test_concurrent_creations_get_consecutive_versions(live_server):
    auth = live_server.project.auth

    def make(i: int) -> int:
        with httpx.Client(base_url=live_server.url, auth=auth, timeout=30) as client:
            r = client.post("/api/public/v2/prompts", json={"name": "race", "prompt": f"#{i}"})
            assert r.status_code == 200, r.text
            return int(r.json()["version"])

    with ThreadPoolExecutor(20) as pool:
        versions = list(pool.map(make, range(20)))
    assert sorted(versions) == list(range(1, 21))
    with httpx.Client(base_url=live_server.url, auth=auth) as client:
        meta = client.get("/api/public/v2/prompts?name=race").json()["data"][0]
        assert meta["versions"] == list(range(1, 21))
        assert client.get("/api/public/v2/prompts/race?label=latest").json()["version"] == 20


def test_metrics_compare_versions(api):
    create(api, name="qa", prompt="v1")
    create(api, name="qa", prompt="v2")
    events = []
    for i, (version, latency, cost, rating) in enumerate(
        [(1, 2.0, 0.02, 3), (1, 4.0, 0.04, 4), (2, 1.0, 0.01, 5)]
    ):
        trace = f"t{i}"
        events += [
            event("trace-create", {"id": trace, "name": "answer"}),
            event(
                "generation-create",
                {
                    "id": f"g{i}",
                    "traceId": trace,
                    "model": "gpt-4o",
                    "promptName": "qa",
                    "promptVersion": version,
                    "startTime": "2024-05-01T10:00:00Z",
                    "endTime": f"2024-05-01T10:00:0{int(latency)}Z",
                    "usageDetails": {"input": 100, "output": 10},
                    "costDetails": {"total": cost},
                },
            ),
            event(
                "score-create",
                {"id": f"s{i}", "traceId": trace, "name": "user_rating", "value": rating},
            ),
        ]
    assert ingest(api, *events)["errors"] == []
    response = api.get("/api/public/prompts/metrics", params={"name": "qa"})
    assert response.status_code == 200, response.text
    data = {row["version"]: row for row in response.json()["data"]}
    assert data[1]["generations"] == 2 and data[2]["generations"] == 1
    assert data[1]["avgLatency"] == 3.0 and data[2]["avgLatency"] == 1.0
    assert abs(data[1]["avgCost"] - 0.03) < 1e-9 and abs(data[2]["totalCost"] - 0.01) < 1e-9
    assert data[1]["usage"]["input"] == 200
    assert data[1]["scores"]["user_rating"] == {"avg": 3.5, "count": 2}
    assert data[2]["scores"]["user_rating"] == {"avg": 5.0, "count": 1}
    assert data[2]["labels"] == ["latest"]
    later = api.get(
        "/api/public/prompts/metrics",
        params={"name": "qa", "fromTimestamp": "2030-01-01T00:00:00Z"},
    ).json()["data"]
    assert all(row["generations"] == 0 for row in later)


def test_json_nested_past_the_event_limit_is_refused_and_nothing_is_written(api):
    deep: object = []
    for _ in range(253):
        deep = [deep]
    create(api, name="p", prompt="x")
    for body in [
        {"name": "deep", "prompt": "x", "config": deep},
        {"name": "p", "prompt": "x", "config": {"a": deep}},
        {"name": "deep", "type": "chat", "prompt": [{"role": "user", "content": "x",
                                                     "extra": deep}]},
    ]:  # fmt: skip
        response = api.post("/api/public/v2/prompts", json=body)
        assert response.status_code == 400, response.text
        assert "nested more than 200 levels deep" in response.json()["message"]
    patched = api.patch("/api/public/v2/prompts/p/versions/1", json={"newLabels": deep})
    assert patched.status_code == 400, patched.text
    listing = api.get("/api/public/v2/prompts").json()
    assert [(p["name"], p["versions"]) for p in listing["data"]] == [("p", [1])]
    assert api.get("/api/public/v2/prompts/p").json()["config"] == {}


@pytest.mark.parametrize(
    "version", ["99999999999999999999", "2147483648", "0", "1" * 5000, "\u00b2", "-1", ""]
)
def test_a_reference_to_a_version_out_of_range_is_refused(api, version):
    create(api, name="other", prompt="Be kind.")
    ref = f"@@@langfusePrompt:name=other|version={version}@@@"
    for body in [
        {"name": "main", "prompt": f"hi {ref}"},
        {"name": "main", "type": "chat", "prompt": [{"role": "user", "content": ref}]},
    ]:
        response = api.post("/api/public/v2/prompts", json=body)
        assert response.status_code == 400, response.text
        assert "1 to 2147483647" in response.json()["message"]
    assert api.get("/api/public/v2/prompts/main").status_code == 404
    ok = f"@@@langfusePrompt:name=other|version={2**31 - 1}@@@"
    create(api, name="main", prompt=ok)  # in range; found or not is known on reading
    assert "not found" in api.get("/api/public/v2/prompts/main").json()["message"]


@pytest.mark.parametrize("version", ["99999999999999999999", "1" * 5000, "\u00b2"])
def test_a_stored_reference_to_a_version_out_of_range_is_not_found(api, db_url, version):
    from lanterna.store.db import Database

    create(api, name="other", prompt="Be kind.")
    create(api, name="main", prompt="hi @@@langfusePrompt:name=other|version=1@@@")
    # A row stored before creation checked the version.
    text = f"hi @@@langfusePrompt:name=other|version={version}@@@"
    db = Database(db_url)
    try:
        with db.transaction() as conn:
            conn.run("UPDATE prompts SET prompt = ? WHERE name = 'main'", [conn.dialect.json(text)])
    finally:
        db.close()
    response = api.get("/api/public/v2/prompts/main")
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert "not found" in message or "must be a number" in message
    assert api.get("/api/public/v2/prompts/main", params={"resolve": "false"}).status_code == 200
