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


def test_session_summaries_cost_and_tokens_are_the_sessions_observations(api):
    """The user page's and the sessions list's cost and tokens per session come from
    ``session_totals`` in one read; they equal the sums over the sessions'
    observations, after a trace moves to another session and one is deleted, and a
    session without traces sums to nothing."""
    from lanterna.analytics.usage import session_totals
    from lanterna.queries.sessions import session_summaries

    batch = []
    for i in range(9):
        tid = f"t{i}"
        batch.append(event("trace-create", {"id": tid, "userId": "u", "sessionId": f"s{i % 3}"}))
        for j in range(i % 3 + 1):
            batch.append(
                event(
                    "generation-create",
                    {
                        "id": f"{tid}-g{j}",
                        "traceId": tid,
                        "startTime": iso(seconds=i),
                        "usageDetails": {"input": 10 * i + j, "output": 3},
                        "costDetails": {"total": 0.001 * (i + 1) * (j + 1)},
                    },
                )
            )
    ingest(api, *batch)
    ingest(api, event("trace-create", {"id": "t4", "sessionId": "s0"}))  # s1 -> s0
    assert api.delete("/api/public/traces/t2").status_code == 200
    rt = api.app.state.runtime
    pid = api.project.id
    ids = ["s0", "s1", "s2", "no-such-session"]
    got = rt.read_sync(lambda c: session_summaries(rt.store, c, pid, ids))
    for sid in ids:
        want = rt.read_sync(lambda c, s=sid: session_totals(c, pid, s))
        assert (got[sid].cost, got[sid].tokens) == (pytest.approx(want.cost), want.total_tokens)
    assert got["s0"].turns == 4 and got["s2"].turns == 2 and got["no-such-session"].cost == 0
