"""Deep pages of the v1 traces and observations lists (Langfuse's ``page``/``limit``):
past the first pages a page reads its ids in index order first, then its rows, and
the unfiltered totals come from counts kept in the write path. Walking every page
returns every item once, in the list's order, with the same ``meta`` as before."""

from __future__ import annotations

import math
from typing import Any

from helpers import event, ingest, iso
from lanterna.store import paging

N = 260  # past DEFER_FROM at small page sizes
LIMIT = 7


def _seed(api: Any) -> None:
    assert paging.DEFER_FROM < N
    batch = []
    for i in range(N):
        # Ten traces share each timestamp: the id breaks the tie.
        at = i // 10
        body = {"id": f"t-{i:03d}", "timestamp": iso(seconds=at), "userId": f"u{i % 3}"}
        batch.append(event("trace-create", body))
        batch.append(
            event(
                "span-create",
                {"id": f"o-{i:03d}", "traceId": f"t-{i:03d}", "startTime": iso(seconds=at)},
            )
        )
    ingest(api, *batch)


def _walk(api: Any, path: str, **params: Any) -> tuple[list[str], list[dict[str, Any]]]:
    ids: list[str] = []
    metas = []
    page = 1
    while True:
        body = api.get(path, params={**params, "limit": LIMIT, "page": page}).json()
        metas.append(body["meta"])
        if not body["data"]:
            return ids, metas
        ids += [item["id"] for item in body["data"]]
        page += 1


def _newest_first(prefix: str, keep: Any = lambda i: True) -> list[str]:
    items = [(i // 10, f"{prefix}-{i:03d}") for i in range(N) if keep(i)]
    return [item_id for _, item_id in sorted(items, reverse=True)]


def test_every_page_of_traces_and_observations_holds_the_next_items(api):
    _seed(api)
    for path, prefix in (("/api/public/traces", "t"), ("/api/public/observations", "o")):
        ids, metas = _walk(api, path)
        assert ids == _newest_first(prefix), path
        pages = math.ceil(N / LIMIT)
        assert metas[0] == {"page": 1, "limit": LIMIT, "totalItems": N, "totalPages": pages}
        assert metas[-1] == {
            "page": pages + 1,
            "limit": LIMIT,
            "totalItems": N,
            "totalPages": pages,
        }
    # Filtered: counted by the filter, the deep pages read through the user index.
    ids, metas = _walk(api, "/api/public/traces", userId="u1")
    assert ids == _newest_first("t", lambda i: i % 3 == 1)
    assert metas[0]["totalItems"] == len(ids)
    # Ascending order and another sort field page the same way.
    body = api.get(
        "/api/public/traces", params={"limit": 50, "page": 5, "orderBy": "timestamp.asc"}
    ).json()
    assert [t["id"] for t in body["data"]] == list(reversed(_newest_first("t")))[200:250]


def test_deleting_traces_moves_the_unfiltered_totals(api):
    _seed(api)
    response = api.request(
        "DELETE", "/api/public/traces", json={"traceIds": ["t-000", "t-001", "nope"]}
    )
    assert response.status_code == 200
    body = api.get("/api/public/traces", params={"limit": 1}).json()
    assert body["meta"]["totalItems"] == N - 2
    body = api.get("/api/public/observations", params={"limit": 1}).json()
    assert body["meta"]["totalItems"] == N - 2
    # Updating stored traces and observations adds no rows.
    ingest(
        api,
        event("trace-create", {"id": "t-005", "name": "renamed"}),
        event("span-update", {"id": "o-005", "traceId": "t-005", "endTime": iso(seconds=9)}),
        event("span-create", {"id": "o-new", "traceId": "t-005", "startTime": iso(seconds=3)}),
    )
    assert api.get("/api/public/traces", params={"limit": 1}).json()["meta"]["totalItems"] == (
        N - 2
    )
    assert api.get("/api/public/observations", params={"limit": 1}).json()["meta"][
        "totalItems"
    ] == (N - 1)
