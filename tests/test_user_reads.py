"""A user's sessions, score averages and main features read from their latest traces:
the sessions exactly as grouping all their traces would rank them; the score averages
and features over the latest traces only (and over all of them for a user with fewer)."""

from __future__ import annotations

import random

import pytest

from helpers import event, ingest, iso
from lanterna.analytics.usage import user_summaries
from lanterna.store import sessions


def _all_sessions(conn, pid, user, limit):
    rows = conn.all(
        "SELECT session_id, MAX(timestamp) AS last FROM traces WHERE project_id = ?"
        " AND user_id = ? AND session_id IS NOT NULL GROUP BY session_id"
        " ORDER BY last DESC, session_id LIMIT ?",
        [pid, user, limit],
    )
    return [r["session_id"] for r in rows]


def test_sessions_of_user_from_the_latest_traces_are_exact(api, monkeypatch):
    rng = random.Random(7)
    batch = []
    for i in range(120):
        body = {"id": f"t{i}", "userId": "u", "timestamp": iso(seconds=rng.randrange(400))}
        if rng.random() < 0.8:
            body["sessionId"] = f"s{rng.randrange(40)}"
        batch.append(event("trace-create", body))
    ingest(api, *batch)
    pid = api.project.id
    rt = api.app.state.runtime
    for sample in (5, 10, 30, 1000):
        monkeypatch.setattr(sessions, "USER_SESSIONS_SAMPLE", sample)
        for limit in (1, 3, 8, 50):
            got = rt.read_sync(lambda c, n=limit: sessions.sessions_of_user(c, pid, "u", limit=n))
            want = rt.read_sync(lambda c, n=limit: _all_sessions(c, pid, "u", n))
            assert got == want, (sample, limit)


def test_user_summaries_read_the_latest_traces(api):
    batch = []
    for i in range(30):
        tid = f"t{i:02d}"
        name = "old" if i < 20 else "new"
        batch.append(
            event(
                "trace-create",
                {"id": tid, "userId": "u", "name": name, "timestamp": iso(seconds=i)},
            )
        )
        batch.append(
            event("score-create", {"id": f"s{i}", "traceId": tid, "name": "q", "value": float(i)})
        )
    batch.append(event("score-create", {"id": "c", "traceId": "t29", "name": "cat", "value": "ok"}))
    ingest(api, *batch)
    pid = api.project.id
    rt = api.app.state.runtime
    scores, names = rt.read_sync(lambda c: user_summaries(c, pid, ["u", "nobody"], recent=10))
    assert scores == {"u": {"q": pytest.approx(sum(range(20, 30)) / 10)}}
    assert names == {"u": [(10, "new")]}
    scores, names = rt.read_sync(lambda c: user_summaries(c, pid, ["u"]))
    assert scores == {"u": {"q": pytest.approx(sum(range(30)) / 30)}}
    assert names == {"u": [(20, "old"), (10, "new")]}
