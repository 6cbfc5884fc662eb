"""Tag filters on the trace list match whole tags exactly, whatever the tags hold
(quotes, commas, brackets, backslashes, Korean): on SQLite a text search for the
tag's JSON narrows the rows before the exact test, and must never lose a match or
let a near miss through."""

from __future__ import annotations

from datetime import datetime

import pytest

from helpers import event, ingest, iso
from lanterna.store import traces as store_traces
from lanterna.store.db import Database
from lanterna.store.traces import TraceQuery, TraceTotals

TAGS = {
    "a": ["vip"],
    "b": ['x","vip'],  # holds the text "vip" with quotes around it, escaped
    "c": ["VIP", "vip-2", "[vip]"],
    "d": ['say "hi"', "back\\slash", "한국어", "vip"],
    "e": [],
    "f": ["a,b", "vip\n"],
}


def _ids(api, **params):
    body = api.get("/api/public/traces", params={**params, "limit": 100}).json()
    return sorted(t["id"] for t in body["data"])


def test_tag_filters_match_whole_tags(api):
    ingest(
        api,
        *[
            event("trace-create", {"id": tid, "tags": tags, "timestamp": iso(seconds=i)})
            for i, (tid, tags) in enumerate(TAGS.items())
        ],
    )
    for tag in ["vip", 'x","vip', "VIP", "[vip]", 'say "hi"', "back\\slash", "한국어", "a,b"]:
        want = sorted(tid for tid, tags in TAGS.items() if tag in tags)
        assert _ids(api, tags=tag) == want, tag
    assert _ids(api, tags=["vip", "한국어"]) == ["d"]
    assert _ids(api, tags="vip\n") == ["f"]
    assert _ids(api, tags="vi") == []
    none_of = (
        '[{"type": "arrayOptions", "column": "tags", "operator": "none of", "value": ["vip"]}]'
    )
    assert _ids(api, filter=none_of) == ["b", "c", "e", "f"]
    any_of = (
        '[{"type": "arrayOptions", "column": "tags", "operator": "any of",'
        ' "value": ["a,b", "[vip]"]}]'
    )
    assert _ids(api, filter=any_of) == ["c", "f"]


def _tag_rows(db_url: str) -> tuple[set[tuple[str, str, str]], set[tuple[str, str, str]]]:
    """``trace_tags`` as stored, and as the stored traces' tags say it should be:
    (tag, timestamp, trace id) each."""
    db = Database(db_url)
    try:
        with db.read() as conn:
            d = conn.dialect
            kept = {
                (r["tag"], d.ts_out(r["timestamp"]), r["trace_id"])
                for r in conn.all("SELECT tag, timestamp, trace_id FROM trace_tags")
            }
            want = {
                (tag, d.ts_out(r["timestamp"]), r["id"])
                for r in conn.all("SELECT id, timestamp, tags FROM traces")
                for tag in d.json_out(r["tags"])
            }
    finally:
        db.close()
    return kept, want


def _totals(db_url: str, project_id: str, **query: object) -> TraceTotals:
    """The totals row of a tag filter, which must walk ``trace_tags`` (the other ways
    give the same figures, only slower)."""
    db = Database(db_url)
    try:
        with db.read() as conn:
            asked = TraceQuery(**query)  # type: ignore[arg-type]
            chosen = store_traces._totals_alone(conn, project_id, asked, 101, True)
            assert chosen is not None and "FROM trace_tags g " in chosen[0]
            return store_traces.trace_totals(conn, project_id, asked, limit=100)
    finally:
        db.close()


def test_tag_totals_follow_retagged_moved_and_deleted_traces(api, db_url):
    """The trace list's totals row of a tag filter reads each tag's traces from
    ``trace_tags``, which triggers keep as traces are written, retagged, moved in time
    and deleted: its totals are those of the traces the list shows for the filter."""
    events = []
    for i, (tid, tags) in enumerate(TAGS.items()):
        events.append(
            event("trace-create", {"id": tid, "tags": tags, "timestamp": iso(seconds=60 * i)})
        )
        events.append(
            event(
                "generation-create",
                {
                    "id": f"{tid}-g",
                    "traceId": tid,
                    "startTime": iso(seconds=60 * i),
                    "endTime": iso(seconds=60 * i + i + 1),
                    "model": "m",
                    "usageDetails": {"input": 10 * (i + 1), "output": 1},
                    "costDetails": {"total": 0.5 * (i + 1)},
                },
            )
        )
    ingest(api, *events)
    ingest(  # tags are a union: a adds "other", f adds "vip" (twice)
        api,
        event("trace-create", {"id": "a", "tags": ["other"]}),
        event("trace-create", {"id": "f", "tags": ["vip", "vip"]}),
    )
    assert _ids(api, tags="other") == ["a"]
    # What ingestion never does but another writer may: a loses its tags but "other",
    # c moves an hour earlier.
    db = Database(db_url)
    try:
        with db.transaction() as conn:
            d = conn.dialect
            conn.run("UPDATE traces SET tags = ? WHERE id = 'a'", [d.json(["other"])])
            moved = datetime.fromisoformat(iso(seconds=-3600).replace("Z", "+00:00"))
            conn.run("UPDATE traces SET timestamp = ? WHERE id = 'c'", [d.ts(moved)])
    finally:
        db.close()
    assert api.delete("/api/public/traces/d").status_code == 200
    kept, want = _tag_rows(db_url)
    assert kept == want
    assert {(tag, tid) for tag, _, tid in kept} == {
        (tag, tid) for tid, tags in TAGS.items() if tid not in "ad" for tag in tags
    } | {("other", "a"), ("vip", "f")}
    pid = api.project.id
    since = datetime.fromisoformat(iso(seconds=-60).replace("Z", "+00:00"))
    for tags, frm in [
        (["vip"], None),
        (["vip"], since),
        (["VIP", "vip-2"], since),
        (["other"], None),
    ]:
        listed = _ids(api, tags=tags, **({"fromTimestamp": iso(seconds=-60)} if frm else {}))
        got = _totals(db_url, pid, tags=tags, from_timestamp=frm)
        traces = [api.get(f"/api/public/traces/{t}").json() for t in listed]
        assert got.traces == len(listed), tags
        assert got.cost == pytest.approx(sum(t["totalCost"] for t in traces)), tags
        assert got.tokens == sum(o["totalTokens"] for t in traces for o in t["observations"])
    assert _ids(api, tags="vip") == ["f"]
    assert _totals(db_url, pid, tags=["vip"]).traces == 1
    # c moved out of the range: its tags no longer count there.
    assert _totals(db_url, pid, tags=["VIP"], from_timestamp=since).traces == 0
    assert _totals(db_url, pid, tags=["VIP"]).traces == 1
