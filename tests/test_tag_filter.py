"""Tag filters on the trace list match whole tags exactly, whatever the tags hold
(quotes, commas, brackets, backslashes, Korean): on SQLite a text search for the
tag's JSON narrows the rows before the exact test, and must never lose a match or
let a near miss through."""

from __future__ import annotations

from helpers import event, ingest, iso

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
