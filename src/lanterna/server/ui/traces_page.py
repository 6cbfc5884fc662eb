"""Traces: the filtered list and one trace (tree, waterfall, IO, usage, cost, scores),
and scores added by hand (annotations)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...accounts import store as accounts
from ...ingest.langfuse_events import Invalid
from ...ingest.score_request import score_event
from ...queries.traces import TraceItem, TraceParts, trace_detail, trace_list
from ...schema import LEVELS
from ...store.db import Conn
from ...store.dialect import Dialect
from ...store.filters import Condition, FilterError
from ...store.interface import Store, TraceQuery, TraceTotals
from ...timeutil import format_ts, now, parse_ts
from ..runtime import Runtime
from ..shapes import observation_json, score_json, trace_json
from .annotate_page import comments_of
from .io_view import io_view
from .media_view import media_items, referenced_ids
from .ranges import LIST_RANGES, time_range
from .web import (
    Page,
    UiError,
    not_found,
    page_form,
    project_page,
    redirect,
    render,
    rt_of,
    viewer_of,
)

router = APIRouter()

PAGE_SIZES = (25, 50, 100)
SORTS = {
    "timestamp": "Time",
    "name": "Name",
    "userId": "User",
    "sessionId": "Session",
    "release": "Release",
}
LEVEL_CHOICES = ("ERROR", "WARNING", "DEFAULT", "DEBUG")


@dataclass
class ListView:
    """The trace list's filters, read from (and written back to) the URL."""

    params: dict[str, Any]
    page: int = 1
    limit: int = 50
    sort: str = "timestamp"
    desc: bool = True
    meta: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def from_request(cls, request: Request) -> ListView:
        q = request.query_params
        keys = ("q", "user", "session", "name", "env", "release", "level", "model", "range")
        params: dict[str, Any] = {k: q.get(k, "").strip() for k in keys}
        params.update({"from": q.get("from", "").strip(), "to": q.get("to", "").strip()})
        params["tag"] = [t.strip() for raw in q.getlist("tag") for t in raw.split(",") if t.strip()]
        params["meta"] = [m.strip() for m in q.getlist("meta") if m.strip()]
        view = cls(params)
        view.page = max(1, _int(q.get("page"), 1))
        limit = _int(q.get("limit"), 50)
        view.limit = limit if limit in PAGE_SIZES else 50
        sort = q.get("sort", "timestamp")
        view.sort = sort if sort in SORTS else "timestamp"
        view.desc = q.get("dir", "desc") != "asc"
        params.update(sort=view.sort if view.sort != "timestamp" else "")
        params.update(dir="" if view.desc else "asc", limit=view.limit if view.limit != 50 else "")
        for item in params["meta"]:
            key, sep, value = item.partition("=")
            if sep and key.strip():
                view.meta.append((key.strip(), value.strip()))
        return view

    def query(self) -> TraceQuery:
        """The store query for these filters; raises FilterError for a bad value."""
        p = self.params
        start, end = time_range(p)
        filters = [Condition("stringObject", "metadata", "=", v, key=k) for k, v in self.meta]
        if p["level"] == "errors":
            filters.append(Condition("number", "errorCount", ">", 0))
        elif p["level"] in LEVEL_CHOICES:
            filters.append(Condition("string", "level", "=", p["level"]))
        return TraceQuery(
            user_id=p["user"] or None,
            session_id=p["session"] or None,
            name=p["name"] or None,
            release=p["release"] or None,
            environments=[p["env"]] if p["env"] else (),
            tags=p["tag"],
            from_timestamp=start,
            to_timestamp=end,
            filters=filters,
            order_field=self.sort,
            order_desc=self.desc,
            search=p["q"] or None,
            model=p["model"] or None,
        )

    @property
    def active(self) -> bool:
        """True when any filter narrows the list."""
        p = self.params
        return any(
            p[k]
            for k in (
                "q",
                "user",
                "session",
                "name",
                "env",
                "release",
                "level",
                "model",
                "tag",
                "meta",
            )
        ) or p["range"] not in ("", "all")


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def _preview(value: Any, size: int = 140) -> str:
    view = io_view(value)
    if view.kind == "none":
        return ""
    if view.kind == "chat":
        last = view.messages[-1]
        text = " ".join(last.texts) if last.texts else ""
    elif view.kind == "text":
        text = view.value
    else:
        from .fmt import pretty

        text = pretty(view.value) if view.kind == "tree" else str(view.value)
    text = " ".join(text.split())
    return text if len(text) <= size else text[:size] + "…"


#: What the trace list shows of each trace besides the trace itself.
LIST_PARTS = TraceParts(rollups=True, scores=True)


def list_row(d: Dialect, project_id: str, item: TraceItem) -> dict[str, Any]:
    """A trace of the list as its row shows it (the user page's recent traces too)."""
    trace = trace_json(d, item.row, project_id)
    rollup = item.rollup
    return {
        **trace,
        "latency": item.latency,
        "cost": item.cost,
        "tokens": rollup.tokens if rollup else 0,
        "level": rollup.level if rollup else "DEFAULT",
        "errors": rollup.errors if rollup else 0,
        "scores": item.scores,
        "inputPreview": _preview(trace["input"]),
        "outputPreview": _preview(trace["output"]),
    }


#: The trace list counts its matches up to here and then says "10,000+": an exact count
#: of a broad filter over millions of traces reads all of them. A text search, which
#: reads each trace's input and output, counts up to ``SEARCH_COUNT_LIMIT``. The totals
#: row sums the same number of matches at most (the first ones in the list's order).
COUNT_LIMIT = 10_000
SEARCH_COUNT_LIMIT = 1_000


def list_rows(
    store: Store,
    conn: Conn,
    project_id: str,
    query: TraceQuery,
    *,
    limit: int,
    offset: int,
    count_limit: int | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """A page of traces with everything the list shows per row, and the total (see
    :func:`~lanterna.store.traces.list_traces` for ``count_limit``)."""
    items, total = trace_list(
        store,
        conn,
        project_id,
        query,
        limit=limit,
        offset=offset,
        parts=LIST_PARTS,
        count_limit=count_limit,
    )
    return [list_row(conn.dialect, project_id, i) for i in items], total


def summarize(
    store: Store, conn: Conn, project_id: str, query: TraceQuery, count_limit: int
) -> TraceTotals:
    """The list's count and totals row in one walk: the totals of the first
    ``count_limit`` matches, whose ``traces`` is the count and ``more`` says "and
    more" (the walk reads one match past the limit)."""
    return store.traces.trace_totals(conn, project_id, query, limit=count_limit)


async def _summary(rt: Runtime, project_id: str, query: TraceQuery, limit: int) -> TraceTotals:
    """:func:`summarize`, with the score averages read on a second connection beside the
    totals where the database runs two reads side by side (``Dialect.reads_beside``:
    PostgreSQL; each part walks the same first ``limit`` matches). On PostgreSQL at 10 M
    observations, 10,000 traces of a tag: 212 -> 123 ms (the sums' walk and the scores'
    took about as long as each other)."""
    store = rt.store
    if store.events_backend != "sql" or not rt.db.dialect.reads_beside:
        # SQLite: both parts in this process, competing (69 ms in one, 92-136 in two);
        # ClickHouse: finds its matches once for both.
        return await rt.read(lambda c: summarize(store, c, project_id, query, limit))
    totals, scores = await asyncio.gather(
        rt.read(
            lambda c: store.traces.trace_totals(c, project_id, query, limit=limit, scores=False)
        ),
        rt.read(lambda c: store.traces.trace_score_averages(c, project_id, query, limit=limit)),
    )
    totals.scores = scores
    return totals


def _count_limit(view: ListView) -> int:
    return SEARCH_COUNT_LIMIT if view.params["q"] else COUNT_LIMIT


@router.get("/project/{project_id}/traces")
async def traces_list(request: Request, project_id: str) -> Response:
    """The project's traces: filters in the URL, search, sort, pages.

    The page reads only its rows (and whether one more follows). The count of the
    matches and their totals row, which read up to ``COUNT_LIMIT`` matches, come from
    :func:`traces_summary` after the page has loaded (``totals=1`` in the URL puts them
    in the page itself, for a browser without scripts)."""
    page = await project_page(request, project_id)
    view = ListView.from_request(request)
    error = ""
    rows: list[dict[str, Any]] = []
    total = 0
    offset = (view.page - 1) * view.limit
    inline = request.query_params.get("totals") == "1"
    summary: TraceTotals | None = None
    try:
        query = view.query()
        rt = rt_of(request)

        def read(c: Conn) -> tuple[list[dict[str, Any]], int, TraceTotals | None]:
            # Counting only to one past the page tells whether a next page exists.
            found, n = list_rows(
                rt.store, c, page.pid, query, limit=view.limit, offset=offset, count_limit=0
            )
            if not inline:
                return found, n, None
            return found, n, summarize(rt.store, c, page.pid, query, _count_limit(view))

        rows, total, summary = await rt.read(read)
    except FilterError as exc:
        error = str(exc)
    more = total > offset + view.limit
    return render(
        request,
        "traces.html",
        {
            "view": view,
            "p": view.params,
            "rows": rows,
            "summary": summary,
            "more": more,
            "pages": view.page + 1 if more else view.page,
            "error": error,
            "sorts": SORTS,
            "ranges": tuple(LIST_RANGES),
            "levels": LEVEL_CHOICES,
        },
        page=page,
        status=400 if error else 200,
    )


@router.get("/project/{project_id}/traces/summary")
async def traces_summary(request: Request, project_id: str) -> Response:
    """The count and totals row of the trace list with the same filters (an HTML
    fragment the list page loads after it has shown its rows)."""
    page = await project_page(request, project_id)
    view = ListView.from_request(request)
    try:
        query = view.query()
        summary = await _summary(rt_of(request), page.pid, query, _count_limit(view))
    except FilterError as exc:
        context = {"error": str(exc), "summary": None}
        return render(request, "_trace_summary.html", context, page=page, status=400)
    return render(request, "_trace_summary.html", {"error": "", "summary": summary}, page=page)


# --- one trace ----------------------------------------------------------------------


@dataclass
class Node:
    """An observation placed in the tree and on the timeline."""

    obs: dict[str, Any]
    depth: int
    offset_pct: float = 0.0
    width_pct: float = 0.0
    start_offset: float = 0.0


def build_tree(observations: list[dict[str, Any]]) -> list[Node]:
    """Observations in depth-first order (children by start time), with their depth.

    An observation whose parent is missing is a root, and a parent cycle cannot loop.
    """
    ids = {o["id"] for o in observations}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for o in observations:
        parent = o["parentObservationId"] if o["parentObservationId"] in ids else None
        children.setdefault(parent, []).append(o)
    for kids in children.values():
        kids.sort(key=lambda o: (o["startTime"] or "", o["id"]))
    out: list[Node] = []
    seen: set[str] = set()

    def walk(parent: str | None, depth: int) -> None:
        for o in children.get(parent, []):
            if o["id"] in seen:
                continue
            seen.add(o["id"])
            out.append(Node(o, depth))
            walk(o["id"], depth + 1)

    walk(None, 0)
    # Observations only reachable through a cycle still appear, at the top level.
    for o in observations:
        if o["id"] not in seen:
            seen.add(o["id"])
            out.append(Node(o, 0))
            walk(o["id"], 1)
    return out


def place_on_timeline(nodes: list[Node], trace_start: datetime) -> float:
    """Set each node's bar (percent of the span); return the span in seconds."""
    starts: list[tuple[Node, datetime, datetime]] = []
    t0 = trace_start
    t1 = trace_start
    for node in nodes:
        start = parse_ts(node.obs["startTime"], bounded=False)
        end = parse_ts(node.obs["endTime"], bounded=False) if node.obs["endTime"] else start
        end = max(end, start)
        starts.append((node, start, end))
        t0, t1 = min(t0, start), max(t1, end)
    span = (t1 - t0).total_seconds()
    for node, start, end in starts:
        node.start_offset = (start - t0).total_seconds()
        if span > 0:
            node.offset_pct = 100 * node.start_offset / span
            node.width_pct = max(100 * (end - start).total_seconds() / span, 0.3)
        else:
            node.offset_pct, node.width_pct = 0.0, 100.0
        node.offset_pct = min(node.offset_pct, 99.7)
        node.width_pct = min(node.width_pct, 100 - node.offset_pct)
    return span


def worst_level(levels: list[str]) -> str:
    """The most severe of ``levels`` (DEFAULT for none)."""
    ranks = [LEVELS.index(x) for x in levels if x in LEVELS]
    return LEVELS[max(ranks)] if ranks else "DEFAULT"


def trace_view(store: Store, conn: Conn, project_id: str, trace_id: str) -> dict[str, Any] | None:
    """The trace with its observations (API shapes), scores, latency, cost and tokens."""
    found = trace_detail(store, conn, project_id, trace_id)
    if found is None:
        return None
    d = conn.dialect
    observations = [observation_json(d, o) for o in found.observations]
    return {
        "trace": trace_json(d, found.row, project_id),
        "observations": observations,
        "scores": [score_json(d, s) for s in found.scores],
        "latency": found.latency,
        "cost": found.cost,
        "tokens": sum(o["usage"]["total"] or 0 for o in observations),
    }


@router.get("/trace/{trace_id:path}")
async def trace_link(request: Request, trace_id: str) -> Response:
    """``/trace/<id>``, the link the langfuse 2.x SDK prints (``get_trace_url()``): the
    trace's page in whichever of the viewer's projects holds it (login first if needed)."""
    viewer = await viewer_of(request)
    assert viewer is not None
    rt = rt_of(request)

    def find(c: Conn) -> str | None:
        for project in accounts.projects_of(c, viewer.user):
            if rt.store.traces.get_trace(c, project["id"], trace_id) is not None:
                return str(project["id"])
        return None

    project_id = await rt.read(find)
    if project_id is None:
        raise UiError(
            404,
            "Trace not found in your projects. A trace the SDK just sent may take a moment"
            " to arrive: reload the page.",
        )
    return redirect(f"/project/{quote(project_id, safe='')}/traces/{quote(trace_id, safe='')}")


@router.get("/project/{project_id}/traces/{trace_id:path}")
async def trace_page(request: Request, project_id: str, trace_id: str) -> Response:
    """One trace: tree, timeline, the selected observation's IO, usage, cost, scores."""
    page = await project_page(request, project_id)
    rt = rt_of(request)
    selected_id = request.query_params.get("observation", "")

    def read(c: Conn) -> dict[str, Any] | None:
        found = trace_view(rt.store, c, page.pid, trace_id)
        if found is not None:
            # Comments on what is shown (the trace, or the selected observation).
            kind, oid = ("OBSERVATION", selected_id) if selected_id else ("TRACE", trace_id)
            found["comments"] = comments_of(rt.store, c, page.pid, kind, oid)
            queues, _total = rt.store.annotations.page_queues(c, page.pid, 100, 0)
            found["queues"] = [{"id": q["id"], "name": q["name"]} for q in queues]
        return found

    found = await rt.read(read)
    if found is None:
        raise not_found("Trace")
    return await _with_media(request, page, found, error="")


async def _with_media(
    request: Request, page: Page, found: dict[str, Any], *, error: str, status: int = 200
) -> Response:
    """The trace page, with the media the shown input, output and metadata refer to."""
    rt = rt_of(request)
    subject = _subject(request, found)
    values = (subject.get("input"), subject.get("output"), subject.get("metadata"))
    base = rt.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
    if referenced_ids(*values):
        found["media"] = await rt.read(
            lambda c: media_items(rt.store, c, rt.blobs, rt.media_urls, base, page.pid, *values)
        )
    return _trace_response(request, page, found, error=error, status=status)


def _subject(request: Request, found: dict[str, Any]) -> dict[str, Any]:
    selected_id = request.query_params.get("observation", "")
    selected = next((o for o in found["observations"] if o["id"] == selected_id), None)
    return selected or found["trace"]


def _trace_response(
    request: Request, page: Page, found: dict[str, Any], *, error: str, status: int = 200
) -> Response:
    trace = found["trace"]
    nodes = build_tree(found["observations"])
    span = place_on_timeline(nodes, parse_ts(trace["timestamp"], bounded=False))
    selected_id = request.query_params.get("observation", "")
    selected = next((n.obs for n in nodes if n.obs["id"] == selected_id), None)
    subject = selected or trace
    scores = found["scores"]
    if selected is not None:
        shown_scores = [s for s in scores if s["observationId"] == selected["id"]]
    else:
        shown_scores = scores
    return render(
        request,
        "trace.html",
        {
            "trace": trace,
            "found": found,
            "nodes": nodes,
            "span": span,
            "selected": selected,
            "subject": subject,
            "input_view": io_view(subject.get("input")),
            "output_view": io_view(subject.get("output")),
            "metadata": subject.get("metadata"),
            "media": found.get("media", []),
            "scores": shown_scores,
            "all_scores": scores,
            "error": error,
            "trace_level": worst_level([n.obs["level"] for n in nodes]),
            "comments": found.get("comments", []),
            "queues": found.get("queues", []),
            "here": str(request.url.path)
            + (f"?{urlencode({'observation': selected['id']})}" if selected else ""),
        },
        page=page,
        status=status,
    )


@router.post("/project/{project_id}/scores")
async def add_score(request: Request, project_id: str) -> Response:
    """Add a score by hand to a trace or one of its observations (source ANNOTATION)."""
    page, form = await page_form(request, project_id, "annotate")
    rt = rt_of(request)
    trace_id = form.get("trace_id")
    observation_id = form.get("observation_id") or None
    found = await rt.read(lambda c: trace_view(rt.store, c, page.pid, trace_id))
    if found is None:
        raise not_found("Trace")
    if observation_id and observation_id not in {o["id"] for o in found["observations"]}:
        raise not_found("Observation")
    data_type = form.get("data_type", "NUMERIC")
    raw_value = form.get("value")
    value: Any = raw_value
    if data_type in ("NUMERIC", "BOOLEAN"):
        try:
            value = float(raw_value)
        except ValueError:
            value = None
    body = {
        "traceId": trace_id,
        "observationId": observation_id,
        "name": form.get("name"),
        "value": value,
        "dataType": data_type,
        "comment": form.get("comment") or None,
        "source": "ANNOTATION",
    }
    try:
        event = score_event(body, format_ts(now()))
    except Invalid as exc:
        return await _with_media(request, page, found, error=str(exc), status=400)
    event.fields["author_user_id"] = page.viewer.user["id"]
    await rt.write(lambda c: rt.store.ingest.apply_events(c, page.pid, [event]))
    target = f"/project/{page.pid}/traces/{quote(trace_id, safe='')}"
    if observation_id:
        target += "?" + urlencode({"observation": observation_id})
    return redirect(target + "#scores")
