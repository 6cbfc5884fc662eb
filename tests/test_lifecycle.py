"""Deleting a user's or a session's data, retention (an injected clock, no sleeping),
the retention setting's API, and the audit log of those changes: on both backends,
with the hourly rollups checked against the raw rows after each deletion."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers import T0, event, ingest, iso
from lanterna.cli import main
from lanterna.lifecycle.retention import RetentionJob
from lanterna.server.app import create_app
from support import Api, make_settings, new_project
from test_rollups import _assert_rollups_match

pytestmark = pytest.mark.clickhouse


@pytest.fixture
def quiet_api(db_url, events_url, tmp_path):
    """The app without its own retention loop: the test ticks the job with its clock."""
    settings = make_settings(db_url, tmp_path)
    settings.events_url = events_url
    settings.retention_interval_seconds = 0
    app = create_app(settings)
    project = new_project(db_url)
    with Api(app, raise_server_exceptions=True) as client:
        client.project = project
        client.auth = project.auth
        yield client


def _conversation(tid: str, user: str, session: str | None, *, days: float = 0) -> list[dict]:
    """A trace with a span, a generation and a score on each, ``days`` after T0."""
    at = days * 86400
    body: dict[str, Any] = {"id": tid, "timestamp": iso(seconds=at), "userId": user}
    if session:
        body["sessionId"] = session
    return [
        event("trace-create", body),
        event("span-create", {"id": f"{tid}-s", "traceId": tid, "startTime": iso(seconds=at)}),
        event(
            "generation-create",
            {
                "id": f"{tid}-g",
                "traceId": tid,
                "parentObservationId": f"{tid}-s",
                "model": "gpt-4o",
                "startTime": iso(seconds=at + 0.1),
                "endTime": iso(seconds=at + 0.9),
                "usageDetails": {"input": 10, "output": 5},
                "costDetails": {"total": 0.5},
            },
        ),
        event(
            "score-create",
            {
                "id": f"{tid}-q",
                "traceId": tid,
                "name": "quality",
                "value": 0.5,
                "timestamp": iso(seconds=at),
            },
        ),
    ]


def _session_score(sid: str, session: str, *, days: float = 0) -> dict:
    return event(
        "score-create",
        {
            "id": sid,
            "sessionId": session,
            "name": "csat",
            "value": 1.0,
            "timestamp": iso(seconds=days * 86400),
        },
    )


def _seed(api) -> None:
    ingest(
        api,
        *_conversation("a1", "alice", "s-alice"),
        *_conversation("a2", "alice", "s-shared"),
        *_conversation("b1", "bob", "s-shared"),
        *_conversation("b2", "bob", None),
        _session_score("sc-alice", "s-alice"),
        _session_score("sc-shared", "s-shared"),
    )


#: Two seeded traces (2 observations, 1 score each) and the session they empty, with
#: its own score: what deleting alice, or the session s-shared, removes.
TWO_TRACES_AND_A_SESSION = {"traces": 2, "observations": 4, "scores": 3, "sessions": 1}


def _trace_ids(api) -> set[str]:
    return {t["id"] for t in api.get("/api/public/traces?limit=100").json()["data"]}


def _score_ids(api) -> set[str]:
    return {s["id"] for s in api.get("/api/public/v2/scores?limit=100").json()["data"]}


def test_deleting_a_user_removes_their_traces_scores_and_emptied_sessions(api):
    _seed(api)
    response = api.delete("/api/public/users/alice")
    assert response.status_code == 200, response.text
    assert response.json()["deleted"] == TWO_TRACES_AND_A_SESSION
    assert _trace_ids(api) == {"b1", "b2"}
    assert _score_ids(api) == {"b1-q", "b2-q", "sc-shared"}
    assert api.get("/api/public/sessions/s-alice").status_code == 404
    assert api.get("/api/public/sessions/s-shared").status_code == 200
    assert api.get("/api/public/observations/a1-g").status_code == 404
    users = {u["userId"] for u in api.get("/api/public/users").json()["data"]}
    assert "alice" not in users and "bob" in users
    _assert_rollups_match(api)
    # Deleting again finds nothing, and another project's key deletes nothing here.
    assert api.delete("/api/public/users/alice").json()["deleted"]["traces"] == 0
    other = api.new_project()
    gone = api.delete("/api/public/users/bob", auth=other.auth).json()["deleted"]
    assert gone["traces"] == 0 and _trace_ids(api) == {"b1", "b2"}
    # Each deletion is audited in the project it ran in, by the key that asked.
    mine = api.get("/api/public/audit-log?action=user").json()["data"]
    assert [(e["action"], e["target"], e["detail"]["traces"]) for e in mine] == [
        ("user.delete", "alice", 0),
        ("user.delete", "alice", 2),
    ]
    [theirs] = api.get("/api/public/audit-log", auth=other.auth).json()["data"]
    assert theirs["actor"] == f"key:{other.public_key}" and theirs["target"] == "bob"


def test_deleting_a_session_removes_its_traces_and_own_scores(api):
    _seed(api)
    response = api.delete("/api/public/sessions/s-shared")
    assert response.status_code == 200, response.text
    assert response.json()["deleted"] == TWO_TRACES_AND_A_SESSION
    assert _trace_ids(api) == {"a1", "b2"}
    assert "sc-shared" not in _score_ids(api)
    assert api.get("/api/public/sessions/s-shared").status_code == 404
    _assert_rollups_match(api)
    log = api.get("/api/public/audit-log").json()
    assert log["meta"]["totalItems"] == 1
    [entry] = log["data"]
    assert entry["action"] == "session.delete" and entry["target"] == "s-shared"
    assert entry["actor"] == f"key:{api.project.public_key}"
    assert entry["detail"]["traces"] == 2


def test_retention_setting_api(api):
    assert api.get("/api/public/retention").json() == {"retentionDays": None}
    assert api.put("/api/public/retention", json={"retentionDays": 30}).json() == {
        "retentionDays": 30
    }
    assert api.get("/api/public/retention").json()["retentionDays"] == 30
    assert api.get("/api/public/projects").json()["data"][0]["retentionDays"] == 30
    for bad in ({"retentionDays": 0}, {"retentionDays": "30"}, {"retentionDays": 40000}, {}):
        response = api.put("/api/public/retention", json=bad)
        assert response.status_code == 400 and "retentionDays" in response.text, bad
    assert api.put("/api/public/retention", json={"retentionDays": None}).status_code == 200
    entries = api.get("/api/public/audit-log?action=retention.update").json()["data"]
    assert [e["detail"] for e in entries] == [{"from": 30, "to": None}, {"from": None, "to": 30}]
    # 7.0 is an integer to JSON Schema (what the document says the route takes); 7.5 is not.
    assert api.put("/api/public/retention", json={"retentionDays": 7.0}).json() == {
        "retentionDays": 7
    }
    assert api.put("/api/public/retention", json={"retentionDays": 7.5}).status_code == 400


def _job(api, owner: str, clock) -> RetentionJob:
    rt = api.app.state.runtime
    return RetentionJob(
        rt.db,
        rt.store,
        rt.writer.run_sync,
        clock=clock,
        owner=owner,
        batch=2,
        interval=timedelta(hours=1),
    )


def _sessions(api) -> set[str]:
    return {s["id"] for s in api.get("/api/public/sessions").json()["data"]}


def test_retention_job_deletes_in_batches_what_is_older_once_per_interval(
    quiet_api, backend, caplog
):
    api = quiet_api
    # The SQL store keeps session rows: one named by a score only stays listed, and
    # retention deletes it (counted) once nothing names it. On ClickHouse sessions are
    # the traces' session ids: listed while a trace names one, gone with its last trace.
    rows = backend != "clickhouse"
    ingest(
        api,
        *_conversation("old1", "alice", "s-old", days=0),
        *_conversation("old2", "alice", "s-old", days=1),
        *_conversation("old3", "bob", None, days=2),
        *_conversation("new1", "alice", "s-new", days=40),
        _session_score("sc-old", "s-old", days=1),
        _session_score("sc-recent", "s-old", days=20),
        _session_score("sc-new", "s-new", days=40),
    )
    other = api.new_project()
    ingest(api, *_conversation("theirs", "carol", None, days=0), auth=other.auth)
    assert api.put("/api/public/retention", json={"retentionDays": 30}).status_code == 200
    now = [T0 + timedelta(days=45)]
    first, second = _job(api, "one", lambda: now[0]), _job(api, "two", lambda: now[0])

    with caplog.at_level(logging.INFO, logger="lanterna.retention"):
        run = first.tick()
    assert run is not None
    gone = run.deleted[api.project.id]
    # Cut-off T0 + 15 days: the three old traces (batches of 2), their 6 observations and
    # 3 scores, and the old session score; s-old keeps its recent score, so it stays.
    assert (gone.traces, gone.observations, gone.scores, gone.sessions) == (3, 6, 4, 0)
    assert other.id not in run.deleted  # no retention there
    assert _trace_ids(api) == {"new1"}
    assert _score_ids(api) == {"new1-q", "sc-new", "sc-recent"}
    assert _sessions(api) == ({"s-old", "s-new"} if rows else {"s-new"})
    assert api.get("/api/public/traces/theirs", auth=other.auth).status_code == 200
    assert "deleted 3 trace(s), 6 observation(s), 4 score(s), 0 session(s)" in caplog.text
    _assert_rollups_match(api)

    # Due again an hour later, whichever process ticks; before that nobody runs it.
    assert second.tick() is None and first.tick() is None
    now[0] += timedelta(minutes=59)
    assert second.tick() is None
    now[0] = T0 + timedelta(days=71)  # cut-off T0 + 41 days: everything left is older
    run = second.tick()
    assert run is not None
    gone = run.deleted[api.project.id]
    assert (gone.traces, gone.observations, gone.scores, gone.sessions) == (1, 2, 3, 2 * rows)
    assert _trace_ids(api) == set() and _score_ids(api) == set() and _sessions(api) == set()
    _assert_rollups_match(api)


def test_a_held_lease_keeps_other_processes_out_until_it_expires(quiet_api):
    api = quiet_api
    assert api.put("/api/public/retention", json={"retentionDays": 30}).status_code == 200
    now = T0
    rt = api.app.state.runtime
    life = rt.store.lifecycle
    assert rt.writer.run_sync(
        lambda c: life.claim_job(c, "retention", "crashed", now, now + timedelta(minutes=30))
    )
    job = _job(api, "alive", lambda: now)
    assert job.tick(now + timedelta(minutes=29)) is None
    assert job.tick(now + timedelta(minutes=31)) is not None  # the crashed one's lease ran out


def test_without_any_retention_a_tick_writes_nothing(quiet_api):
    rt = quiet_api.app.state.runtime
    commits = rt.writer.commits
    assert _job(quiet_api, "idle", lambda: T0).tick() is None
    assert rt.writer.commits == commits


@pytest.mark.parametrize("path", ["/api/public/users/x", "/api/public/sessions/x"])
def test_deletion_needs_a_secret_key(api, path):
    assert api.delete(path, auth=None).status_code == 401


def _db_args(db_url: str) -> list[str]:
    if db_url.startswith("sqlite:///"):
        return ["--data-dir", str(Path(db_url.removeprefix("sqlite:///")).parent)]
    return ["--database-url", db_url]


def test_cli_deletes_a_users_data_and_keys_changes_are_audited(api, db_url, events_url, capsys):
    _seed(api)
    pid = api.project.id
    events = ["--events-url", events_url] if events_url else []
    assert main(["delete", "user", "alice", "--project", pid, *_db_args(db_url), *events]) == 0
    assert "deleted user alice: 2 trace(s), 4 observation(s), 3 score(s), 1 session(s)" in (
        capsys.readouterr().out
    )
    assert _trace_ids(api) == {"b1", "b2"}
    _assert_rollups_match(api)
    assert (
        main(["delete", "session", "s-shared", "--project", pid, *_db_args(db_url), *events]) == 0
    )
    assert _trace_ids(api) == {"b2"}
    assert main(["keys", "create", "--project", pid, *_db_args(db_url)]) == 0
    public = next(x for x in capsys.readouterr().out.split() if x.startswith("LANGFUSE_PUBLIC"))
    key = public.split("=", 1)[1]
    assert main(["keys", "revoke", key, *_db_args(db_url)]) == 0
    entries = api.get("/api/public/audit-log").json()["data"]
    assert [(e["actor"], e["action"], e["target"]) for e in entries] == [
        ("cli", "api_key.revoke", key),
        ("cli", "api_key.create", key),
        ("cli", "session.delete", "s-shared"),
        ("cli", "user.delete", "alice"),
    ]


def test_worker_once_runs_the_retention_job(quiet_api, db_url, events_url, capsys):
    api = quiet_api
    ingest(api, *_conversation("old", "alice", None, days=0))  # 2024: long past 30 days
    assert api.put("/api/public/retention", json={"retentionDays": 30}).status_code == 200
    events = ["--events-url", events_url] if events_url else []
    assert main(["worker", "--once", *_db_args(db_url), *events]) == 0
    assert "retention: deleted 1 trace(s), 1 score(s)" in capsys.readouterr().out
    assert _trace_ids(api) == set()
    _assert_rollups_match(api)
