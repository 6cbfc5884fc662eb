"""The trace list's totals row reads its score averages apart from its sums (the
summary route runs the two reads side by side on two connections on PostgreSQL): both must pick the
same first ``limit`` matching traces in the list's order, whichever way the store walks
the matches (the time index, a tag's rows, a user's or session's index, the traces
themselves for other filters and search)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from helpers import T0, event, ingest, iso
from lanterna.server.ui.traces_page import _summary
from lanterna.store.clickhouse import store as ch_store
from lanterna.store.traces import TraceQuery

pytestmark = pytest.mark.clickhouse

N = 12
LIMIT = 5


def _trace(i: int) -> dict[str, object]:
    return {
        "i": i,
        "id": f"t{i:02d}",
        # t00 is the newest: the list's order (time, newest first) is t00, t01, ...
        "timestamp": iso(seconds=-60 * i),
        "name": "chat" if i % 2 == 0 or i == 3 else "other",
        "userId": "u1" if i % 3 else "u2",
        "sessionId": "s1" if i < 8 else None,
        "tags": ["vip"] if i % 2 == 0 else ["free"],
        "release": "r2" if i % 4 != 1 else "r1",
        "input": "a refund please" if i % 4 == 0 else "hello",
    }


QUERIES: list[tuple[str, TraceQuery, Callable[[dict[str, object]], bool]]] = [
    ("all", TraceQuery(), lambda t: True),
    ("name", TraceQuery(name="chat"), lambda t: t["name"] == "chat"),
    ("tag", TraceQuery(tags=["vip"]), lambda t: "vip" in t["tags"]),  # type: ignore[operator]
    (
        "tag and time",
        TraceQuery(tags=["vip"], to_timestamp=T0 - timedelta(seconds=150)),
        lambda t: "vip" in t["tags"] and t["i"] >= 3,  # type: ignore[operator]
    ),
    (
        "tag and user",
        TraceQuery(tags=["vip"], user_id="u1"),
        lambda t: "vip" in t["tags"] and t["userId"] == "u1",  # type: ignore[operator]
    ),
    ("user", TraceQuery(user_id="u1"), lambda t: t["userId"] == "u1"),
    (
        "user and name",
        TraceQuery(user_id="u1", name="other"),
        lambda t: t["userId"] == "u1" and t["name"] == "other",
    ),
    ("session", TraceQuery(session_id="s1"), lambda t: t["sessionId"] == "s1"),
    ("release", TraceQuery(release="r2"), lambda t: t["release"] == "r2"),
    ("search", TraceQuery(search="refund"), lambda t: "refund" in str(t["input"])),
    (
        "oldest first",
        TraceQuery(order_desc=False),
        lambda t: True,
    ),
]


def _seed(api) -> dict[str, dict[str, float]]:
    """Twelve traces with two scores each; each trace's scores by name."""
    events = []
    scores: dict[str, dict[str, float]] = {}
    for i in range(N):
        body = _trace(i)
        del body["i"]
        tid = str(body["id"])
        events.append(event("trace-create", body))
        scores[tid] = {"quality": float(i * i), "ok": float(i % 3 == 0)}
        events.append(
            event(
                "score-create",
                {"id": f"{tid}-q", "traceId": tid, "name": "quality", "value": float(i * i)},
            )
        )
        events.append(
            event(
                "score-create",
                {
                    "id": f"{tid}-ok",
                    "traceId": tid,
                    "name": "ok",
                    "value": float(i % 3 == 0),
                    "dataType": "BOOLEAN",
                },
            )
        )
        events.append(  # categorical: not averaged
            event(
                "score-create",
                {
                    "id": f"{tid}-label",
                    "traceId": tid,
                    "name": "label",
                    "value": "x",
                    "dataType": "CATEGORICAL",
                },
            )
        )
    assert ingest(api, *events)["errors"] == []
    return scores


def _expected(
    scores: dict[str, dict[str, float]], keep: Callable[[dict[str, object]], bool], desc: bool
) -> tuple[list[str], dict[str, float]]:
    order = range(N) if desc else range(N - 1, -1, -1)
    chosen = [f"t{i:02d}" for i in order if keep(_trace(i))][:LIMIT]
    sums: dict[str, list[float]] = {}
    for tid in chosen:
        for name, value in scores[tid].items():
            have = sums.setdefault(name, [0, 0.0])
            have[0] += 1
            have[1] += value
    return chosen, {name: total / n for name, (n, total) in sorted(sums.items())}


@pytest.mark.parametrize("per_id", [0.0, 1.0])
def test_score_averages_read_apart_cover_the_totals_traces(api, monkeypatch, per_id):
    """For every way of walking the matches, the score averages read apart equal those
    read with the sums and those of the first five matching traces; the summary route's
    two reads side by side put together the same row. (ClickHouse: with the chosen
    traces' ids bound, ``per_id`` 0, and found again by a subquery, 1.)"""
    monkeypatch.setattr(ch_store, "_PARSE_PER_ID", per_id)
    scores = _seed(api)
    rt, pid = api.app.state.runtime, api.project.id
    traces = rt.store.traces
    for label, query, keep in QUERIES:
        chosen, want = _expected(scores, keep, query.order_desc)
        together = rt.read_sync(lambda c, q=query: traces.trace_totals(c, pid, q, limit=LIMIT))
        alone = rt.read_sync(
            lambda c, q=query: traces.trace_totals(c, pid, q, limit=LIMIT, scores=False)
        )
        apart = rt.read_sync(lambda c, q=query: traces.trace_score_averages(c, pid, q, limit=LIMIT))
        assert together.traces == len(chosen), label
        assert apart == pytest.approx(want), label
        assert together.scores == pytest.approx(want), label
        assert alone.scores == {}, label
        assert (alone.traces, alone.more, alone.cost) == (
            together.traces,
            together.more,
            together.cost,
        ), label
        summary = asyncio.run(_summary(rt, pid, query, LIMIT))
        assert summary.scores == pytest.approx(want), label
        assert (summary.traces, summary.more) == (together.traces, together.more), label
    # A limit past the matches: every match, and no "more".
    everything = asyncio.run(_summary(rt, pid, TraceQuery(), N + 1))
    assert (everything.traces, everything.more) == (N, False)
    assert everything.scores["quality"] == pytest.approx(sum(i * i for i in range(N)) / N)
