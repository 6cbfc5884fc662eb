"""The trace list's text search (``?q=``) and its count limit, on both backends.

The search finds a substring of a trace's input or output JSON text in any (ASCII)
case, in any script; it is answered from a trigram index (SQLite FTS5, PostgreSQL
pg_trgm) that must follow every write: new traces, updated input or output, deletes.
"""

from __future__ import annotations

import re
from typing import Any

from conftest import Browser
from helpers import event, ingest, iso
from lanterna.queries.traces import trace_list
from lanterna.store.db import Database
from lanterna.store.dialect import SQLITE
from lanterna.store.migrations import migrate
from lanterna.store.traces import TraceQuery
from support import Project

TRACES = {
    "en": ({"question": "How do I get a REFUND for my annual plan?"}, "Refunds take 5 days."),
    "ko": ({"question": "연간 요금제 환불 정책이 궁금합니다"}, "환불은 영업일 기준 5일 걸립니다"),
    "odd": ('50% off_today \\ "quoted"', None),
    "split": ("ends with abc", "xyz starts the output"),
    "short": (None, 7),
}


def _found(client: Browser, project: Project, q: str) -> set[str]:
    response = client.get(f"/project/{project.id}/traces", params={"q": q})
    assert response.status_code == 200, response.text
    return set(re.findall(rf'href="/project/{project.id}/traces/([^"?]+)"', response.text))


def _trace(trace_id: str, input_: Any, output: Any, at: float = 0) -> dict[str, Any]:
    body = {"id": trace_id, "name": "t", "input": input_, "output": output, "timestamp": iso()}
    return event("trace-create", body, at=at)


def test_search_finds_substrings_in_any_script_and_follows_writes(
    two_projects: tuple[Browser, Project, Project],
) -> None:
    client, a, b = two_projects
    assert client.login("owner-a@example.com") in (302, 303)
    ingest(client, *(_trace(tid, i, o) for tid, (i, o) in TRACES.items()), auth=a.auth)
    # The same text in another project is not this project's match.
    ingest(client, _trace("other", "REFUND please", None), auth=b.auth)

    assert _found(client, a, "refund") == {"en"}  # input, any case
    assert _found(client, a, "REFUNDS TAKE") == {"en"}  # output
    assert _found(client, a, "환불 정책") == {"ko"}  # Korean, three characters or more
    assert _found(client, a, "환불") == {"ko"}  # Korean, two characters (no trigram)
    assert _found(client, a, "50% off_") == {"odd"}  # LIKE's wildcards are plain text
    assert _found(client, a, "%") == {"odd"}
    assert _found(client, a, '\\ \\"quoted') == {"odd"}  # JSON text: escapes as stored
    assert _found(client, a, "7") == {"short"}  # an output shorter than a trigram
    assert _found(client, a, "abc") == {"split"}
    assert _found(client, a, "abc\nxyz") == set()  # not across input and output
    assert _found(client, a, "off today") == set()
    assert _found(client, a, "zebrafish") == set()

    # A new output replaces the old one in the index; an unchanged re-send keeps it.
    ingest(
        client,
        event("trace-create", {"id": "en", "output": "Store credit instead."}, at=1),
        auth=a.auth,
    )
    assert _found(client, a, "refunds take") == set()
    assert _found(client, a, "store credit") == {"en"}
    assert _found(client, a, "refund for") == {"en"}  # the input is still there
    ingest(client, event("trace-create", {"id": "ko", "name": "renamed"}, at=2), auth=a.auth)
    assert _found(client, a, "영업일") == {"ko"}

    response = client.delete("/api/public/traces/ko", auth=a.auth)
    assert response.status_code == 200, response.text
    assert _found(client, a, "영업일") == set()


def test_trace_list_count_stops_at_the_limit_and_pages_still_work(
    two_projects: tuple[Browser, Project, Project], db_url: str
) -> None:
    client, a, _ = two_projects
    ingest(
        client,
        *(_trace(f"t{i:02}", {"n": f"item {i}"}, None, at=i) for i in range(12)),
        auth=a.auth,
    )
    store = client.app.state.runtime.store
    db = Database(db_url)
    try:
        with db.read() as conn:
            query = TraceQuery(search="item")

            def page(offset: int, count_limit: int | None) -> tuple[list[str], int]:
                items, total = trace_list(
                    store, conn, a.id, query, limit=3, offset=offset, count_limit=count_limit
                )
                return [i.row["id"] for i in items], total

            exact = [page(offset, None) for offset in range(0, 12, 3)]
            assert [total for _, total in exact] == [12] * 4
            capped = [page(offset, 4) for offset in range(0, 12, 3)]
            # Pages are the same; the count stops past max(limit, end of the page).
            assert [ids for ids, _ in capped] == [ids for ids, _ in exact]
            assert [total for _, total in capped] == [5, 7, 10, 12]
            assert page(0, 100) == exact[0]
    finally:
        db.close()


def test_upgrade_indexes_the_traces_already_stored(
    two_projects: tuple[Browser, Project, Project], db_url: str
) -> None:
    """A database written before 0014 has its stored traces searchable once migrated."""
    client, a, _ = two_projects
    assert client.login("owner-a@example.com") in (302, 303)
    ingest(client, *(_trace(tid, i, o) for tid, (i, o) in TRACES.items()), auth=a.auth)

    def downgrade(conn: Any) -> None:  # the state a 0013 database is in
        if conn.dialect.name == "sqlite":
            for trigger in ("insert", "update", "delete"):
                conn.run(f"DROP TRIGGER traces_search_{trigger}")
            conn.run("DROP TABLE traces_search")
        else:
            conn.run("DROP INDEX traces_search")
        conn.run("DELETE FROM schema_migrations WHERE name = '0014_trace_search'")

    client.app.state.runtime.writer.run_sync(downgrade)
    db = Database(db_url)
    try:
        assert migrate(db) == ["0014_trace_search"]
    finally:
        db.close()
    assert _found(client, a, "영업일 기준") == {"ko"}
    assert _found(client, a, "annual plan") == {"en"}


def test_broad_and_narrow_searches_page_and_count_alike(
    two_projects: tuple[Browser, Project, Project], db_url: str
) -> None:
    """Past 5,000 index candidates (SQLite) or a match in 1 % of the latest traces
    (PostgreSQL) a search reads the list in order; pages and counts stay exact."""
    client, a, _ = two_projects
    n = 5200
    for start in range(0, n, 400):
        ingest(
            client,
            *(
                _trace(f"t{i:05}", f"word{i % 3} common", "Out" if i % 2 else None, at=i)
                for i in range(start, min(n, start + 400))
            ),
            auth=a.auth,
        )
    store = client.app.state.runtime.store
    db = Database(db_url)
    try:
        with db.read() as conn:
            for text, expect in (
                ("COMMON", [i for i in range(n)]),  # every trace: broad on both
                ("word1 com", [i for i in range(n) if i % 3 == 1]),
                ("rd2 common\\", []),  # JSON text: the string's closing quote follows
                ("OUT", [i for i in range(n) if i % 2]),
            ):
                want = [f"t{i:05}" for i in sorted(expect, reverse=True)]
                for offset, limit in ((0, 50), (1700, 25), (max(0, len(want) - 10), 50)):
                    items, total = trace_list(
                        store, conn, a.id, TraceQuery(search=text), limit=limit, offset=offset
                    )
                    assert total == len(want), text
                    got = [i.row["id"] for i in items]
                    assert got == want[offset : offset + limit], text
                _, capped = trace_list(
                    store,
                    conn,
                    a.id,
                    TraceQuery(search=text),
                    limit=50,
                    offset=0,
                    count_limit=100,
                )
                assert capped == min(len(want), 101), text
    finally:
        db.close()


def test_search_finds_traces_across_many_index_segments(
    two_projects: tuple[Browser, Project, Project], db_url: str
) -> None:
    """Each commit adds a segment to the SQLite index, merged only once 16 of a level
    have accumulated (0040): a search reads them all, in any script."""
    client, a, _ = two_projects
    assert client.login("owner-a@example.com") in (302, 303)
    for i in range(40):  # one request (one commit) each
        text = {"question": f"환불 정책 질문 {i:02} refund policy case{i:02}x"}
        ingest(client, _trace(f"s{i:02}", text, None, at=i), auth=a.auth)
    every = {f"s{i:02}" for i in range(40)}
    assert _found_all(client, a, "환불 정책") == every
    assert _found_all(client, a, "REFUND POLICY") == every
    assert _found_all(client, a, "case17x") == {"s17"}
    assert _found_all(client, a, "질문 03") == {"s03"}
    if db_url.startswith("sqlite"):
        db = Database(db_url)
        try:
            with db.read() as conn:
                setting = conn.scalar("SELECT v FROM traces_search_config WHERE k = 'automerge'")
        finally:
            db.close()
        assert int(setting) == 16


def _found_all(client: Browser, project: Project, q: str) -> set[str]:
    response = client.get(f"/project/{project.id}/traces", params={"q": q, "limit": 100})
    assert response.status_code == 200, response.text
    return set(re.findall(rf'href="/project/{project.id}/traces/([^"?]+)"', response.text))


PAIRS = {
    "ko-end": ({"q": "요금제 환불"}, None),  # at the end of a string: the quote follows
    "ko-mid": (None, "환불정책"),
    "en": ("REFUND", None),
    "number": (None, 57),  # JSON text ending in the two characters
    "pair": ("xy", None),
}


def test_two_character_searches_find_every_match(
    two_projects: tuple[Browser, Project, Project], db_url: str
) -> None:
    """Two characters are shorter than a trigram: on SQLite the traces with a trigram
    starting with them (the index's vocabulary) are read, when every occurrence must
    be followed by another character; otherwise, and on PostgreSQL, every trace."""
    client, a, b = two_projects
    assert client.login("owner-a@example.com") in (302, 303)
    ingest(client, *(_trace(tid, i, o) for tid, (i, o) in PAIRS.items()), auth=a.auth)
    ingest(client, _trace("other", "환불", None), auth=b.auth)
    if db_url.startswith("sqlite"):
        d = SQLITE
        assert d.search_hits("환불") is not None and d.search_hits("fU") is not None
        # A last character JSON text can end with, or a case the index folds its own way
        assert [d.search_hits(t) for t in ("57", "ue", 'a"', "Éa", "a")] == [None] * 5
    assert _found(client, a, "환불") == {"ko-end", "ko-mid"}
    assert _found(client, a, "fU") == {"en"}
    assert _found(client, a, "57") == {"number"}
    assert _found(client, a, "xy") == {"pair"}
    assert _found(client, a, "zq") == set()
    # The vocabulary follows the index: updates and deletes.
    ingest(client, event("trace-create", {"id": "ko-mid", "output": "없음"}, at=1), auth=a.auth)
    assert _found(client, a, "환불") == {"ko-end"}
    assert client.delete("/api/public/traces/ko-end", auth=a.auth).status_code == 200
    assert _found(client, a, "환불") == set()
