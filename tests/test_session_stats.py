"""A page of sessions' stats (the sessions list, a user's sessions): turns, first and last
trace time and the users of each session's traces, read in one grouped statement."""

from __future__ import annotations

from datetime import datetime

import pytest

from helpers import event, ingest, iso

pytestmark = pytest.mark.clickhouse


def _at(seconds: int) -> datetime:
    return datetime.fromisoformat(iso(seconds=seconds).replace("Z", "+00:00"))


def test_session_stats_count_turns_times_and_users(api):
    traces = [
        ("a", "s1", "u2", 10),
        ("b", "s1", "u1", 0),
        ("c", "s1", None, 20),
        ("d", "s1", "u1", 5),
        ("e", "s2", "u3", 1),
        ("f", "s3", None, 7),
        ("g", "s3", None, 3),
    ]
    ingest(
        api,
        *[
            event(
                "trace-create",
                {"id": tid, "sessionId": sid, "timestamp": iso(seconds=at)}
                | ({"userId": user} if user else {}),
            )
            for tid, sid, user, at in traces
        ],
    )
    rt, pid = api.app.state.runtime, api.project.id
    stats = rt.read_sync(
        lambda c: rt.store.sessions.session_stats(c, pid, ["s3", "s1", "s2", "nope", "s1"])
    )
    assert list(stats) == ["s3", "s1", "s2", "nope"]
    got = {sid: (s.turns, s.first, s.last, s.users) for sid, s in stats.items()}
    assert got == {
        "s1": (4, _at(0), _at(20), ["u1", "u2"]),
        "s2": (1, _at(1), _at(1), ["u3"]),
        "s3": (2, _at(3), _at(7), []),
        "nope": (0, None, None, []),
    }


def test_session_usage_equals_each_sessions_totals(api):
    """A page of sessions' cost and tokens in one read (SQL: ``session_totals``;
    ClickHouse: the sessions' observations joined to their traces) equals each
    session's own sum, also after a trace moves to another session and one is deleted."""
    from lanterna.analytics.usage import session_totals

    events = []
    for i, (tid, sid) in enumerate([("a", "s1"), ("b", "s1"), ("c", "s2"), ("d", "s3")]):
        events.append(event("trace-create", {"id": tid, "sessionId": sid, "timestamp": iso()}))
        for j in range(i + 1):
            events.append(
                event(
                    "generation-create",
                    {
                        "id": f"{tid}-{j}",
                        "traceId": tid,
                        "startTime": iso(seconds=j),
                        "usageDetails": {"input": 10 * (i + 1), "output": j},
                        "costDetails": {"total": 0.25 * (i + 1)},
                    },
                )
            )
    ingest(api, *events)
    ingest(api, event("trace-create", {"id": "b", "sessionId": "s2"}))  # b moves to s2
    assert api.delete("/api/public/traces/d").status_code == 200
    rt, pid = api.app.state.runtime, api.project.id
    sessions = ["s1", "s2", "s3", "none"]
    usage = rt.read_sync(lambda c: rt.store.sessions.session_usage(c, pid, sessions))
    assert usage is not None
    each = rt.read_sync(
        lambda c: {s: session_totals(rt.store.events_conn(c), pid, s) for s in sessions}
    )
    assert set(usage) == set(sessions)
    for s in sessions:
        assert usage[s][0] == pytest.approx(each[s].cost), s
        assert usage[s][1] == each[s].total_tokens, s
    assert usage["s1"] == (pytest.approx(0.25), 10)
    assert usage["s3"] == (0.0, 0) and usage["none"] == (0.0, 0)


def test_session_page_totals_are_its_turns_sums(api):
    """The session page reads its turns' figures and adds them up for the session's
    usage (one read of the observations): the same usage the API reads directly, and
    the turns' costs and latencies those of their observations."""
    from lanterna.analytics.usage import session_totals
    from lanterna.queries.sessions import session_detail

    events = [
        event("trace-create", {"id": "t1", "sessionId": "s", "timestamp": iso(seconds=0)}),
        event("trace-create", {"id": "t2", "sessionId": "s", "timestamp": iso(seconds=60)}),
        event("trace-create", {"id": "t3", "sessionId": "s", "timestamp": iso(seconds=90)}),
        event("trace-create", {"id": "other", "sessionId": "x", "timestamp": iso(seconds=5)}),
    ]
    # (trace, start s, end s, cost, input tokens, output tokens); t3 has none.
    steps = [
        ("t1", 0, 2, 0.1, 10, 5),
        ("t1", 1, 3.5, 0.2, 7, None),
        ("t2", 60, 61, None, None, 4),
        ("t2", 60.5, 60.75, 0.3, 1, 1),
        ("other", 5, 6, 9.0, 100, 100),
    ]
    for i, (tid, start, end, cost, tokens_in, tokens_out) in enumerate(steps):
        usage = {k: v for k, v in (("input", tokens_in), ("output", tokens_out)) if v}
        body = {
            "id": f"o{i}",
            "traceId": tid,
            "startTime": iso(seconds=start),
            "endTime": iso(seconds=end),
            "usageDetails": usage,
        } | ({"costDetails": {"total": cost}} if cost else {})
        events.append(event("generation-create", body))
    assert ingest(api, *events)["errors"] == []
    rt, pid = api.app.state.runtime, api.project.id
    page = rt.read_sync(lambda c: session_detail(rt.store, c, pid, "s", turns=True))
    direct = rt.read_sync(lambda c: session_totals(rt.store.events_conn(c), pid, "s"))
    api_view = rt.read_sync(lambda c: session_detail(rt.store, c, pid, "s"))
    assert page is not None and api_view is not None
    totals = page.totals
    assert (totals.observations, totals.input_tokens, totals.output_tokens) == (4, 18, 10)
    assert totals.total_tokens == 28
    assert totals.cost == pytest.approx(0.6)
    assert (direct.observations, direct.input_tokens, direct.output_tokens) == (4, 18, 10)
    assert (direct.total_tokens, direct.cost) == (28, pytest.approx(0.6))
    assert api_view.totals == direct
    assert [t.trace["id"] for t in page.turns] == ["t1", "t2", "t3"]
    assert [t.latency for t in page.turns] == pytest.approx([3.5, 1.0, 0.0])
    assert [t.cumulative_cost for t in page.turns] == pytest.approx([0.3, 0.6, 0.6])
    assert page.average_latency == pytest.approx(2.25)  # t3 has no observations
