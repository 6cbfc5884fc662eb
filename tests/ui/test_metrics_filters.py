"""The Metrics page's trace filters (name, user, tag, release, model, metadata) and the
trace list's totals of the filtered set, checked against figures computed from the
ingested traces (read back one by one through the public API)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from seed import chat_trace, ingest, seed_basic

from conftest import PASSWORD, Site, login, shot
from lanterna.store import traces as store_traces
from lanterna.store.db import Database
from lanterna.store.interface import SqlStore, TraceQuery

pytestmark = pytest.mark.clickhouse


def _seed(site: Site) -> dict[str, list[str]]:
    """seed_basic's four traces and one more of release 2.0.0 and model claude-3-haiku;
    the trace ids each filter should keep."""
    ids = seed_basic(site.url, site.project.auth)
    turns, error = ids["turns"], ids["error_trace"]
    at = datetime.now(timezone.utc) - timedelta(minutes=20)
    other, events = chat_trace(
        at=at, name="summarize", user="carol", session=None, question="Sum up <b>this</b>",
        answer="Done.", model="claude-3-haiku", tags=["batch"], metadata={"variant": "C"},
    )  # fmt: skip
    events[0]["body"]["release"] = "2.0.0"
    ingest(site.url, site.project.auth, events)
    return {
        "": [*turns, error, other],
        "name=research": [error],
        "user=alice": turns,
        "tag=beta": [error],
        "tag=production,chat": turns,
        "release=2.0.0": [other],
        "model=gpt-4o-mini": [error],
        "meta=variant%3DA": [turns[0], turns[2]],
        "meta=variant%3DB": [turns[1], error],
    }


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def expected(site: Site, trace_ids: list[str]) -> dict[str, Any]:
    """Count, cost, tokens, average latency and score averages of these traces, from
    their observations and scores as the public API returns them."""
    cost = 0.0
    tokens = 0
    latencies: list[float] = []
    scores: dict[str, list[float]] = {}
    for trace_id in trace_ids:
        r = httpx.get(f"{site.url}/api/public/traces/{trace_id}", auth=site.project.auth)
        assert r.status_code == 200, r.text
        trace = r.json()
        observations = trace["observations"]
        cost += sum(o["calculatedTotalCost"] or 0 for o in observations)
        tokens += sum(o["totalTokens"] or 0 for o in observations)
        if observations:
            first = min(_parse(o["startTime"]) for o in observations)
            last = max(_parse(o["endTime"] or o["startTime"]) for o in observations)
            latencies.append((last - first).total_seconds())
        for s in trace["scores"]:
            if s["dataType"] in ("NUMERIC", "BOOLEAN"):
                scores.setdefault(s["name"], []).append(float(s["value"]))
    return {
        "traces": len(trace_ids),
        "cost": cost,
        "tokens": tokens,
        "latency": sum(latencies) / len(latencies) if latencies else None,
        "scores": {k: sum(v) / len(v) for k, v in sorted(scores.items())},
    }


@contextmanager
def http_login(site: Site, email: str) -> Iterator[httpx.Client]:
    """An HTTP client logged in through the login form."""
    with httpx.Client(base_url=site.url) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, page.text
        r = client.post(
            "/login", data={"csrf_token": token.group(1), "email": email, "password": PASSWORD}
        )
        assert r.status_code in (200, 303), r.text
        yield client


def kpis(text: str, attr: str) -> dict[str, str]:
    """``data-<attr>`` -> ``data-value`` of a rendered page."""
    return dict(re.findall(rf'data-{attr}="([^"]*)" data-value="([^"]*)"', text))


def _metrics(client: httpx.Client, site: Site, query: str) -> dict[str, str]:
    r = client.get(site.path(f"metrics?range=24h&{query}"))
    assert r.status_code == 200, r.text
    return kpis(r.text, "kpi")


def test_each_metrics_filter_gives_the_matching_traces_figures(site: Site) -> None:
    cases = _seed(site)
    with http_login(site, site.viewer) as client:
        for query, trace_ids in cases.items():
            want = expected(site, trace_ids)
            got = _metrics(client, site, query)
            assert int(got["traces"]) == want["traces"], query
            assert float(got["cost"]) == pytest.approx(want["cost"]), query
            assert want["cost"] > 0
            assert int(got["totalTokens"]) == want["tokens"], query
            assert float(got["avgLatency"]) == pytest.approx(want["latency"], abs=1e-3), query
        # Filters combine (a trace has them all); nothing matches is zeros, not an error.
        got = _metrics(client, site, "user=alice&meta=variant%3DB")
        assert int(got["traces"]) == 1
        got = _metrics(client, site, "user=bob&meta=variant%3DA")
        assert int(got["traces"]) == 0 and float(got["cost"]) == 0
        # The filters stay in the form (so the URL is the shareable page).
        r = client.get(site.path("metrics?range=24h&model=gpt-4o-mini&meta=variant%3DB"))
        assert 'name="model" value="gpt-4o-mini"' in r.text
        assert 'name="meta" value="variant=B"' in r.text
        bad = client.get(site.path("metrics?meta=novalue"))
        assert bad.status_code == 400 and "key=value" in bad.text


def test_metrics_filters_escape_what_users_wrote(site: Site) -> None:
    _seed(site)
    payload = '"><script>alert(1)</script>'
    with http_login(site, site.viewer) as client:
        r = client.get(site.path("metrics"), params={"name": payload, "meta": f"k={payload}"})
    assert r.status_code == 200
    assert "<script>alert(1)" not in r.text
    assert "&lt;script&gt;alert(1)" in r.text


def test_trace_list_totals_are_those_of_the_filtered_set(site: Site) -> None:
    cases = _seed(site)
    turns = cases["user=alice"]
    # One user or one session: the totals read that one's traces index.
    cases["user=alice&name=chat-turn&range=24h"] = turns
    cases["user=bob&name=chat-turn"] = []
    cases["session=sess-alice-1"] = turns
    cases["session=sess-alice-1&meta=variant%3DA"] = [turns[0], turns[2]]
    with http_login(site, site.viewer) as client:
        for query, trace_ids in cases.items():
            want = expected(site, trace_ids)
            # The list page shows its rows; the count and totals load after it.
            listed = client.get(site.path(f"traces?{query}"))
            assert listed.status_code == 200, listed.text
            assert 'data-total="' not in listed.text
            slot = re.search(r'data-load="([^"]+)"', listed.text)
            assert slot, listed.text
            r = client.get(html.unescape(slot.group(1)))
            assert r.status_code == 200, r.text
            assert f'data-testid="trace-count" data-value="{len(trace_ids)}"' in r.text, query
            if query == "":  # without scripts, totals=1 puts them in the list page
                inline = client.get(site.path("traces?totals=1"))
                assert kpis(inline.text, "total") == kpis(r.text, "total")
            got = kpis(r.text, "total")
            assert int(got["traces"]) == want["traces"], query
            assert float(got["cost"]) == pytest.approx(want["cost"]), query
            assert int(got["tokens"]) == want["tokens"], query
            if want["traces"]:
                assert float(got["latency"]) == pytest.approx(want["latency"], abs=1e-3), query
            else:
                assert got["latency"] == "", query
            scores = {k: float(v) for k, v in kpis(r.text, "score").items()}
            assert scores == pytest.approx(want["scores"]), query


def test_trace_list_pages_without_counting_and_summary_errors_name_the_field(
    site: Site,
) -> None:
    """The list reads one row past its page to offer the next page (no count); the
    summary counts them all; the summary of a bad filter is a 400 naming it."""
    at = datetime.now(timezone.utc) - timedelta(minutes=5)
    events = [
        {
            "id": f"event-page-{i:02d}",
            "type": "trace-create",
            "timestamp": at.isoformat(),
            "body": {
                "id": f"page-{i:02d}",
                "name": "paged",
                "timestamp": (at - timedelta(seconds=i)).isoformat(),
            },
        }
        for i in range(27)
    ]
    ingest(site.url, site.project.auth, events)
    with http_login(site, site.viewer) as client:
        ids: list[str] = []
        for number, next_page in ((1, True), (2, False)):
            r = client.get(
                site.path("traces"), params={"name": "paged", "limit": 25, "page": number}
            )
            assert ('rel="next"' in r.text) is next_page, number
            assert f"page {number}" in r.text
            ids += re.findall(r'data-trace-id="([^"]+)"', r.text)
        assert ids == [f"page-{i:02d}" for i in range(27)]  # newest first
        summary = client.get(site.path("traces/summary"), params={"name": "paged"})
        assert 'data-testid="trace-count" data-value="27"' in summary.text
        bad = client.get(site.path("traces/summary?range=custom&from=yesterday"))
    assert bad.status_code == 400
    assert "from: not a date or time: 'yesterday'" in html.unescape(bad.text)


def _kpi(page: Any, key: str) -> str:
    return str(page.locator(f"[data-kpi={key}]").get_attribute("data-value"))


def test_browser_metadata_filter_compares_variants(site: Site, page: Any) -> None:
    cases = _seed(site)
    login(page, site.url, site.owner)
    page.goto(site.path("metrics?range=24h"))
    assert int(_kpi(page, "traces")) == 5
    for variant in ("A", "B"):
        want = expected(site, cases[f"meta=variant%3D{variant}"])
        page.fill("input[name=meta]", f"variant={variant}")
        page.click("form.filters button[type=submit]")
        page.wait_for_load_state()
        assert f"meta=variant%3D{variant}" in page.url  # shareable
        assert int(_kpi(page, "traces")) == want["traces"]
        assert float(_kpi(page, "cost")) == pytest.approx(want["cost"])
        assert int(_kpi(page, "totalTokens")) == want["tokens"]
        kpi_text = page.get_by_test_id("kpis").inner_text().upper()
        assert f"TRACES\n{want['traces']}" in kpi_text
    shot(page, "metrics-filtered")
    # The trace list with the same filter: its totals row sums the listed traces.
    page.goto(site.path("traces?meta=variant%3DB"))
    rows = page.locator("[data-testid=traces-table] tbody tr[data-trace-id]")
    listed = [str(rows.nth(i).get_attribute("data-trace-id")) for i in range(rows.count())]
    assert sorted(listed) == sorted(cases["meta=variant%3DB"])
    want = expected(site, listed)
    totals = page.get_by_test_id("trace-totals")
    assert float(str(totals.locator("[data-total=cost]").get_attribute("data-value"))) == (
        pytest.approx(want["cost"])
    )
    text = totals.inner_text().upper()
    assert "TRACES\n2" in text and f"TOTAL TOKENS\n{want['tokens']:,}" in text
    assert "AVG USER_RATING\n2" in text  # ratings 3 and 1
    shot(page, "trace-list-totals")


def _store(events_url: str) -> Any:
    """The server's store: SQL, or with the event store on ClickHouse."""
    if not events_url:
        return SqlStore()
    from lanterna.store.clickhouse import clickhouse_store

    return clickhouse_store(events_url)


def test_trace_totals_are_bounded_like_the_count(
    site: Site, events_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its limit, the totals are those of the first matches in the list's order
    (the newest ones by default), as the list's count stops at its limit; the scores
    read a few traces per statement add up to the same averages."""
    cases = _seed(site)
    db = Database(site.db_url)
    try:
        with db.transaction() as conn:
            traces = _store(events_url).traces
            all_five = traces.trace_totals(conn, site.project.id, TraceQuery(), limit=10)
            newest_two = traces.trace_totals(conn, site.project.id, TraceQuery(), limit=2)
            monkeypatch.setattr(store_traces, "_SCORE_CHUNK", 2)
            monkeypatch.setattr(store_traces, "_SCORE_ARRAY_CHUNK", 2)
            in_pairs = traces.trace_totals(conn, site.project.id, TraceQuery(), limit=10)
    finally:
        db.close()
    assert in_pairs.scores == pytest.approx(all_five.scores) and all_five.scores
    assert all_five.traces == 5 and not all_five.more
    assert newest_two.more  # the count says "2+"
    assert all_five.cost == pytest.approx(expected(site, cases[""])["cost"])
    # The newest two: the extra trace (20 minutes ago) and the research trace (25).
    want = expected(site, [*cases["release=2.0.0"], *cases["name=research"]])
    assert newest_two.traces == 2
    assert newest_two.cost == pytest.approx(want["cost"])
    assert newest_two.tokens == want["tokens"]
    assert newest_two.scores == pytest.approx(want["scores"])
