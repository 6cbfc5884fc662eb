"""Comments (contract 4.7): on a trace, observation, session or prompt; create, list
(newest first, narrowed by object and author), get one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field

from ...store.db import Conn
from ...store.interface import Store
from ..audit import audit
from ..auth import ProjectKey
from ..doc_models import DocModel, answer
from ..errors import ApiError, not_found
from ..eval_shapes import comment_json
from ..responses import JSON
from ..runtime import runtime
from .body import NOT_BLANK, json_body, ok, read_json_object
from .params import LimitParam, Meta, Page, PageParam, one_of, page_of
from .reading import one_json, page_json

router = APIRouter()

PATH = "/api/public/comments"
ObjectType = Literal["TRACE", "OBSERVATION", "SESSION", "PROMPT"]
OBJECT_TYPES: tuple[str, ...] = get_args(ObjectType)
MAX_CONTENT = 5000


class CommentBody(DocModel):
    """``POST /api/public/comments``: what the route checks, as a schema."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"objectType": "TRACE", "objectId": "trace-1", "content": "Wrong tool chosen"}
            ]
        }
    )

    objectType: str = Field(json_schema_extra={"enum": list(OBJECT_TYPES)})
    objectId: str = Field(min_length=1)
    content: str = Field(max_length=MAX_CONTENT, pattern=NOT_BLANK)
    authorUserId: str | None = None
    projectId: str | None = Field(None, description="The API key's project, if given")


class CommentId(DocModel):
    """The new comment's id."""

    id: str


class Comment(DocModel):
    """A comment (Langfuse's ``Comment``)."""

    id: str
    projectId: str
    createdAt: datetime
    updatedAt: datetime
    objectType: ObjectType
    objectId: str
    content: str
    authorUserId: str | None


class CommentList(DocModel):
    """A page of comments, newest first."""

    data: list[Comment]
    meta: Meta


def _bad(detail: str) -> ApiError:
    return ApiError(400, "Invalid request data", detail)


def _exists(store: Store, conn: Conn, project_id: str, object_type: str, object_id: str) -> bool:
    """Whether the commented object exists (prompts are not checked: their ids are
    per version and SDKs pass them through)."""
    if object_type == "TRACE":
        return store.traces.get_trace(conn, project_id, object_id) is not None
    if object_type == "OBSERVATION":
        return store.observations.get_observation(conn, project_id, object_id) is not None
    if object_type == "SESSION":
        return store.sessions.get_session(conn, project_id, object_id) is not None
    return True


@router.post(
    PATH,
    responses={200: answer(CommentId, "Created")},
    openapi_extra=json_body(CommentBody),
)
async def create_comment(request: Request, principal: ProjectKey) -> JSON:
    """Comment on an object (``200 {id}``); 404 when the trace, observation or session
    does not exist."""
    body = await read_json_object(request)
    project_id = principal.project_id
    given = body.get("projectId")
    if given is not None and given != project_id:
        raise ApiError(403, "projectId is not the project of this API key")
    object_type, object_id = body.get("objectType"), body.get("objectId")
    if object_type not in OBJECT_TYPES:
        raise _bad(f"objectType: must be one of {', '.join(OBJECT_TYPES)}")
    if not isinstance(object_id, str) or not object_id:
        raise _bad("objectId: required, a non-empty string")
    content = body.get("content")
    if not isinstance(content, str) or not content.strip():
        raise _bad("content: required, a non-empty string")
    if len(content) > MAX_CONTENT:
        raise _bad(f"content: at most {MAX_CONTENT} characters")
    author = body.get("authorUserId")
    if author is not None and not isinstance(author, str):
        raise _bad("authorUserId: expected a string")
    rt = runtime(request)

    def work(conn: Conn) -> dict[str, Any] | None:
        if not _exists(rt.store, conn, project_id, object_type, object_id):
            return None
        return rt.store.comments.create(conn, project_id, object_type, object_id, content, author)

    row = await rt.write(work)
    if row is None:
        raise not_found(f"{object_type.capitalize()} {object_id}")
    detail = {"objectType": object_type, "objectId": object_id}
    await audit(rt, principal, "comment.create", row["id"], detail)
    return JSON({"id": row["id"]})


# Stays in the fuzz test's LOOSE set: ``objectId`` without ``objectType`` is a 400 (a
# rule between parameters, as in Langfuse).
@router.get(PATH, responses=ok(CommentList))
async def list_comments(
    request: Request,
    principal: ProjectKey,
    page: PageParam = None,
    limit: LimitParam = None,
    objectType: Annotated[str | None, one_of(OBJECT_TYPES)] = None,
    objectId: str | None = None,
    authorUserId: str | None = None,
) -> JSON:
    """The project's comments, newest first, in the v1 page envelope."""
    paging = page_of(page, limit)
    if objectType is not None and objectType not in OBJECT_TYPES:
        raise _bad(f"objectType: must be one of {', '.join(OBJECT_TYPES)}")
    if objectId is not None and objectType is None:
        raise _bad("objectId: requires objectType")
    project_id = principal.project_id
    rt = runtime(request)

    def read(conn: Conn, p: Page) -> tuple[list[dict[str, Any]], int]:
        rows, total = rt.store.comments.page(
            conn, project_id, object_type=objectType, object_id=objectId,
            author_user_id=authorUserId, limit=p.limit, offset=p.offset,
        )  # fmt: skip
        return [comment_json(conn.dialect, r) for r in rows], total

    return await page_json(rt, paging, read)


@router.get(PATH + "/{comment_id}", responses=ok(Comment))
async def get_comment(request: Request, comment_id: str, principal: ProjectKey) -> JSON:
    """One comment (404 when missing)."""
    project_id = principal.project_id
    rt = runtime(request)

    def read(conn: Conn) -> dict[str, Any] | None:
        row = rt.store.comments.get(conn, project_id, comment_id)
        return None if row is None else comment_json(conn.dialect, row)

    return await one_json(rt, read, f"Comment {comment_id}")
