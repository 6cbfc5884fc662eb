"""``GET /api/public/v3/scores`` (contract 4.2, 1.4): the cursor list of scores with a
``value`` typed by ``dataType``, field groups, filters and their 400 rules.

Every test runs on SQLite and PostgreSQL; the last one reads through the official
langfuse 5.x SDK (``api.scores.get_many``) against a live server.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from helpers import event, ingest, iso
from lanterna.accounts import store as accounts
from lanterna.store.db import Database
from lanterna.store.migrations import migrate
from support import run_sdk_script, seed_score_config

V3 = "/api/public/v3/scores"
#: The fields every ScoreV3 carries whatever ``fields`` asks for (the spec's core).
CORE = {
    "id", "projectId", "name", "value", "dataType", "source", "timestamp", "environment",
    "createdAt", "updatedAt",
}  # fmt: skip
DETAILS = {"comment", "configId", "metadata"}
ANNOTATION = {"authorUserId", "queueId"}

#: The seeded scores, newest first (the order of the list).
NEWEST_FIRST = ["eval", "corr", "text", "cat", "bool-f", "bool-t", "num-b", "num-a"]


def seed_configs(app_or_url: Any, project_id: str) -> None:
    """The score configs the seeded NUMERIC scores name."""
    for config_id in ("cfg-1", "cfg-2"):
        seed_score_config(app_or_url, project_id, config_id, "accuracy")


def create_scores(client: Any, url: str, bodies: list[dict[str, Any]], auth: Any) -> None:
    """POST scores in the list form (as the 5.x SDK does) and expect all accepted."""
    response = client.post(f"{url}/api/public/scores", json=bodies, auth=auth)
    assert response.status_code == 202, response.text


def seed_bodies() -> list[dict[str, Any]]:
    """One score of each data type and target; the timestamps set the list order."""
    return [
        {"id": "num-a", "traceId": "t-1", "name": "accuracy", "value": 0.9,
         "comment": "close", "metadata": {"judge": "human"}, "configId": "cfg-1",
         "environment": "prod", "timestamp": iso(seconds=1)},
        {"id": "num-b", "traceId": "t-1", "observationId": "o-1", "name": "accuracy",
         "value": 0.5, "configId": "cfg-2", "timestamp": iso(seconds=2)},
        {"id": "bool-t", "traceId": "t-2", "name": "correct", "value": 1,
         "dataType": "BOOLEAN", "source": "ANNOTATION", "queueId": "q-1",
         "timestamp": iso(seconds=3)},
        {"id": "bool-f", "traceId": "t-2", "name": "correct", "value": 0,
         "dataType": "BOOLEAN", "timestamp": iso(seconds=4)},
        {"id": "cat", "sessionId": "s-1", "name": "tone", "value": "friendly",
         "timestamp": iso(seconds=5)},
        {"id": "text", "datasetRunId": "run-1", "name": "note", "value": "well put",
         "dataType": "TEXT", "timestamp": iso(seconds=6)},
        {"id": "corr", "traceId": "t-3", "name": "fix", "value": "better text",
         "dataType": "CORRECTION", "timestamp": iso(seconds=7)},
    ]  # fmt: skip


@pytest.fixture
def seeded(api: Any) -> Any:
    """``api`` with the scores of :func:`seed_bodies` plus an EVAL score (ingestion)."""
    seed_configs(api.app, api.project.id)
    create_scores(api, "", seed_bodies(), api.auth)
    body = {"id": "eval", "traceId": "t-3", "name": "judge", "value": 2, "source": "EVAL",
            "environment": "staging", "timestamp": iso(seconds=8)}  # fmt: skip
    assert ingest(api, event("score-create", body))["errors"] == []
    return api


def v3(api: Any, **params: Any) -> dict[str, Any]:
    response = api.get(V3, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [s["id"] for s in body["data"]]


# --- shape ---------------------------------------------------------------------------


def test_core_shape_with_a_typed_value_per_data_type(seeded):
    body = v3(seeded)
    assert ids(body) == NEWEST_FIRST
    assert body["meta"] == {"limit": 50}  # one page: no cursor
    for score in body["data"]:
        assert set(score) == CORE, score
        assert score["projectId"] == seeded.project.id
    got = {s["id"]: s for s in body["data"]}
    num = got["num-a"]
    assert (num["name"], num["value"], num["dataType"], num["source"]) == (
        "accuracy", 0.9, "NUMERIC", "API",
    )  # fmt: skip
    assert (num["environment"], num["timestamp"]) == ("prod", "2024-05-01T10:00:01.000000Z")
    assert num["createdAt"].endswith("Z") and num["updatedAt"].endswith("Z")
    assert got["bool-t"]["value"] is True and got["bool-f"]["value"] is False
    assert got["cat"]["value"] == "friendly" and got["cat"]["dataType"] == "CATEGORICAL"
    assert got["text"]["value"] == "well put"
    assert (got["corr"]["dataType"], got["corr"]["value"]) == ("CORRECTION", "better text")
    assert (got["eval"]["source"], got["eval"]["value"]) == ("EVAL", 2)
    assert got["eval"]["environment"] == "staging"


def test_details_group(seeded):
    got = {s["id"]: s for s in v3(seeded, fields="details")["data"]}
    assert all(set(s) == CORE | DETAILS for s in got.values())
    assert (got["num-a"]["comment"], got["num-a"]["configId"]) == ("close", "cfg-1")
    assert got["num-a"]["metadata"] == {"judge": "human"}
    assert (got["cat"]["comment"], got["cat"]["configId"], got["cat"]["metadata"]) == (
        None, None, {},
    )  # fmt: skip


def test_subject_group_names_the_scored_entity(seeded):
    got = {s["id"]: s for s in v3(seeded, fields="subject")["data"]}
    assert all(set(s) == CORE | {"subject"} for s in got.values())
    assert got["num-a"]["subject"] == {"kind": "trace", "id": "t-1"}
    assert got["num-b"]["subject"] == {"kind": "observation", "id": "o-1", "traceId": "t-1"}
    assert got["cat"]["subject"] == {"kind": "session", "id": "s-1"}
    assert got["text"]["subject"] == {"kind": "experiment", "id": "run-1"}


def test_annotation_group(seeded):
    got = {s["id"]: s for s in v3(seeded, fields="annotation")["data"]}
    assert all(set(s) == CORE | ANNOTATION for s in got.values())
    assert (got["bool-t"]["queueId"], got["bool-t"]["authorUserId"]) == ("q-1", None)
    assert got["num-a"]["queueId"] is None


def test_all_groups_together_and_core_by_name(seeded):
    every = v3(seeded, fields=" details, subject ,annotation")["data"]
    assert all(set(s) == CORE | DETAILS | ANNOTATION | {"subject"} for s in every)
    assert all(set(s) == CORE for s in v3(seeded, fields="core")["data"])


# --- filters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"id": "num-a,cat"}, ["cat", "num-a"]),
        ({"name": "accuracy,tone"}, ["cat", "num-b", "num-a"]),
        ({"source": "annotation"}, ["bool-t"]),
        ({"source": "eval,API"}, [i for i in NEWEST_FIRST if i != "bool-t"]),
        ({"dataType": "numeric"}, ["eval", "num-b", "num-a"]),
        ({"dataType": "BOOLEAN,text"}, ["text", "bool-f", "bool-t"]),
        ({"environment": "staging,prod"}, ["eval", "num-a"]),
        ({"configId": "cfg-1,cfg-9"}, ["num-a"]),
        ({"queueId": "q-1"}, ["bool-t"]),
        ({"traceId": "t-1,t-2"}, ["bool-f", "bool-t", "num-b", "num-a"]),
        ({"traceId": "t-1", "observationId": "o-1"}, ["num-b"]),
        ({"sessionId": "s-1"}, ["cat"]),
        ({"experimentId": "run-1"}, ["text"]),
        # fromTimestamp is inclusive, toTimestamp exclusive.
        ({"fromTimestamp": iso(seconds=3), "toTimestamp": iso(seconds=6)},
         ["cat", "bool-f", "bool-t"]),
        ({"dataType": "NUMERIC", "value": "0.5,2"}, ["eval", "num-b"]),
        ({"dataType": "NUMERIC", "valueMin": "0.5", "valueMax": "0.9"}, ["num-b", "num-a"]),
        ({"dataType": "NUMERIC", "valueMin": "1"}, ["eval"]),
        ({"dataType": "NUMERIC", "valueMax": "0.5"}, ["num-b"]),
        ({"dataType": "boolean", "value": "true"}, ["bool-t"]),
        ({"dataType": "BOOLEAN", "value": "false"}, ["bool-f"]),
        ({"dataType": "BOOLEAN", "value": "true,false"}, ["bool-f", "bool-t"]),
        ({"dataType": "CATEGORICAL", "value": "friendly,rude"}, ["cat"]),
        ({"dataType": "CATEGORICAL", "value": "rude"}, []),
        # AND across parameters.
        ({"name": "accuracy", "traceId": "t-1", "dataType": "NUMERIC", "valueMax": "0.6"},
         ["num-b"]),
        ({"name": "nope"}, []),
    ],
)  # fmt: skip
def test_filters(seeded, params, expected):
    assert ids(v3(seeded, **params)) == expected


def _annotate(api: Any, db_url: str, trace_id: str) -> str:
    """Add an ANNOTATION score through the dashboard as a logged-in owner; the user id."""
    db = Database(db_url)
    try:
        migrate(db)
        with db.transaction() as conn:
            user_id = str(accounts.create_user(conn, "rater@example.com", "correct horse battery"))
            accounts.set_member(conn, user_id, api.project.id, "owner")
    finally:
        db.close()
    browser = TestClient(api.app, client=("127.0.0.1", 50000))
    token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text)
    assert token
    login = {"csrf_token": token.group(1), "email": "rater@example.com",
             "password": "correct horse battery"}  # fmt: skip
    assert browser.post("/login", data=login, follow_redirects=False).status_code == 303
    page = browser.get(f"/project/{api.project.id}/traces/{trace_id}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert page.status_code == 200 and token
    form = {"csrf_token": token.group(1), "trace_id": trace_id, "name": "helpful",
            "value": "1", "data_type": "NUMERIC"}  # fmt: skip
    response = browser.post(f"/project/{api.project.id}/scores", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    return user_id


def test_author_user_id_filter_finds_a_dashboard_annotation(seeded, db_url):
    ingest(seeded, event("trace-create", {"id": "t-ui", "name": "chat"}))
    user_id = _annotate(seeded, db_url, "t-ui")
    body = v3(seeded, authorUserId=f"someone-else,{user_id}", fields="annotation,subject")
    (score,) = body["data"]
    assert (score["authorUserId"], score["source"], score["name"]) == (
        user_id, "ANNOTATION", "helpful",
    )  # fmt: skip
    assert score["subject"] == {"kind": "trace", "id": "t-ui"}
    assert v3(seeded, authorUserId="someone-else")["data"] == []


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"value": "1"}, "exactly one dataType"),
        ({"value": "1", "dataType": "NUMERIC,BOOLEAN"}, "exactly one dataType"),
        ({"value": "x", "dataType": "TEXT"}, "needs dataType NUMERIC, BOOLEAN, CATEGORICAL"),
        ({"value": "x", "dataType": "CORRECTION"}, "needs dataType"),
        ({"value": "abc", "dataType": "NUMERIC"}, "value: expected a number"),
        ({"value": "1,inf", "dataType": "NUMERIC"}, "value: must be a finite number"),
        ({"value": "nan", "dataType": "NUMERIC"}, "finite"),
        ({"value": "yes", "dataType": "BOOLEAN"}, "must be true or false"),
        ({"valueMin": "1"}, "exactly one dataType"),
        ({"valueMin": "1", "dataType": "BOOLEAN"}, "valueMin: needs dataType NUMERIC"),
        ({"valueMax": "1", "dataType": "CATEGORICAL"}, "valueMax: needs dataType NUMERIC"),
        ({"valueMax": "high", "dataType": "NUMERIC"}, "valueMax: expected a number"),
        ({"source": "robot"}, "source: must be one of"),
        ({"dataType": "bogus"}, "dataType: must be one of"),
        ({"observationId": "o-1"}, "observationId: requires traceId"),
        ({"traceId": "t-1", "sessionId": "s-1"}, "sessionId: cannot be combined with traceId"),
        ({"traceId": "t-1", "observationId": "o-1", "sessionId": "s-1"}, "sessionId"),
        ({"experimentId": "run-1", "traceId": "t-1"}, "experimentId: cannot be combined"),
        ({"experimentId": "run-1", "sessionId": "s-1"}, "cannot be combined"),
        ({"fromTimestamp": "yesterday"}, "fromTimestamp"),
        ({"toTimestamp": "2024-05-01T10:00:00"}, "toTimestamp"),
        ({"cursor": "not-a-cursor"}, "cursor: not a cursor"),
        ({"fields": "details,bogus"}, "fields: unknown group(s) bogus"),
        ({"limit": "101"}, "limit: must be between 1 and 100"),
        ({"limit": "0"}, "limit: must be between 1 and 100"),
        ({"limit": "ten"}, "limit: expected an integer"),
    ],
)
def test_bad_parameters_are_400_with_a_reason(seeded, params, fragment):
    response = seeded.get(V3, params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["message"] == "Invalid request data"
    assert fragment in body["error"], body


def test_limit_100_is_allowed(seeded):
    assert v3(seeded, limit=100)["meta"] == {"limit": 100}


# --- cursor --------------------------------------------------------------------------


def test_cursor_walks_every_score_once_newest_first(api):
    # Three scores share each timestamp, so the id must break the ties.
    bodies = [
        {"id": f"p-{i:02d}", "traceId": "t", "name": "even" if i % 2 == 0 else "odd",
         "value": i, "timestamp": iso(seconds=i // 3)}
        for i in range(23)
    ]  # fmt: skip
    create_scores(api, "", bodies, api.auth)
    expected = [b["id"] for b in sorted(bodies, key=lambda b: (b["timestamp"], b["id"]))][::-1]

    def walk(**params: Any) -> tuple[list[str], list[int]]:
        seen: list[str] = []
        sizes: list[int] = []
        cursor = None
        while True:
            body = v3(api, limit=5, **params, **({"cursor": cursor} if cursor else {}))
            assert body["meta"]["limit"] == 5
            seen += ids(body)
            sizes.append(len(body["data"]))
            cursor = body["meta"].get("cursor")
            if cursor is None:
                assert "cursor" not in body["meta"]  # absent, not null, on the last page
                return seen, sizes
            assert re.fullmatch(r"[A-Za-z0-9_=-]+", cursor), cursor  # base64url
            assert len(sizes) < 10, "the cursor never ends"

    seen, sizes = walk()
    assert seen == expected and sizes == [5, 5, 5, 5, 3]
    seen, sizes = walk(name="even")
    assert seen == [i for i in expected if int(i[2:]) % 2 == 0] and sizes == [5, 5, 2]
    # A page that ends exactly at the last score has no cursor either.
    assert "cursor" not in v3(api, limit=23)["meta"]


def test_cursor_is_keyset_so_new_scores_do_not_shift_later_pages(api):
    bodies = [{"id": f"k-{i}", "traceId": "t", "name": "n", "value": i,
               "timestamp": iso(seconds=i)} for i in range(6)]  # fmt: skip
    create_scores(api, "", bodies, api.auth)
    first = v3(api, limit=3)
    assert ids(first) == ["k-5", "k-4", "k-3"]
    # A newer score arrives between two page reads: an OFFSET page would repeat k-3.
    create_scores(api, "", [{"id": "k-new", "traceId": "t", "name": "n", "value": 9,
                             "timestamp": iso(seconds=60)}], api.auth)  # fmt: skip
    second = v3(api, limit=3, cursor=first["meta"]["cursor"])
    assert ids(second) == ["k-2", "k-1", "k-0"]
    assert "cursor" not in second["meta"]


# --- access --------------------------------------------------------------------------


def test_another_projects_key_sees_nothing(seeded):
    other = seeded.new_project()
    response = seeded.get(V3, auth=other.auth)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": [], "meta": {"limit": 50}}
    assert seeded.get(V3, params={"id": "num-a"}, auth=other.auth).json()["data"] == []
    # A cursor from this project reads nothing of it with the other key.
    cursor = v3(seeded, limit=1)["meta"]["cursor"]
    assert seeded.get(V3, params={"cursor": cursor}, auth=other.auth).json()["data"] == []


def test_the_public_key_alone_cannot_read(seeded):
    headers = {"Authorization": f"Bearer {seeded.project.public_key}"}
    assert seeded.get(V3, headers=headers, auth=None).status_code == 403
    assert seeded.get(V3, auth=None).status_code == 401


# --- the langfuse 5.x SDK --------------------------------------------------------------


@pytest.mark.slow
def test_langfuse5_sdk_get_many_parses_every_page(live_server):
    auth = live_server.project.auth
    seed_configs(live_server.db_url, live_server.project.id)
    with httpx.Client() as client:
        create_scores(client, live_server.url, seed_bodies(), auth)
    result = run_sdk_script("langfuse5", "lf5_scores_v3.py", live_server)

    assert [len(page) for page in result["pages"]] == [2, 2, 2, 1]
    assert result["limit"] == 2
    got = {s["id"]: s for page in result["pages"] for s in page}
    assert list(got) == [i for i in NEWEST_FIRST if i != "eval"]
    # The SDK picked the model of each data type and typed `value` accordingly.
    expected = {
        "num-a": ("ScoreV3_Numeric", 0.9, "float"),
        "bool-t": ("ScoreV3_Boolean", True, "bool"),
        "bool-f": ("ScoreV3_Boolean", False, "bool"),
        "cat": ("ScoreV3_Categorical", "friendly", "str"),
        "text": ("ScoreV3_Text", "well put", "str"),
        "corr": ("ScoreV3_Correction", "better text", "str"),
    }
    for score_id, (cls, value, value_type) in expected.items():
        score = got[score_id]
        assert (score["class"], score["value"], score["valueType"]) == (cls, value, value_type)
        assert score["timestampType"] == "datetime"
    assert got["num-a"]["comment"] == "close" and got["num-a"]["metadata"] == {"judge": "human"}
    assert got["num-b"]["subject"] == {
        "class": "ScoreSubjectV3_Observation", "kind": "observation", "id": "o-1",
    }  # fmt: skip
    assert got["cat"]["subject"]["kind"] == "session"
    assert got["text"]["subject"]["kind"] == "experiment"
    assert [s["id"] for s in result["filtered"]] == ["bool-t"]
    assert result["refused"] == 400
