"""Score configs (contract 4.2): create, list, get, update/archive, and scores checked
against the config they name (POST /api/public/scores and ingestion ``score-create``).

Every test runs on SQLite and PostgreSQL through the in-process app; the SDK test runs
the official langfuse 5.x client against a live server.
"""

from __future__ import annotations

from typing import Any

import pytest

from helpers import event, ingest
from support import run_sdk_script

PATH = "/api/public/score-configs"
#: Every property of the spec's ScoreConfig (the SDK model fails without the required).
KEYS = {
    "id", "name", "createdAt", "updatedAt", "projectId", "dataType", "isArchived",
    "minValue", "maxValue", "categories", "description",
}  # fmt: skip
TONE = [{"value": 2, "label": "friendly"}, {"value": -1, "label": "rude"}]


def create(api: Any, **body: Any) -> dict[str, Any]:
    """POST a config, assert 200, return it."""
    response = api.post(PATH, json=body)
    assert response.status_code == 200, response.text
    config: dict[str, Any] = response.json()
    return config


def refused(response: Any, words: str) -> None:
    """A 400 whose message names the problem."""
    assert response.status_code == 400, response.text
    assert words in response.json()["message"], response.json()


def score_status(api: Any, score_id: str) -> int:
    status: int = api.get(f"/api/public/v2/scores/{score_id}").status_code
    return status


def stored_score(api: Any, score_id: str) -> dict[str, Any]:
    response = api.get(f"/api/public/v2/scores/{score_id}")
    assert response.status_code == 200, response.text
    score: dict[str, Any] = response.json()
    return score


# --- configs ----------------------------------------------------------------------------


def test_create_each_data_type(api):
    numeric = create(api, name="accuracy", dataType="NUMERIC", minValue=0, maxValue=1.5)
    categorical = create(api, name="tone", dataType="CATEGORICAL", categories=TONE)
    boolean = create(api, name="correct", dataType="BOOLEAN", description="is it right")
    text = create(api, name="Feedback (free-text)", dataType="TEXT")
    for config in (numeric, categorical, boolean, text):
        assert set(config) == KEYS
        assert config["projectId"] == api.project.id
        assert config["isArchived"] is False
        assert config["createdAt"].endswith("Z") and config["updatedAt"] == config["createdAt"]
    assert (numeric["dataType"], numeric["minValue"], numeric["maxValue"]) == ("NUMERIC", 0, 1.5)
    assert numeric["categories"] is None and numeric["description"] is None
    assert categorical["categories"] == TONE
    assert categorical["minValue"] is None and categorical["maxValue"] is None
    # Langfuse generates a BOOLEAN config's categories.
    assert boolean["categories"] == [{"value": 1, "label": "True"}, {"value": 0, "label": "False"}]
    assert boolean["description"] == "is it right"
    assert text["categories"] is None and text["name"] == "Feedback (free-text)"
    assert api.get(f"{PATH}/{categorical['id']}").json() == categorical


def test_numeric_range_may_be_open_or_a_single_point(api):
    assert create(api, name="n1", dataType="NUMERIC")["minValue"] is None
    assert create(api, name="n2", dataType="NUMERIC", minValue=-3)["maxValue"] is None
    assert create(api, name="n3", dataType="NUMERIC", minValue=2, maxValue=2)["maxValue"] == 2


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"dataType": "NUMERIC"}, "name: required"),
        ({"name": "", "dataType": "NUMERIC"}, "name: required"),
        ({"name": "x" * 36, "dataType": "NUMERIC"}, "at most 35"),
        ({"name": "a/b", "dataType": "NUMERIC"}, "only letters"),
        ({"name": "a"}, "dataType: required"),
        ({"name": "a", "dataType": "CORRECTION"}, "dataType: required"),
        ({"name": "a", "dataType": "CATEGORICAL"}, "non-empty list"),
        ({"name": "a", "dataType": "CATEGORICAL", "categories": []}, "non-empty list"),
        (
            {"name": "a", "dataType": "CATEGORICAL", "categories": [{"value": 1}]},
            "label: required",
        ),
        (
            {"name": "a", "dataType": "CATEGORICAL", "categories": [{"label": "x", "value": "1"}]},
            "finite number",
        ),
        (
            {
                "name": "a",
                "dataType": "CATEGORICAL",
                "categories": [{"value": 1, "label": "x"}, {"value": 2, "label": "x"}],
            },
            "duplicate label 'x'",
        ),
        (
            {
                "name": "a",
                "dataType": "CATEGORICAL",
                "categories": [{"value": 1, "label": "x"}, {"value": 1, "label": "y"}],
            },
            "duplicate value 1",
        ),
        ({"name": "a", "dataType": "NUMERIC", "categories": TONE}, "only CATEGORICAL"),
        ({"name": "a", "dataType": "TEXT", "categories": TONE}, "only CATEGORICAL"),
        ({"name": "a", "dataType": "BOOLEAN", "categories": TONE}, "cannot be passed"),
        ({"name": "a", "dataType": "CATEGORICAL", "categories": TONE, "minValue": 0}, "range"),
        ({"name": "a", "dataType": "BOOLEAN", "maxValue": 1}, "only NUMERIC"),
        ({"name": "a", "dataType": "NUMERIC", "minValue": 2, "maxValue": 1}, "maxValue"),
        ({"name": "a", "dataType": "NUMERIC", "minValue": "0"}, "minValue: must be"),
        ({"name": "a", "dataType": "TEXT", "description": 5}, "description"),
    ],
)
def test_create_refuses_invalid_configs(api, body, words):
    refused(api.post(PATH, json=body), words)
    assert api.get(PATH).json()["meta"]["totalItems"] == 0


def test_create_refuses_a_body_that_is_not_an_object(api):
    refused(api.post(PATH, json=[{"name": "a", "dataType": "TEXT"}]), "JSON object")


def test_list_pages_newest_first(api):
    made = [create(api, name=f"c{i}", dataType="TEXT")["id"] for i in range(5)]
    first = api.get(PATH, params={"limit": 2}).json()
    assert first["meta"] == {"page": 1, "limit": 2, "totalItems": 5, "totalPages": 3}
    assert [c["id"] for c in first["data"]] == made[::-1][:2]
    last = api.get(PATH, params={"page": 3, "limit": 2}).json()
    assert [c["id"] for c in last["data"]] == [made[0]]
    everything = api.get(PATH).json()
    assert everything["meta"] == {"page": 1, "limit": 50, "totalItems": 5, "totalPages": 1}
    assert all(set(c) == KEYS for c in everything["data"])
    assert api.get(PATH, params={"limit": 101}).status_code == 400
    assert api.get(PATH, params={"page": 0}).status_code == 400


def test_missing_and_other_projects_configs_are_404(api):
    mine = create(api, name="mine", dataType="TEXT")
    assert api.get(f"{PATH}/nope").status_code == 404
    assert api.patch(f"{PATH}/nope", json={"isArchived": True}).status_code == 404
    other = api.new_project()
    assert api.get(f"{PATH}/{mine['id']}", auth=other.auth).status_code == 404
    assert api.patch(f"{PATH}/{mine['id']}", json={"name": "x"}, auth=other.auth).status_code == 404
    assert api.get(PATH, auth=other.auth).json()["data"] == []
    assert api.get(f"{PATH}/{mine['id']}").json()["name"] == "mine"
    assert api.get(PATH, auth=("pk-lf-nope", "sk-lf-nope")).status_code == 401


def test_patch_updates_fields_and_archives(api):
    config = create(api, name="acc", dataType="NUMERIC", minValue=0, maxValue=1)
    url = f"{PATH}/{config['id']}"
    changed = api.patch(url, json={"name": "accuracy", "maxValue": 10, "description": "d"})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["minValue"], body["maxValue"]) == ("accuracy", 0, 10)
    assert body["description"] == "d" and body["dataType"] == "NUMERIC"
    assert body["createdAt"] == config["createdAt"] and body["updatedAt"] >= config["updatedAt"]
    archived = api.patch(url, json={"isArchived": True}).json()
    assert archived["isArchived"] is True and archived["name"] == "accuracy"
    assert api.get(url).json() == archived
    assert api.patch(url, json={"isArchived": False, "minValue": None}).json()["minValue"] is None


def test_null_name_and_is_archived_leave_them_as_they_are(api):
    # Langfuse's spec makes every UpdateScoreConfigRequest field nullable; a client that
    # sends its nulls must not have the config renamed or refused.
    config = create(api, name="acc", dataType="NUMERIC", isArchived=None, maxValue=1)
    assert config["isArchived"] is False
    url = f"{PATH}/{config['id']}"
    assert api.patch(url, json={"isArchived": True}).status_code == 200
    patched = api.patch(url, json={"name": None, "isArchived": None, "maxValue": None})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["name"], body["isArchived"], body["maxValue"]) == ("acc", True, None)
    assert api.get(url).json() == body


def test_patch_keeps_generated_boolean_categories(api):
    config = create(api, name="ok", dataType="BOOLEAN")
    patched = api.patch(f"{PATH}/{config['id']}", json={"description": "yes/no"}).json()
    assert patched["categories"] == config["categories"]


@pytest.mark.parametrize(
    ("patch", "words"),
    [
        ({"minValue": 5}, "maxValue"),  # the result must hold: 5 > the stored max 1
        ({"categories": TONE}, "only CATEGORICAL"),
        ({"dataType": "TEXT"}, "cannot be changed"),
        ({"isArchived": "yes"}, "isArchived"),
        ({"name": "bad/name"}, "only letters"),
    ],
)
def test_patch_validates_the_result(api, patch, words):
    config = create(api, name="acc", dataType="NUMERIC", minValue=0, maxValue=1)
    refused(api.patch(f"{PATH}/{config['id']}", json=patch), words)
    assert api.get(f"{PATH}/{config['id']}").json() == config


def test_patch_validates_categories(api):
    config = create(api, name="tone", dataType="CATEGORICAL", categories=TONE)
    url = f"{PATH}/{config['id']}"
    refused(api.patch(url, json={"categories": []}), "non-empty list")
    refused(api.patch(url, json={"minValue": 1}), "range")
    more = [*TONE, {"value": 0, "label": "neutral"}]
    assert api.patch(url, json={"categories": more}).json()["categories"] == more


# --- scores against their config -----------------------------------------------------------


@pytest.fixture
def configs(api) -> dict[str, str]:
    """One config of each data type (and an archived one), by data type."""
    out = {
        "NUMERIC": create(api, name="acc", dataType="NUMERIC", minValue=0, maxValue=1)["id"],
        "CATEGORICAL": create(api, name="tone", dataType="CATEGORICAL", categories=TONE)["id"],
        "BOOLEAN": create(api, name="ok", dataType="BOOLEAN")["id"],
        "TEXT": create(api, name="note", dataType="TEXT")["id"],
        "ARCHIVED": create(api, name="old", dataType="NUMERIC")["id"],
    }
    assert api.patch(f"{PATH}/{out['ARCHIVED']}", json={"isArchived": True}).status_code == 200
    return out


def score(config_id: str, value: Any, score_id: str, **extra: Any) -> dict[str, Any]:
    body = {"id": score_id, "traceId": "t1", "name": "s", "configId": config_id, "value": value}
    return body | extra


#: (config, value, extra fields, expected dataType, value, stringValue)
VALID = [
    ("NUMERIC", 0.5, {}, "NUMERIC", 0.5, None),
    ("NUMERIC", 1, {"dataType": "NUMERIC"}, "NUMERIC", 1, None),
    ("CATEGORICAL", "rude", {}, "CATEGORICAL", -1, "rude"),
    ("CATEGORICAL", "friendly", {"dataType": "CATEGORICAL"}, "CATEGORICAL", 2, "friendly"),
    ("BOOLEAN", 1, {}, "BOOLEAN", 1, "True"),  # no dataType: the config's
    ("BOOLEAN", 0, {"dataType": "BOOLEAN"}, "BOOLEAN", 0, "False"),
    ("TEXT", "well put", {}, "TEXT", 0, "well put"),
]

#: (config, value, extra fields, words of the error)
INVALID = [
    ("NUMERIC", 1.5, {}, "outside the config's range [0, 1]"),
    ("NUMERIC", -0.1, {}, "outside"),
    ("NUMERIC", "high", {}, "NUMERIC score needs a number"),
    ("NUMERIC", 1, {"dataType": "BOOLEAN"}, "does not match the config's data type NUMERIC"),
    ("CATEGORICAL", "meh", {}, "'meh' is not a category"),
    ("CATEGORICAL", 2, {}, "CATEGORICAL score needs a string"),
    ("BOOLEAN", 2, {}, "BOOLEAN score needs 0 or 1"),
    ("BOOLEAN", 1, {"dataType": "NUMERIC"}, "does not match"),
    ("TEXT", "x", {"dataType": "CATEGORICAL"}, "does not match"),
    ("ARCHIVED", 0.5, {}, "archived"),
    ("MISSING", 0.5, {}, "no score config 'MISSING'"),
]


@pytest.mark.parametrize(("kind", "value", "extra", "data_type", "number", "text"), VALID)
def test_post_score_with_a_valid_config(api, configs, kind, value, extra, data_type, number, text):
    response = api.post("/api/public/scores", json=score(configs[kind], value, "s1", **extra))
    assert response.status_code == 200, response.text
    stored = stored_score(api, "s1")
    assert stored["configId"] == configs[kind]
    assert (stored["dataType"], stored["value"]) == (data_type, number)
    assert stored.get("stringValue") == text


@pytest.mark.parametrize(("kind", "value", "extra", "words"), INVALID)
def test_post_score_against_its_config_is_refused(api, configs, kind, value, extra, words):
    config_id = configs.get(kind, kind)
    refused(api.post("/api/public/scores", json=score(config_id, value, "s1", **extra)), words)
    assert score_status(api, "s1") == 404


def test_post_score_with_another_projects_config_is_refused(api, configs):
    other = api.new_project()
    body = score(configs["NUMERIC"], 0.5, "s1")
    response = api.post("/api/public/scores", json=body, auth=other.auth)
    refused(response, "no score config")


def test_post_score_list_refuses_only_the_bad_ones(api, configs):
    bodies = [
        score(configs["NUMERIC"], 0.5, "good"),
        score(configs["NUMERIC"], 7, "bad"),
        {"id": "plain", "traceId": "t1", "name": "n", "value": 3},
        score(configs["CATEGORICAL"], "friendly", "cat"),
    ]
    response = api.post("/api/public/scores", json=bodies)
    assert response.status_code == 207, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (3, 1)
    assert [(e["index"], e["id"]) for e in body["errors"]] == [(1, "bad")]
    assert "outside" in body["errors"][0]["message"]
    assert score_status(api, "bad") == 404
    assert stored_score(api, "good")["value"] == 0.5
    assert stored_score(api, "plain")["value"] == 3
    assert stored_score(api, "cat")["value"] == 2


def test_post_score_list_naming_only_unknown_configs_refuses_them(api):
    bodies = [score("no-such-config", 0.5, "orphan"), {"id": "plain", "name": "n", "value": 1}]
    bodies[1]["traceId"] = "t1"
    response = api.post("/api/public/scores", json=bodies)
    assert response.status_code == 207, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert [(e["index"], e["id"]) for e in body["errors"]] == [(0, "orphan")]
    assert score_status(api, "orphan") == 404
    assert stored_score(api, "plain")["value"] == 1


@pytest.mark.parametrize(("kind", "value", "extra", "data_type", "number", "text"), VALID)
def test_ingested_score_with_a_valid_config(
    api, configs, kind, value, extra, data_type, number, text
):
    result = ingest(api, event("score-create", score(configs[kind], value, "s1", **extra)))
    assert result["errors"] == [] and len(result["successes"]) == 1
    stored = stored_score(api, "s1")
    assert (stored["dataType"], stored["value"], stored.get("stringValue")) == (
        data_type,
        number,
        text,
    )


def test_ingested_scores_against_their_config_are_per_event_400s(api, configs):
    bad = [
        event("score-create", score(configs.get(k, k), v, f"bad{i}", **x), id=f"e-bad{i}")
        for i, (k, v, x, _words) in enumerate(INVALID)
    ]
    good = [
        event("score-create", score(configs["CATEGORICAL"], "rude", "good"), id="e-good"),
        event("trace-create", {"id": "t1", "name": "trace"}, id="e-trace"),
    ]
    result = ingest(api, good[0], *bad, good[1])
    assert sorted(s["id"] for s in result["successes"]) == ["e-good", "e-trace"]
    errors = {e["id"]: e for e in result["errors"]}
    assert set(errors) == {f"e-bad{i}" for i in range(len(INVALID))}
    for i, (_k, _v, _x, words) in enumerate(INVALID):
        assert errors[f"e-bad{i}"]["status"] == 400
        assert words in errors[f"e-bad{i}"]["error"], errors[f"e-bad{i}"]
        assert score_status(api, f"bad{i}") == 404
    assert stored_score(api, "good")["value"] == -1
    assert api.get("/api/public/traces/t1").status_code == 200


def test_ingested_score_with_another_projects_config_is_refused(api, configs):
    other = api.new_project()
    result = ingest(
        api, event("score-create", score(configs["TEXT"], "hi", "s1"), id="e1"), auth=other.auth
    )
    assert result["successes"] == []
    assert [(e["id"], e["status"]) for e in result["errors"]] == [("e1", 400)]
    assert api.get("/api/public/v2/scores/s1", auth=other.auth).status_code == 404


# --- the official SDK ----------------------------------------------------------------------


@pytest.mark.slow
def test_langfuse5_sdk_creates_and_reads_score_configs(live_server):
    result = run_sdk_script("langfuse5", "lf5_score_configs.py", live_server)

    numeric, categorical, boolean = result["created"]
    assert all(c["class"] == "ScoreConfig" for c in result["created"])
    assert (numeric["dataType"], numeric["minValue"], numeric["maxValue"]) == ("NUMERIC", 0, 1)
    assert numeric["description"] == "0..1" and numeric["createdAtType"] == "datetime"
    assert categorical["categories"] == [
        {"value": 1, "label": "friendly"},
        {"value": 0, "label": "rude"},
    ]
    assert boolean["categories"] == [{"value": 1, "label": "True"}, {"value": 0, "label": "False"}]
    # Newest first, two a page.
    assert [c["id"] for c in result["listed"]] == [boolean["id"], categorical["id"]]
    assert result["meta"] == {"page": 1, "limit": 2, "totalItems": 3, "totalPages": 2}
    assert result["fetched"] == numeric
    assert result["archived"]["isArchived"] is True and result["archived"]["id"] == numeric["id"]
    assert result["refused"] == 400
