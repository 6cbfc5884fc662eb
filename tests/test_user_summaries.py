"""A users page's summaries (score averages and main trace names over each user's latest
traces) are the same whether they are read one user at a time (SQLite, PostgreSQL) or
for all the page's users in two statements (ClickHouse, where each statement costs the
same whatever it reads), on every backend."""

from __future__ import annotations

import random

import pytest

from helpers import event, ingest, iso
from lanterna.analytics import usage

pytestmark = pytest.mark.clickhouse


def _data(seed: int) -> list[dict]:
    rng = random.Random(seed)
    batch = []
    seconds = rng.sample(range(600), 90)  # no ties: the latest n are well defined
    for i in range(90):
        tid = f"t{i:02d}"
        body = {"id": tid, "timestamp": iso(seconds=seconds[i])}
        if rng.random() < 0.9:
            body["userId"] = rng.choice(["ann", "bob", "cy", "dee"])
        if rng.random() < 0.8:
            body["name"] = rng.choice(["chat", "search", "plan"])
        batch.append(event("trace-create", body))
        for j in range(rng.randrange(3)):
            value = rng.choice([0.0, 0.5, 1.0, 2.25, "ok"])
            score = {"id": f"s{i}-{j}", "traceId": tid, "name": rng.choice(["q", "h"])}
            score["value"] = value
            if isinstance(value, str):
                score["dataType"] = "CATEGORICAL"
            batch.append(event("score-create", score))
    return batch


def _rounded(scores: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {u: {n: round(v, 9) for n, v in by.items()} for u, by in scores.items()}


@pytest.mark.parametrize("seed", [1, 2])
def test_all_users_at_once_equal_one_user_at_a_time(api, seed: int) -> None:
    ingest(api, *_data(seed))
    pid = api.project.id
    rt = api.app.state.runtime
    users = ["ann", "bob", "cy", "dee", "nobody"]
    for recent in (None, 1, 3, 10):

        def both(c, recent=recent):  # type: ignore[no-untyped-def]
            events = rt.store.events_conn(c)
            one_by_one = [usage.user_summaries(events, pid, [u], recent=recent) for u in users]
            return one_by_one, usage._summaries_at_once(events, pid, users, recent)

        one_by_one, (scores, names) = rt.read_sync(both)
        want_scores = {u: s for part, _ in one_by_one for u, s in part.items()}
        want_names = {u: n for _, part in one_by_one for u, n in part.items()}
        assert names == want_names, recent
        assert _rounded(scores) == _rounded(want_scores), recent
        assert names  # the data has what is compared
        if recent is None:
            assert sorted(names) == ["ann", "bob", "cy", "dee"] and any(scores.values())
