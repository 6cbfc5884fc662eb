"""Comments from the dashboard (on traces, observations, sessions, prompts) and the
annotation queue workflow: the queues, and one queue's next pending item with its
trace and a form with one field per score config; "Complete and next" writes the
scores (``source: ANNOTATION``) and marks the item COMPLETED."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...accounts import store as accounts
from ...ingest.langfuse_events import Invalid
from ...ingest.score_request import score_event
from ...queries.traces import trace_detail
from ...store.db import Conn
from ...store.interface import Store
from ...timeutil import format_ts, now
from ..audit import audit
from ..eval_shapes import comment_json, queue_item_json, queue_json
from ..shapes import config_json, observation_json, trace_json
from .io_view import io_view
from .web import Page, UiError, not_found, page_form, project_page, redirect, render, rt_of

router = APIRouter()

COMMENT_TYPES = ("TRACE", "OBSERVATION", "SESSION", "PROMPT")


def comments_of(
    store: Store, conn: Conn, project_id: str, object_type: str, object_id: str
) -> list[dict[str, Any]]:
    """The comments on one object, oldest first, each with its author's email (or
    None for one made through the API). An API key may name any ``authorUserId``: it
    shows as an email only when that user may see the project (else as written), so a
    comment can neither pass for a stranger's nor show a stranger's email."""
    rows = store.comments.of_object(conn, project_id, object_type, object_id)
    emails: dict[str, str | None] = {}
    out = []
    for row in rows:
        author = row["author_user_id"]
        if author and author not in emails:
            user = accounts.get_user(conn, author)
            if user is not None and accounts.role_in(conn, user, project_id) is not None:
                emails[author] = user["email"]
            else:
                emails[author] = author
        out.append({**comment_json(conn.dialect, row), "author": emails.get(author or "")})
    return out


@router.post("/project/{project_id}/comments")
async def add_comment(request: Request, project_id: str) -> Response:
    """Comment on an object of the project; back to the page it was made on."""
    page, form = await page_form(request, project_id, "annotate")
    object_type, object_id = form.get("object_type"), form.get("object_id")
    content = form.raw("content").strip()
    if object_type not in COMMENT_TYPES or not object_id:
        raise UiError(400, "A comment needs the object it is on.")
    if not content or len(content) > 5000:
        raise UiError(400, "A comment holds 1 to 5,000 characters.")
    back = form.get("back")
    if not back.startswith(f"/project/{page.pid}/") or "//" in back or "\\" in back:
        back = f"/project/{page.pid}/traces"
    rt = rt_of(request)
    author = page.viewer.user["id"]
    row = await rt.write(
        lambda c: rt.store.comments.create(c, page.pid, object_type, object_id, content, author)
    )
    detail = {"objectType": object_type, "objectId": object_id}
    await audit(rt, page, "comment.create", row["id"], detail)
    return redirect(back.split("#", 1)[0] + "#comments")


# --- annotation queues -------------------------------------------------------------------


def _queues_url(pid: str) -> str:
    return f"/project/{pid}/annotation-queues"


async def _queues_response(
    request: Request, page: Page, *, error: str = "", status: int = 200
) -> Response:
    rt = rt_of(request)

    def read(c: Conn) -> dict[str, Any]:
        rows, _total = rt.store.annotations.page_queues(c, page.pid, 100, 0)
        configs, _n = rt.store.score_configs.page(c, page.pid, 100, 0)
        return {
            "queues": [queue_json(c.dialect, r) for r in rows],
            "counts": rt.store.annotations.queue_counts(c, page.pid),
            "configs": [config_json(c.dialect, r) for r in configs if not r["is_archived"]],
        }

    context = {**await rt.read(read), "error": error}
    return render(request, "annotation_queues.html", context, page=page, status=status)


@router.get("/project/{project_id}/annotation-queues")
async def queues_page(request: Request, project_id: str) -> Response:
    """The project's annotation queues with their progress."""
    return await _queues_response(request, await project_page(request, project_id))


@router.post("/project/{project_id}/annotation-queues")
async def create_queue(request: Request, project_id: str) -> Response:
    """Create a queue with the chosen score configs."""
    page, form = await page_form(request, project_id, "annotate")
    name = form.get("name").strip()
    config_ids = form.getlist("config_ids")
    rt = rt_of(request)
    if not name:
        return await _queues_response(request, page, error="A queue needs a name.", status=400)

    def work(c: Conn) -> dict[str, Any] | None:
        found = rt.store.score_configs.get_many(c, page.pid, config_ids)
        if len(found) != len(set(config_ids)):
            return None
        description = form.get("description") or None
        return rt.store.annotations.create_queue(c, page.pid, name, description, config_ids)

    row = await rt.write(work)
    if row is None:
        return await _queues_response(request, page, error="Unknown score config.", status=400)
    await audit(rt, page, "annotation_queue.create", row["id"], {"name": name})
    return redirect(f"{_queues_url(page.pid)}/{quote(row['id'], safe='')}")


@router.post("/project/{project_id}/annotation-queue-items")
async def add_to_queue(request: Request, project_id: str) -> Response:
    """Add a trace, observation or session to a queue (from the trace page)."""
    page, form = await page_form(request, project_id, "annotate")
    queue_id, object_id = form.get("queue_id"), form.get("object_id")
    object_type = form.get("object_type")
    if object_type not in ("TRACE", "OBSERVATION", "SESSION") or not object_id:
        raise UiError(400, "Choose what to add to the queue.")
    rt = rt_of(request)

    def work(c: Conn) -> dict[str, Any] | None:
        if rt.store.annotations.get_queue(c, page.pid, queue_id) is None:
            return None
        return rt.store.annotations.create_item(
            c, page.pid, queue_id, object_id, object_type, "PENDING"
        )

    item = await rt.write(work)
    if item is None:
        raise not_found("Annotation queue")
    detail = {"queueId": queue_id, "objectType": object_type, "objectId": object_id}
    await audit(rt, page, "annotation_queue_item.create", item["id"], detail)
    return redirect(f"{_queues_url(page.pid)}/{quote(queue_id, safe='')}")


def _next_item(store: Store, c: Conn, pid: str, queue_id: str, after: str) -> Any:
    """The first pending item (after the item ``after``, when skipping), or None."""
    rows, _total = store.annotations.page_items(c, pid, queue_id, "PENDING", 500, 0)
    if after:
        ids = [r["id"] for r in rows]
        if after in ids and ids.index(after) + 1 < len(ids):
            return rows[ids.index(after) + 1]
    return rows[0] if rows else None


def _subject(store: Store, c: Conn, pid: str, item: dict[str, Any]) -> dict[str, Any]:
    """What the reviewer sees of an item: its trace (and observation), or the session's
    traces; ``trace_id`` the scores attach to (None for a session)."""
    kind, oid = item["object_type"], item["object_id"]
    if kind == "SESSION":
        traces = store.sessions.traces_of_session(c, pid, oid)
        return {"kind": kind, "id": oid, "trace_id": None, "missing": not traces,
                "traces": [trace_json(c.dialect, t, pid) for t in traces[:50]]}  # fmt: skip
    trace_id, observation = oid, None
    if kind == "OBSERVATION":
        row = store.observations.get_observation(c, pid, oid)
        if row is None:
            return {"kind": kind, "id": oid, "trace_id": None, "missing": True}
        observation = observation_json(c.dialect, row)
        trace_id = observation["traceId"]
    found = trace_detail(store, c, pid, trace_id, observations=False, scores=False, metrics=False)
    if found is None:
        return {"kind": kind, "id": oid, "trace_id": None, "missing": True}
    subject = observation or trace_json(c.dialect, found.row, pid)
    return {
        "kind": kind,
        "id": oid,
        "trace_id": trace_id,
        "missing": False,
        "name": subject.get("name"),
        "input_view": io_view(subject.get("input")),
        "output_view": io_view(subject.get("output")),
    }


@router.get("/project/{project_id}/annotation-queues/{queue_id}")
async def queue_page(request: Request, project_id: str, queue_id: str) -> Response:
    """One queue: progress, the next pending item (``?after=`` skips past one) with its
    trace, and the score form."""
    page = await project_page(request, project_id)
    rt = rt_of(request)
    after = request.query_params.get("after", "")

    def read(c: Conn) -> dict[str, Any] | None:
        queue = rt.store.annotations.get_queue(c, page.pid, queue_id)
        if queue is None:
            return None
        item = _next_item(rt.store, c, page.pid, queue_id, after)
        configs = rt.store.score_configs.get_many(c, page.pid, queue["score_config_ids"])
        counts = rt.store.annotations.queue_counts(c, page.pid).get(queue_id, {})
        return {
            "queue": queue_json(c.dialect, queue),
            "item": None if item is None else queue_item_json(c.dialect, item),
            "subject": None if item is None else _subject(rt.store, c, page.pid, item),
            "configs": [
                config_json(c.dialect, configs[i])
                for i in queue["score_config_ids"]
                if i in configs
            ],
            "pending": counts.get("PENDING", 0),
            "completed": counts.get("COMPLETED", 0),
            "assignees": rt.store.annotations.assignees(c, page.pid, queue_id),
        }

    found = await rt.read(read)
    if found is None:
        raise not_found("Annotation queue")
    return render(request, "annotation_queue.html", {**found, "error": ""}, page=page)


def _score_body(config: dict[str, Any], raw: str, subject: dict[str, Any]) -> dict[str, Any]:
    """The score a form field gives (``raw`` not empty)."""
    value: Any = raw
    if config["dataType"] in ("NUMERIC", "BOOLEAN"):
        try:
            value = float(raw)
        except ValueError:
            value = None
    body: dict[str, Any] = {"name": config["name"], "value": value, "configId": config["id"],
                            "dataType": config["dataType"], "source": "ANNOTATION"}  # fmt: skip
    if subject["kind"] == "SESSION":
        body["sessionId"] = subject["id"]
    else:
        body["traceId"] = subject["trace_id"]
        if subject["kind"] == "OBSERVATION":
            body["observationId"] = subject["id"]
    return body


@router.post("/project/{project_id}/annotation-queues/{queue_id}/items/{item_id}/complete")
async def complete_item(request: Request, project_id: str, queue_id: str, item_id: str) -> Response:
    """Write the filled-in scores and mark the item COMPLETED; on to the next item."""
    page, form = await page_form(request, project_id, "annotate")
    rt = rt_of(request)
    store = rt.store

    def read(c: Conn) -> tuple[Any, Any, dict[str, Any]] | None:
        queue = store.annotations.get_queue(c, page.pid, queue_id)
        item = store.annotations.get_item(c, page.pid, queue_id, item_id)
        if queue is None or item is None:
            return None
        configs = store.score_configs.get_many(c, page.pid, queue["score_config_ids"])
        shaped = {i: config_json(c.dialect, r) for i, r in configs.items()}
        return queue, _subject(store, c, page.pid, item), shaped

    found = await rt.read(read)
    if found is None:
        raise not_found("Annotation queue item")
    _queue, subject, configs = found
    if subject["missing"]:
        raise UiError(400, "The item's trace, observation or session no longer exists.")
    events = []
    stamp = format_ts(now())
    comment = form.get("comment") or None
    for config_id, config in configs.items():
        raw = form.get(f"score_{config_id}")
        if raw == "":
            continue
        body = {**_score_body(config, raw, subject), "comment": comment}
        try:
            event = score_event(body, stamp)
        except Invalid as exc:
            raise UiError(400, f"{config['name']}: {exc}") from None
        event.fields["author_user_id"] = page.viewer.user["id"]
        events.append(event)

    def work(c: Conn) -> None:
        if events:
            store.ingest.apply_events(c, page.pid, events)
        store.annotations.set_item_status(c, page.pid, queue_id, item_id, "COMPLETED")

    await rt.write(work)
    detail = {"queueId": queue_id, "status": "COMPLETED", "scores": len(events)}
    await audit(rt, page, "annotation_queue_item.update", item_id, detail)
    return redirect(f"{_queues_url(page.pid)}/{quote(queue_id, safe='')}")
