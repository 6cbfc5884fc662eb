"""Models: custom prices per project, and the built-in ones (contract 4.5).

``GET /api/public/models`` lists the project's custom models first, then the built-in
models (``isLangfuseManaged: true``, prices from genai-prices). ``?match=<model name>``
answers which model a name resolves to now (custom models win over built-ins): a page
with that one model, or an empty page whose ``message`` says no price matched.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...cost import builtin
from ...cost.prices import check_create
from ...store.db import Conn
from ...store.interface import Models
from ...timeutil import now
from ..audit import audit
from ..auth import ProjectKey
from ..errors import ApiError, not_found
from ..responses import JSON
from ..runtime import runtime
from ..shapes import builtin_json, custom_json
from .body import read_json
from .params import LimitParam, PageParam, page_of

router = APIRouter()

_catalog: tuple[date, list[dict[str, Any]]] | None = None


def _builtins() -> list[dict[str, Any]]:
    """Every built-in model as JSON, at today's prices (built once a day)."""
    global _catalog
    today = now().date()
    if _catalog is None or _catalog[0] != today:
        _catalog = (today, [builtin_json(m) for m in builtin.all_models()])
    return _catalog[1]


@router.get("/api/public/models")
def list_models(
    request: Request,
    principal: ProjectKey,
    page: PageParam = None,
    limit: LimitParam = None,
    match: str | None = None,
) -> JSON:
    """Custom models (newest first), then built-in ones; or what ``match`` resolves to."""
    paging = page_of(page, limit)
    project_id = principal.project_id
    rt = runtime(request)
    if match is not None:
        return JSON(
            rt.read_sync(lambda conn: _match(rt.store.models, conn, project_id, match, paging))
        )
    custom = rt.read_sync(
        lambda conn: [custom_json(conn, r) for r in rt.store.models.list_custom(conn, project_id)]
    )
    builtins = _builtins()
    start = paging.offset
    data = custom[start : start + paging.limit]
    if len(data) < paging.limit:
        first = max(start - len(custom), 0)
        data += builtins[first : first + paging.limit - len(data)]
    return JSON(paging.envelope(data, len(custom) + len(builtins)))


def _match(models: Models, conn: Conn, project_id: str, name: str, paging: Any) -> dict[str, Any]:
    pricing = models.pricing(conn, project_id)
    model = pricing.match(name, now())
    if model is None:
        body = paging.envelope([], 0)
        body["message"] = f"no price matched model {name!r}"
        return body
    if model.builtin:
        shaped = builtin_json(model)
    else:
        row = models.get(conn, project_id, model.id)
        assert row is not None
        shaped = custom_json(conn, row)
    return paging.envelope([shaped] if paging.page == 1 else [], 1)


@router.post("/api/public/models")
async def create_model(request: Request, principal: ProjectKey) -> JSON:
    """Create a custom model; it prices new observations at once and wins over built-ins."""
    fields = check_create(await read_json(request))
    project_id = principal.project_id
    rt = runtime(request)
    models = rt.store.models

    def work(conn: Conn) -> dict[str, Any]:
        return custom_json(conn, models.create(conn, project_id, fields))

    created = await rt.write(work)
    models.forget(project_id)  # committed: price new observations with it at once
    await audit(rt, principal, "model.create", created["id"], {"modelName": created["modelName"]})
    return JSON(created)


@router.get("/api/public/models/{model_id:path}")
def get_model(request: Request, model_id: str, principal: ProjectKey) -> JSON:
    """A custom model of the project, or a built-in one (``builtin:<provider>:<model>``)."""
    project_id = principal.project_id
    rt = runtime(request)

    def read(conn: Conn) -> dict[str, Any] | None:
        row = rt.store.models.get(conn, project_id, model_id)
        return None if row is None else custom_json(conn, row)

    found = rt.read_sync(read)
    if found is None:
        model = builtin.by_id(model_id)
        if model is None:
            raise not_found(f"Model {model_id}")
        found = builtin_json(model)
    return JSON(found)


@router.delete("/api/public/models/{model_id:path}")
async def delete_model(request: Request, model_id: str, principal: ProjectKey) -> Response:
    """Delete a custom model (204); built-in models cannot be deleted (403)."""
    project_id = principal.project_id
    rt = runtime(request)
    models = rt.store.models
    deleted = await rt.write(lambda conn: models.delete(conn, project_id, model_id))
    if deleted:
        models.forget(project_id)
        await audit(rt, principal, "model.delete", model_id)
        return Response(status_code=204)
    if builtin.by_id(model_id) is not None:
        raise ApiError(
            403,
            "Built-in models cannot be deleted; create a custom model with a matching"
            " pattern to override its prices",
        )
    raise not_found(f"Model {model_id}")
