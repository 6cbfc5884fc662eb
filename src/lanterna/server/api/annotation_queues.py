"""Annotation queues (contract 4.7): queues with the score configs reviewers score
with, their items (a trace, observation or session; PENDING until COMPLETED) and the
users assigned to them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import Field

from ...store.db import Conn
from ..audit import audit
from ..auth import ProjectKey
from ..doc_models import DocModel
from ..errors import ApiError, not_found
from ..eval_shapes import queue_item_json, queue_json
from ..responses import JSON
from ..runtime import Runtime, runtime
from .body import NOT_BLANK, json_body, ok, read_json_object
from .params import LimitParam, Meta, Page, PageParam, one_of, page_of
from .reading import page_json

router = APIRouter()

PATH = "/api/public/annotation-queues"
OBJECT_TYPES = ("TRACE", "OBSERVATION", "SESSION")
STATUSES = ("PENDING", "COMPLETED")
ObjectType = Literal["TRACE", "OBSERVATION", "SESSION"]
Status = Literal["PENDING", "COMPLETED"]


# --- the OpenAPI document's schemas (the routes check the bodies themselves) ----------


class QueueBody(DocModel):
    """``POST /api/public/annotation-queues``: every id in ``scoreConfigIds`` must be a
    score config of the project (a 400 naming the missing ones otherwise)."""

    name: str = Field(pattern=NOT_BLANK)
    description: str | None = None
    scoreConfigIds: list[str]


class QueueItemBody(DocModel):
    """``POST .../items``: the trace, observation or session to review (not checked to
    exist); ``status`` defaults to PENDING."""

    objectId: str = Field(min_length=1)
    objectType: ObjectType
    status: Status | None = None


class QueueItemChange(DocModel):
    """``PATCH .../items/{item_id}``: the new status (absent or null: no change)."""

    status: Status | None = None


class QueueAssignmentBody(DocModel):
    """``POST`` / ``DELETE .../assignments``: the user to assign or unassign."""

    userId: str = Field(min_length=1)


class AnnotationQueue(DocModel):
    """A queue, as Langfuse's ``AnnotationQueue``."""

    id: str
    name: str
    description: str | None
    scoreConfigIds: list[str]
    createdAt: str
    updatedAt: str


class AnnotationQueues(DocModel):
    """A page of the project's queues, newest first."""

    data: list[AnnotationQueue]
    meta: Meta


class AnnotationQueueItem(DocModel):
    """An item of a queue, as Langfuse's ``AnnotationQueueItem``: ``completedAt`` is set
    while it is COMPLETED."""

    id: str
    queueId: str
    objectId: str
    objectType: ObjectType
    status: Status
    completedAt: str | None
    createdAt: str
    updatedAt: str


class AnnotationQueueItems(DocModel):
    """A page of a queue's items, in the order they were added."""

    data: list[AnnotationQueueItem]
    meta: Meta


class QueueItemDeleted(DocModel):
    """The answer of an item's removal."""

    success: bool
    message: str


class QueueAssignment(DocModel):
    """The answer of an assignment."""

    userId: str
    queueId: str
    projectId: str


class QueueUnassigned(DocModel):
    """The answer of an unassignment: ``false`` when the user was not assigned."""

    success: bool


def _bad(detail: str) -> ApiError:
    return ApiError(400, "Invalid request data", detail)


def _status(value: Any, where: str) -> str:
    if value not in STATUSES:
        raise _bad(f"{where}: must be PENDING or COMPLETED")
    return str(value)


async def _queue_or_404(rt: Runtime, project_id: str, queue_id: str) -> dict[str, Any]:
    queue = await rt.read(lambda c: rt.store.annotations.get_queue(c, project_id, queue_id))
    if queue is None:
        raise not_found(f"Annotation queue {queue_id}")
    return queue


# Stays in LOOSE (tests/test_openapi_fuzz.py): the score config ids must exist in the
# project, which no schema can say (a 400 naming the missing ones).
@router.post(PATH, responses=ok(AnnotationQueue), openapi_extra=json_body(QueueBody))
async def create_queue(request: Request, principal: ProjectKey) -> JSON:
    """Create a queue; every score config it names must exist in the project."""
    body = await read_json_object(request)
    name, description = body.get("name"), body.get("description")
    if not isinstance(name, str) or not name.strip():
        raise _bad("name: required, a non-empty string")
    if description is not None and not isinstance(description, str):
        raise _bad("description: expected a string")
    config_ids = body.get("scoreConfigIds")
    if not isinstance(config_ids, list) or not all(isinstance(i, str) for i in config_ids):
        raise _bad("scoreConfigIds: required, a list of score config ids")
    project_id = principal.project_id
    rt = runtime(request)

    def work(conn: Conn) -> dict[str, Any]:
        found = rt.store.score_configs.get_many(conn, project_id, config_ids)
        missing = [i for i in config_ids if i not in found]
        if missing:
            raise _bad(f"scoreConfigIds: no score config {', '.join(missing)} in the project")
        row = rt.store.annotations.create_queue(
            conn, project_id, name.strip(), description, list(dict.fromkeys(config_ids))
        )
        return queue_json(conn.dialect, row)

    shown = await rt.write(work)
    await audit(rt, principal, "annotation_queue.create", shown["id"], {"name": shown["name"]})
    return JSON(shown)


@router.get(PATH, responses=ok(AnnotationQueues))
async def list_queues(
    request: Request, principal: ProjectKey, page: PageParam = None, limit: LimitParam = None
) -> JSON:
    """The project's queues, newest first."""
    paging = page_of(page, limit)
    project_id = principal.project_id
    rt = runtime(request)

    def read(conn: Conn, p: Page) -> tuple[list[dict[str, Any]], int]:
        rows, total = rt.store.annotations.page_queues(conn, project_id, p.limit, p.offset)
        return [queue_json(conn.dialect, r) for r in rows], total

    return await page_json(rt, paging, read)


@router.get(PATH + "/{queue_id}", responses=ok(AnnotationQueue))
async def get_queue(request: Request, queue_id: str, principal: ProjectKey) -> JSON:
    """One queue (404 when missing)."""
    rt = runtime(request)
    queue = await _queue_or_404(rt, principal.project_id, queue_id)
    return JSON(queue_json(rt.db.dialect, queue))


@router.get(PATH + "/{queue_id}/items", responses=ok(AnnotationQueueItems))
async def list_items(
    request: Request,
    queue_id: str,
    principal: ProjectKey,
    status: Annotated[str | None, one_of(STATUSES)] = None,
    page: PageParam = None,
    limit: LimitParam = None,
) -> JSON:
    """A queue's items in the order they were added, optionally of one status."""
    paging = page_of(page, limit)
    if status is not None:
        _status(status, "status")
    project_id = principal.project_id
    rt = runtime(request)
    await _queue_or_404(rt, project_id, queue_id)

    def read(conn: Conn, p: Page) -> tuple[list[dict[str, Any]], int]:
        rows, total = rt.store.annotations.page_items(
            conn, project_id, queue_id, status, p.limit, p.offset
        )
        return [queue_item_json(conn.dialect, r) for r in rows], total

    return await page_json(rt, paging, read)


@router.post(
    PATH + "/{queue_id}/items",
    responses=ok(AnnotationQueueItem),
    openapi_extra=json_body(QueueItemBody),
)
async def create_item(request: Request, queue_id: str, principal: ProjectKey) -> JSON:
    """Add a trace, observation or session to a queue (PENDING unless told)."""
    body = await read_json_object(request)
    object_id, object_type = body.get("objectId"), body.get("objectType")
    if not isinstance(object_id, str) or not object_id:
        raise _bad("objectId: required, a non-empty string")
    if object_type not in OBJECT_TYPES:
        raise _bad(f"objectType: must be one of {', '.join(OBJECT_TYPES)}")
    status = "PENDING" if body.get("status") is None else _status(body["status"], "status")
    project_id = principal.project_id
    rt = runtime(request)

    def work(conn: Conn) -> dict[str, Any] | None:
        if rt.store.annotations.get_queue(conn, project_id, queue_id) is None:
            return None
        row = rt.store.annotations.create_item(
            conn, project_id, queue_id, object_id, object_type, status
        )
        return queue_item_json(conn.dialect, row)

    item = await rt.write(work)
    if item is None:
        raise not_found(f"Annotation queue {queue_id}")
    detail = {"queueId": queue_id, "objectType": object_type, "objectId": object_id}
    await audit(rt, principal, "annotation_queue_item.create", item["id"], detail)
    return JSON(item)


@router.get(PATH + "/{queue_id}/items/{item_id}", responses=ok(AnnotationQueueItem))
async def get_item(request: Request, queue_id: str, item_id: str, principal: ProjectKey) -> JSON:
    """One item of a queue (404 when missing)."""
    project_id = principal.project_id
    rt = runtime(request)
    row = await rt.read(lambda c: rt.store.annotations.get_item(c, project_id, queue_id, item_id))
    if row is None:
        raise not_found(f"Annotation queue item {item_id}")
    return JSON(queue_item_json(rt.db.dialect, row))


@router.patch(
    PATH + "/{queue_id}/items/{item_id}",
    responses=ok(AnnotationQueueItem),
    openapi_extra=json_body(QueueItemChange),
)
async def update_item(request: Request, queue_id: str, item_id: str, principal: ProjectKey) -> JSON:
    """Set an item's status (COMPLETED stamps ``completedAt``)."""
    body = await read_json_object(request)
    project_id = principal.project_id
    rt = runtime(request)
    if body.get("status") is None:
        row = await rt.read(
            lambda c: rt.store.annotations.get_item(c, project_id, queue_id, item_id)
        )
    else:
        status = _status(body["status"], "status")
        row = await rt.write(
            lambda c: rt.store.annotations.set_item_status(c, project_id, queue_id, item_id, status)
        )
    if row is None:
        raise not_found(f"Annotation queue item {item_id}")
    if body.get("status") is not None:
        detail = {"queueId": queue_id, "status": row["status"]}
        await audit(rt, principal, "annotation_queue_item.update", item_id, detail)
    return JSON(queue_item_json(rt.db.dialect, row))


@router.delete(PATH + "/{queue_id}/items/{item_id}", responses=ok(QueueItemDeleted))
async def delete_item(request: Request, queue_id: str, item_id: str, principal: ProjectKey) -> JSON:
    """Remove an item from its queue."""
    project_id = principal.project_id
    rt = runtime(request)
    removed = await rt.write(
        lambda c: rt.store.annotations.delete_item(c, project_id, queue_id, item_id)
    )
    if not removed:
        raise not_found(f"Annotation queue item {item_id}")
    await audit(rt, principal, "annotation_queue_item.delete", item_id, {"queueId": queue_id})
    return JSON({"success": True, "message": "Item successfully deleted"})


async def _assignment(request: Request, queue_id: str, principal: ProjectKey) -> tuple[str, str]:
    body = await read_json_object(request)
    user_id = body.get("userId")
    if not isinstance(user_id, str) or not user_id:
        raise _bad("userId: required, a non-empty string")
    await _queue_or_404(runtime(request), principal.project_id, queue_id)
    return principal.project_id, user_id


@router.post(
    PATH + "/{queue_id}/assignments",
    responses=ok(QueueAssignment),
    openapi_extra=json_body(QueueAssignmentBody),
)
async def assign(request: Request, queue_id: str, principal: ProjectKey) -> JSON:
    """Assign a user to a queue (again: no change)."""
    project_id, user_id = await _assignment(request, queue_id, principal)
    rt = runtime(request)
    await rt.write(lambda c: rt.store.annotations.assign(c, project_id, queue_id, user_id))
    await audit(rt, principal, "annotation_queue.assign", queue_id, {"userId": user_id})
    return JSON({"userId": user_id, "queueId": queue_id, "projectId": project_id})


@router.delete(
    PATH + "/{queue_id}/assignments",
    responses=ok(QueueUnassigned),
    openapi_extra=json_body(QueueAssignmentBody),
)
async def unassign(request: Request, queue_id: str, principal: ProjectKey) -> JSON:
    """Remove a user from a queue (``success: false`` when they were not assigned)."""
    project_id, user_id = await _assignment(request, queue_id, principal)
    rt = runtime(request)
    removed = await rt.write(
        lambda c: rt.store.annotations.unassign(c, project_id, queue_id, user_id)
    )
    if removed:
        await audit(rt, principal, "annotation_queue.unassign", queue_id, {"userId": user_id})
    return JSON({"success": bool(removed)})
