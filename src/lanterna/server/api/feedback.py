"""``POST /api/public/feedback`` (project key): feedback a user approved sending about
skills, MCP tools, the CLI, docs or the public API. Stored with the project (table
``feedback``; deleted with it) and noted in its audit log; never fetched or forwarded
(``referenceUrl`` is kept as text)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import Field

from ..audit import actor_of, audit
from ..auth import ProjectKey
from ..doc_models import DocModel, answer
from ..errors import ApiError
from ..responses import JSON
from ..runtime import runtime
from .body import NOT_BLANK, json_body, read_json_object

router = APIRouter(tags=["Feedback"])

TARGET_TYPES = ("skill", "mcp-tool", "cli", "docs", "public-api", "other")


class SubmitFeedbackRequest(DocModel):
    """``targetType`` (``skill``, ``mcp-tool``, ``cli``, ``docs``, ``public-api``,
    ``other``), ``target`` (1-200 characters), ``feedback`` (1-3000), optional ``goal``
    (1-1500) and ``referenceUrl`` (http or https)."""

    targetType: str = Field(json_schema_extra={"enum": list(TARGET_TYPES)})
    target: str = Field(max_length=200, pattern=NOT_BLANK)
    feedback: str = Field(max_length=3000, pattern=NOT_BLANK)
    goal: str | None = Field(None, max_length=1500, pattern=NOT_BLANK)
    referenceUrl: str | None = Field(
        None, max_length=2000, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\x00]*$"
    )


class SubmitFeedbackResponse(DocModel):
    """The stored feedback's id."""

    id: str


def _text(body: dict[str, object], name: str, most: int, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= most:
        raise ApiError(400, "Invalid request data", f"{name}: a string of 1 to {most} characters")
    return value.strip()


@router.post(
    "/api/public/feedback",
    status_code=201,
    responses={201: answer(SubmitFeedbackResponse, "Created")},
    openapi_extra=json_body(SubmitFeedbackRequest),
)
async def submit_feedback(request: Request, principal: ProjectKey) -> JSON:
    """Store the feedback (201 with its id); 400 naming a field that is wrong."""
    body = await read_json_object(request)
    if body.get("targetType") not in TARGET_TYPES:
        raise ApiError(400, "Invalid request data", f"targetType: one of {', '.join(TARGET_TYPES)}")
    fields = {
        "targetType": str(body["targetType"]),
        "target": _text(body, "target", 200, required=True),
        "feedback": _text(body, "feedback", 3000, required=True),
        "goal": _text(body, "goal", 1500, required=False),
        "referenceUrl": _text(body, "referenceUrl", 2000, required=False),
    }
    url = fields["referenceUrl"]
    if url is not None and not url.lower().startswith(("http://", "https://")):
        raise ApiError(400, "Invalid request data", "referenceUrl: an http or https URL")
    rt = runtime(request)
    actor = actor_of(principal)[0]
    feedback_id = await rt.write(
        lambda c: rt.store.audit.record_feedback(c, principal.project_id, actor, fields)
    )
    detail = {"targetType": fields["targetType"], "target": fields["target"]}
    await audit(rt, principal, "feedback.submit", feedback_id, detail)
    return JSON({"id": feedback_id}, status_code=201)
