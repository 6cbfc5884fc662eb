"""Prompts (Langfuse v2 prompt API, contract 4.3) and per-version comparison metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import ConfigDict, Field, RootModel
from starlette.responses import Response

from ...prompts import references
from ...prompts.validate import LATEST, RESERVED_NAMES, check_create, check_labels, check_name
from ...store.db import Conn
from ...store.interface import Prompts
from ...timeutil import parse_ts
from .. import shapes
from ..audit import audit
from ..auth import ProjectKey
from ..doc_models import DocModel
from ..errors import ApiError
from ..responses import JSON
from ..runtime import runtime
from .body import json_body, ok, read_json, read_json_object
from .params import MAX_PAGE, MAX_VERSION, Meta, VersionParam

router = APIRouter()

# --- what the routes check and answer, as schemas (the OpenAPI document) ---------------

#: The characters Python's ``str.strip`` removes (and ECMAScript's ``\s`` besides,
#: U+FEFF), spelled out so that every regex engine reads the class alike.
_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
#: A prompt name as :func:`check_name` takes it: folders separated by single ``/`` (none
#: first or last), no ``|`` or NUL, not blank.
NAME_PATTERN = rf"^(?:[^/|\x00]*[^/|\x00{_SPACE}][^/|\x00]*|[^/|\x00]+(?:/[^/|\x00]+)+)$"
#: A prompt name (:func:`check_name`; reserved words refused).
PromptName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=NAME_PATTERN,
        json_schema_extra={"not": {"enum": sorted(RESERVED_NAMES)}},
    ),
]
#: A label a request may set (:func:`check_labels`): ``latest`` is the server's.
Label = Annotated[
    str, Field(pattern=r"^[a-z0-9_.-]{1,36}$", json_schema_extra={"not": {"enum": [LATEST]}})
]


class ChatMessageIn(DocModel):
    """A chat message of a new prompt (stored with ``type: chatmessage``)."""

    role: str
    content: str
    type: Literal["chatmessage"] | None = None


class PlaceholderIn(DocModel):
    """A placeholder of a new chat prompt: messages the caller fills in at compile time."""

    type: Literal["placeholder"]
    name: str = Field(min_length=1)


class _NewPromptFields(DocModel):
    name: PromptName
    config: Any = Field(None, description="Any JSON; null or absent: {}")
    labels: list[Label] | None = Field(
        None,
        description="Deployment labels (taken off the other versions); none on a new"
        " name's first version: production",
    )
    tags: list[str] | None = Field(
        None, description="Tags of every version of the name; absent: the previous ones"
    )
    commitMessage: str | None = None


class TextPromptBody(_NewPromptFields):
    """A new version of a text prompt."""

    type: Literal["text"] | None = None
    prompt: str


class ChatPromptBody(_NewPromptFields):
    """A new version of a chat prompt."""

    type: Literal["chat"] | None = None
    prompt: list[ChatMessageIn | PlaceholderIn]


class CreatePromptBody(RootModel[TextPromptBody | ChatPromptBody]):
    """``POST /api/public/v2/prompts``: a text prompt (``prompt`` a string) or a chat
    prompt (a list of messages); ``type`` may be left out. A name's versions keep the
    type of its first (a 400 otherwise)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "greeting", "prompt": "Hello {{name}}", "labels": ["production"]},
                {
                    "name": "support/answer",
                    "type": "chat",
                    "prompt": [
                        {"role": "system", "content": "You answer {{topic}} questions."},
                        {"type": "placeholder", "name": "history"},
                    ],
                    "config": {"model": "gpt-4o-mini", "temperature": 0.2},
                },
            ]
        }
    )


class LabelsBody(DocModel):
    """``PATCH .../versions/{version}``: labels to add to the version (null: none)."""

    newLabels: list[Label] | None = None


class ChatMessage(DocModel):
    """A chat message of a stored prompt."""

    role: str
    content: str
    type: Literal["chatmessage"]


class PlaceholderMessage(DocModel):
    """A placeholder of a stored chat prompt."""

    type: Literal["placeholder"]
    name: str


class _PromptFields(DocModel):
    id: str
    projectId: str
    name: str
    version: int
    config: Any
    labels: list[str]
    tags: list[str]
    commitMessage: str | None
    resolutionGraph: dict[str, Any] | None = Field(
        description="The prompts its references resolved to; null without references"
        " or with resolve=false"
    )
    isActive: bool = Field(description="Whether it holds the production label")
    createdBy: str
    createdAt: datetime
    updatedAt: datetime


class TextPrompt(_PromptFields):
    """A version of a text prompt."""

    type: Literal["text"]
    prompt: str


class ChatPrompt(_PromptFields):
    """A version of a chat prompt."""

    type: Literal["chat"]
    prompt: list[ChatMessage | PlaceholderMessage]


class Prompt(RootModel[Annotated[TextPrompt | ChatPrompt, Field(discriminator="type")]]):
    """A prompt version as the SDKs parse it (Langfuse's ``Prompt``): text or chat."""


class PromptMeta(DocModel):
    """A prompt name: its versions, every label of them, tags, last update and the
    newest version's config."""

    name: str
    type: Literal["chat", "text"]
    versions: list[int]
    labels: list[str]
    tags: list[str]
    lastUpdatedAt: datetime
    lastConfig: Any


class PromptMetaList(DocModel):
    """A page of prompt names, most recently updated first."""

    data: list[PromptMeta]
    meta: Meta


class ScoreAverage(DocModel):
    """A numeric or boolean score's average and count over a version's traces."""

    avg: float | None
    count: int


class VersionMetrics(DocModel):
    """One version: its generations (and their traces), mean latency (seconds) and
    cost, total cost, summed usage by type, and score averages by name."""

    version: int
    labels: list[str]
    generations: int
    traces: int
    avgLatency: float | None
    avgCost: float | None
    totalCost: float
    usage: dict[str, float]
    scores: dict[str, ScoreAverage]


class PromptMetrics(DocModel):
    """Every version of the prompt, oldest first."""

    name: str
    data: list[VersionMetrics]


def prompt_json(
    prompts: Prompts, conn: Conn, row: dict[str, Any], *, resolve: bool = True
) -> dict[str, Any]:
    """A Prompt; references resolved unless ``resolve`` is false (a reference that
    cannot be resolved raises a 400 ``PromptReferenceError``)."""
    body, graph = row["prompt"], None
    if resolve:

        def lookup(name: str, version: int | None, label: str | None) -> dict[str, Any] | None:
            return prompts.get(conn, row["project_id"], name, version=version, label=label)

        body, graph = references.resolve(body, lookup, root=(row["name"], row["version"]))
    return shapes.prompt_json(conn.dialect, row, body, graph)


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_ts(value)
    except ValueError as exc:
        raise ApiError(400, f"{name}: {exc}") from None


#: A version in a path: 1 to :data:`MAX_VERSION`.
StoredVersion = Annotated[int, Path(ge=1, le=MAX_VERSION)]
#: A prompt name in the path of a route that checks it (:func:`check_name`: its 400
#: says what is wrong, so the rules are only documented here).
CheckedName = Annotated[
    str,
    Path(
        json_schema_extra={
            "minLength": 1,
            "maxLength": 255,
            "pattern": NAME_PATTERN,
            "not": {"enum": sorted(RESERVED_NAMES)},
        }
    ),
]


# Stays in the fuzz test's LOOSE set: a name's new version must have the type of its
# first (text or chat), a 400 as in Langfuse, a rule between the body and stored data.
@router.post(
    "/api/public/v2/prompts",
    responses=ok(Prompt),
    openapi_extra=json_body(CreatePromptBody),
)
async def create_prompt(request: Request, principal: ProjectKey) -> JSON:
    """Create a new version of a prompt (version = previous + 1; ``latest`` moves to it)."""
    new = check_create(await read_json(request))
    rt = runtime(request)
    prompts = rt.store.prompts

    def work(conn: Conn) -> dict[str, Any]:
        row = prompts.create(conn, principal.project_id, new)
        return prompt_json(prompts, conn, row, resolve=False)

    created = await rt.write(work)
    detail = {"version": created["version"], "labels": created["labels"]}
    await audit(rt, principal, "prompt.create", created["name"], detail)
    return JSON(created)


@router.get("/api/public/v2/prompts", responses=ok(PromptMetaList))
def list_prompts(
    request: Request,
    principal: ProjectKey,
    name: str | None = None,
    label: str | None = None,
    tag: str | None = None,
    page: int = Query(1, ge=1, le=MAX_PAGE),
    limit: int = Query(10, ge=1, le=100),
    fromUpdatedAt: str | None = None,
    toUpdatedAt: str | None = None,
) -> JSON:
    """Prompt names with their versions, labels and tags (PromptMeta), newest first."""
    start, end = _time(fromUpdatedAt, "fromUpdatedAt"), _time(toUpdatedAt, "toUpdatedAt")
    rt = runtime(request)

    def query(conn: Conn) -> tuple[list[dict[str, Any]], int]:
        groups, total = rt.store.prompts.list_names(
            conn,
            principal.project_id,
            name=name,
            label=label,
            tag=tag,
            from_updated=start,
            to_updated=end,
            page=page,
            limit=limit,
        )
        return [shapes.prompt_meta_json(conn.dialect, g) for g in groups], total

    items, total = rt.read_sync(query)
    meta = {"page": page, "limit": limit, "totalItems": total, "totalPages": -(-total // limit)}
    return JSON({"data": items, "meta": meta})


@router.get("/api/public/prompts/metrics", responses=ok(PromptMetrics))
def prompt_metrics(
    request: Request,
    principal: ProjectKey,
    name: str,
    fromTimestamp: str | None = None,
    toTimestamp: str | None = None,
) -> JSON:
    """Per version of a prompt: generations, average latency and cost, tokens, scores."""
    start, end = _time(fromTimestamp, "fromTimestamp"), _time(toTimestamp, "toTimestamp")
    rt = runtime(request)
    stats = rt.read_sync(
        lambda c: rt.store.prompts.version_metrics(
            c, principal.project_id, name, from_ts=start, to_ts=end, events=rt.store.events_conn(c)
        )
    )
    return JSON({"name": name, "data": [shapes.version_stats_json(s) for s in stats]})


@router.patch(
    "/api/public/v2/prompts/{name:path}/versions/{version}",
    responses=ok(Prompt),
    openapi_extra=json_body(LabelsBody),
)
async def update_labels(
    request: Request, name: str, version: StoredVersion, principal: ProjectKey
) -> JSON:
    """Add labels to one version (they move off every other version)."""
    body = await read_json_object(request)
    labels = check_labels(body.get("newLabels"))
    rt = runtime(request)
    prompts = rt.store.prompts

    def work(conn: Conn) -> dict[str, Any] | None:
        row = prompts.add_labels(conn, principal.project_id, name, version, labels)
        return None if row is None else prompt_json(prompts, conn, row, resolve=False)

    found = await rt.write(work)
    if found is None:
        raise ApiError(404, f"Prompt not found: '{name}' with version {version}")
    await audit(rt, principal, "prompt.labels", name, {"version": version, "labels": labels})
    return JSON(found)


def _selector(version: int | None, label: str | None) -> None:
    if version is not None and label is not None:
        raise ApiError(400, "Give either version or label, not both")


# GET and DELETE stay in the fuzz test's LOOSE set: ``version`` and ``label`` together
# are a 400 (a rule between parameters), and a reference that does not resolve is one.
@router.get("/api/public/v2/prompts/{name:path}", responses=ok(Prompt))
def get_prompt(
    request: Request,
    name: str,
    principal: ProjectKey,
    version: VersionParam = None,
    label: str | None = None,
    resolve: bool = True,
) -> JSON:
    """One version: by ``version``, by ``label``, or the ``production`` one."""
    _selector(version, label)
    rt = runtime(request)
    prompts = rt.store.prompts

    def query(conn: Conn) -> dict[str, Any] | None:
        row = prompts.get(conn, principal.project_id, name, version=version, label=label)
        return None if row is None else prompt_json(prompts, conn, row, resolve=resolve)

    found = rt.read_sync(query)
    if found is None:
        which = f"version {version}" if version is not None else f"label '{label or 'production'}'"
        raise ApiError(404, f"Prompt not found: '{name}' with {which}")
    return JSON(found)


@router.delete("/api/public/v2/prompts/{name:path}", status_code=204, response_class=Response)
async def delete_prompt(
    request: Request,
    name: CheckedName,
    principal: ProjectKey,
    version: VersionParam = None,
    label: str | None = None,
) -> Response:
    """Delete every version, or the one given by ``version`` or ``label``."""
    _selector(version, label)
    check_name(name)
    rt = runtime(request)
    deleted = await rt.write(
        lambda c: rt.store.prompts.delete(
            c, principal.project_id, name, version=version, label=label
        )
    )
    if not deleted:
        raise ApiError(404, f"Prompt not found: '{name}'")
    which = {"version": version, "label": label, "versions": deleted}
    await audit(rt, principal, "prompt.delete", name, which)
    return Response(status_code=204)
