"""Models: custom prices per project, and the built-in ones (contract 4.5).

``GET /api/public/models`` lists the project's custom models first, then the built-in
models (``isLangfuseManaged: true``, prices from genai-prices). ``?match=<model name>``
answers which model a name resolves to now (custom models win over built-ins): a page
with that one model, or an empty page whose ``message`` says no price matched.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.responses import Response

from ...cost import builtin
from ...cost.prices import MAX_PATTERN, check_create
from ...store.db import Conn
from ...store.interface import Models
from ...timeutil import now
from ..audit import audit
from ..auth import ProjectAdminKey, ProjectKey
from ..doc_models import DocModel
from ..errors import ApiError, not_found
from ..responses import JSON
from ..runtime import runtime
from ..shapes import builtin_json, custom_json
from .body import NOT_BLANK, json_body, ok, read_json
from .params import LimitParam, Meta, PageParam, page_of

router = APIRouter()

# --- the OpenAPI shapes (Langfuse's Model, PricingTier, CreateModelRequest) -------------

Unit = Literal["CHARACTERS", "TOKENS", "MILLISECONDS", "SECONDS", "IMAGES", "REQUESTS"]
Operator = Literal["gt", "gte", "lt", "lte", "eq", "neq"]
#: A regular expression (RE2 syntax: the route refuses one RE2 does not compile).
Regex = Annotated[
    str, Field(min_length=1, max_length=MAX_PATTERN, json_schema_extra={"format": "regex"})
]
Price = Annotated[float, Field(ge=0)]


class UsageCondition(DocModel):
    """A tier applies when the usage whose keys match ``usageDetailPattern``, summed,
    compares to ``value`` by ``operator``."""

    usageDetailPattern: str
    operator: Operator
    value: float
    caseSensitive: bool


class AttributeCondition(DocModel):
    """A tier applies when a top-level model parameter or metadata ``key`` has one of
    ``values``."""

    source: Literal["model_parameters", "metadata"]
    key: str
    operator: Literal["in"]
    values: list[str]


class PricingTier(DocModel):
    """Prices (USD per unit, by usage type) that apply when all ``conditions`` hold; the
    default tier (priority 0) has none."""

    id: str
    name: str
    isDefault: bool
    priority: int
    conditions: list[UsageCondition | AttributeCondition]
    prices: dict[str, float]


class ModelPrice(DocModel):
    """A unit price (USD)."""

    price: float


class Model(DocModel):
    """A model definition: a custom one of the project, or a built-in one
    (``isLangfuseManaged``, id ``builtin:<provider>:<model>``, with its ``provider``).
    The flat prices and ``prices`` are the default tier's."""

    id: str
    modelName: str
    matchPattern: str
    startDate: datetime | None
    unit: Unit | None
    inputPrice: float | None
    outputPrice: float | None
    totalPrice: float | None
    tokenizerId: str | None
    tokenizerConfig: Any
    isLangfuseManaged: bool
    createdAt: datetime
    prices: dict[str, ModelPrice]
    pricingTiers: list[PricingTier]
    provider: str | None = Field(None, description="Built-in models only.")


class ModelList(DocModel):
    """A page of models: the project's custom ones (newest first), then the built-in
    ones; with ``match``, the one model the name resolves to (or none, and ``message``
    says so)."""

    data: list[Model]
    meta: Meta
    message: str | None = Field(None, description="Only when ``match`` matched no model.")


class UsageConditionBody(DocModel):
    """A usage condition of a tier (``caseSensitive`` defaults to false)."""

    usageDetailPattern: Regex
    operator: Operator
    value: float
    caseSensitive: bool = False


class AttributeConditionBody(DocModel):
    """An attribute condition of a tier."""

    source: Literal["model_parameters", "metadata"]
    key: str = Field(min_length=1)
    operator: Literal["in"] = "in"
    values: list[str] = Field(min_length=1)


class PricingTierBody(DocModel):
    """A pricing tier to create. Exactly one tier of a model is the default (priority
    0, no conditions); the others need conditions; names and priorities are unique."""

    name: str = Field(pattern=NOT_BLANK)
    isDefault: bool
    priority: int
    conditions: list[UsageConditionBody | AttributeConditionBody] = []
    prices: dict[Annotated[str, Field(min_length=1)], Price] = Field(min_length=1)


class ModelBody(DocModel):
    """Create a custom model (Langfuse's ``CreateModelRequest``): prices either flat
    (``inputPrice``/``outputPrice``, or ``totalPrice`` alone: a default tier named
    "Standard") or as ``pricingTiers``, not both."""

    modelName: str = Field(pattern=NOT_BLANK)
    matchPattern: Regex
    startDate: datetime | None = None
    unit: Unit | None = None
    inputPrice: Price | None = None
    outputPrice: Price | None = None
    totalPrice: Price | None = None
    pricingTiers: list[PricingTierBody] | None = Field(None, min_length=1)
    tokenizerId: str | None = None
    tokenizerConfig: Any = None


_catalog: tuple[date, list[dict[str, Any]]] | None = None


def _builtins() -> list[dict[str, Any]]:
    """Every built-in model as JSON, at today's prices (built once a day)."""
    global _catalog
    today = now().date()
    if _catalog is None or _catalog[0] != today:
        _catalog = (today, [builtin_json(m) for m in builtin.all_models()])
    return _catalog[1]


@router.get("/api/public/models", responses=ok(ModelList))
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


# The body stays looser in the document than the route's checks: a valid RE2 pattern,
# flat prices or tiers (not both, totalPrice alone), exactly one default tier, unique
# tier names and priorities are not JSON Schema.
@router.post("/api/public/models", responses=ok(Model), openapi_extra=json_body(ModelBody))
async def create_model(request: Request, principal: ProjectAdminKey) -> JSON:
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


@router.get("/api/public/models/{model_id:path}", responses=ok(Model))
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


@router.delete(
    "/api/public/models/{model_id:path}",
    status_code=204,
    responses={204: {"description": "Deleted"}},
)
async def delete_model(request: Request, model_id: str, principal: ProjectAdminKey) -> Response:
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
