"""SCIM 2.0 (RFC 7643/7644) for an identity provider, with an organisation API key
(``OrgKey``): ``GET /api/public/scim/ServiceProviderConfig``, ``/ResourceTypes``,
``/Schemas``, and Users: ``GET|POST /api/public/scim/Users`` (list with
``filter=userName eq "..."``, ``startIndex``, ``count``; create) and
``GET|DELETE /api/public/scim/Users/{userId}``.

A SCIM user is a dashboard account in the key's organisation: ``userName`` is its email.
Creating one makes the account (no password: the person signs in with SSO or sets one
through a password reset) or adds an existing account to the organisation, with no
role of its own (``NONE``: project roles are given with the membership routes). Deleting
one takes the account out of the organisation and its projects and ends its login
sessions at once; the account itself stays (it may belong to other organisations).
Errors are SCIM error bodies (``urn:ietf:params:scim:api:messages:2.0:Error``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field, RootModel
from starlette.responses import Response

from ...accounts import orgs
from ...accounts import store as accounts
from ...errors import Conflict
from ...store.db import Conn
from ..audit import audit_org
from ..doc_models import DocModel, answer
from ..errors import ErrorBody
from ..org_auth import OrgKey
from ..responses import JSON
from ..runtime import runtime
from .body import json_body, ok, read_json
from .organizations import remove_org_member
from .params import MAX_PAGE


class ScimError(DocModel):
    """An RFC 7644 error (``scim_error``): what the SCIM routes answer when a request is
    wrong (a missing or wrong key, a NUL in the body: the API's :class:`ErrorBody`)."""

    schemas: list[str]
    status: str
    detail: str
    scimType: str | None = None


class ScimOrApiError(RootModel[ScimError | ErrorBody]):
    """A SCIM route's 4xx: an RFC 7644 error, or the API's error body."""


router = APIRouter(
    tags=["Scim"],
    responses={"4XX": answer(ScimOrApiError, "Refused: nothing changed")},
)

SCIM = "/api/public/scim"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
MAX_RESULTS = 100
_FILTER = re.compile(r'^\s*userName\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)


class ScimName(DocModel):
    """A user's name (``formatted``; ``givenName``/``familyName`` are read on create)."""

    formatted: str | None = None


class ScimEmail(DocModel):
    """An email address of a user."""

    primary: bool
    value: str
    type: str


class UserMeta(DocModel):
    """When the user was provisioned."""

    resourceType: str
    created: str | None = None
    lastModified: str | None = None


class ScimUser(DocModel):
    """A provisioned user."""

    schemas: list[str]
    id: str
    userName: str
    name: ScimName
    emails: list[ScimEmail]
    meta: UserMeta


class ScimUserBody(DocModel):
    """Provision a user: ``userName`` (their email) and ``name``; ``password`` is
    accepted and ignored (no credential is made)."""

    #: The user's email address (it must hold an ``@``)
    userName: str = Field(max_length=320, pattern=r"^[^\x00]*@[^\x00]*$")
    name: ScimName
    emails: list[ScimEmail] | None = None
    active: bool | None = None
    password: str | None = None


class ScimUsersListResponse(DocModel):
    """A page of the organisation's users."""

    schemas: list[str]
    totalResults: int
    startIndex: int
    itemsPerPage: int
    Resources: list[ScimUser]


class ScimFeatureSupport(DocModel):
    """Whether a SCIM feature is supported."""

    supported: bool


class BulkConfig(DocModel):
    """Bulk operations (not supported)."""

    supported: bool
    maxOperations: int
    maxPayloadSize: int


class FilterConfig(DocModel):
    """Filtering (``userName eq``) and the most results a list answers."""

    supported: bool
    maxResults: int


class AuthenticationScheme(DocModel):
    """How to authenticate (HTTP Basic with an organisation key)."""

    name: str
    description: str
    specUri: str
    type: str
    primary: bool


class ResourceMeta(DocModel):
    """A discovery resource's type and location."""

    resourceType: str
    location: str


class ServiceProviderConfig(DocModel):
    """What this SCIM service provider supports."""

    schemas: list[str]
    documentationUri: str
    patch: ScimFeatureSupport
    bulk: BulkConfig
    filter: FilterConfig
    changePassword: ScimFeatureSupport
    sort: ScimFeatureSupport
    etag: ScimFeatureSupport
    authenticationSchemes: list[AuthenticationScheme]
    meta: ResourceMeta


class SchemaExtension(DocModel):
    """An extension of a resource type's schema (none here)."""

    schema_: str = Field(alias="schema")
    required: bool


class ResourceType(DocModel):
    """A resource type served (User)."""

    schemas: list[str] | None = None
    id: str
    name: str
    endpoint: str
    description: str
    schema_: str = Field(alias="schema")
    schemaExtensions: list[SchemaExtension]
    meta: ResourceMeta


class ResourceTypesResponse(DocModel):
    """The resource types, as a list response."""

    schemas: list[str]
    totalResults: int
    Resources: list[ResourceType]


class SchemaResource(DocModel):
    """A schema and its attributes."""

    id: str
    name: str
    description: str
    attributes: list[Any]
    meta: ResourceMeta


class SchemasResponse(DocModel):
    """The schemas, as a list response."""

    schemas: list[str]
    totalResults: int
    Resources: list[SchemaResource]


def scim_error(status: int, detail: str, scim_type: str | None = None) -> JSON:
    """An RFC 7644 error body with ``status``."""
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return JSON(body, status_code=status)


def user_json(row: dict[str, Any]) -> dict[str, Any]:
    """A ``ScimUser`` of an organisation member's row."""
    return {
        "schemas": [USER_SCHEMA],
        "id": row["id"],
        "userName": row["email"],
        "name": {"formatted": row["name"]},
        "emails": [{"primary": True, "value": row["email"], "type": "work"}],
        "active": True,
        "meta": {
            "resourceType": "User",
            "created": row["user_created_at"],
            "lastModified": row["created_at"],
            "location": f"{SCIM}/Users/{row['id']}",
        },
    }


def _meta(resource_type: str, location: str) -> dict[str, str]:
    return {"resourceType": resource_type, "location": f"{SCIM}/{location}"}


@router.get(SCIM + "/ServiceProviderConfig", responses=ok(ServiceProviderConfig))
async def service_provider_config(request: Request, org: OrgKey) -> JSON:
    """What this SCIM server supports: Users with a ``userName eq`` filter, Basic auth
    with an organisation key; no PATCH, bulk, sorting, ETags or password changes."""
    return JSON(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": f"{str(request.base_url).rstrip('/')}/api/docs",
            "patch": {"supported": False},
            "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": True, "maxResults": MAX_RESULTS},
            "changePassword": {"supported": False},
            "sort": {"supported": False},
            "etag": {"supported": False},
            "authenticationSchemes": [
                {
                    "name": "HTTP Basic",
                    "description": "An organization API key: public key as user name,"
                    " secret key as password",
                    "specUri": "https://www.rfc-editor.org/rfc/rfc7617",
                    "type": "httpbasic",
                    "primary": True,
                }
            ],
            "meta": _meta("ServiceProviderConfig", "ServiceProviderConfig"),
        }
    )


@router.get(SCIM + "/ResourceTypes", responses=ok(ResourceTypesResponse))
async def resource_types(request: Request, org: OrgKey) -> JSON:
    """The one resource type served: User."""
    user = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "A dashboard account in the organization",
        "schema": USER_SCHEMA,
        "schemaExtensions": [],
        "meta": _meta("ResourceType", "ResourceTypes/User"),
    }
    return JSON({"schemas": [LIST_SCHEMA], "totalResults": 1, "Resources": [user]})


def _attribute(name: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "multiValued": False,
        "required": False,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
        **extra,
    }


@router.get(SCIM + "/Schemas", responses=ok(SchemasResponse))
async def schemas(request: Request, org: OrgKey) -> JSON:
    """The User schema's attributes this server reads and returns."""
    user = {
        "id": USER_SCHEMA,
        "name": "User",
        "description": "User Account",
        "attributes": [
            _attribute("userName", "string", required=True, uniqueness="server"),
            _attribute(
                "name",
                "complex",
                subAttributes=[_attribute("formatted", "string")],
            ),
            _attribute(
                "emails",
                "complex",
                multiValued=True,
                subAttributes=[
                    _attribute("value", "string"),
                    _attribute("type", "string"),
                    _attribute("primary", "boolean"),
                ],
            ),
            _attribute("active", "boolean"),
        ],
        "meta": _meta("Schema", f"Schemas/{USER_SCHEMA}"),
    }
    return JSON({"schemas": [LIST_SCHEMA], "totalResults": 1, "Resources": [user]})


@router.get(SCIM + "/Users", responses=ok(ScimUsersListResponse))
async def list_users(
    request: Request,
    org: OrgKey,
    filter: str | None = None,
    # Below 1 counts as 1 and a negative count as 0 (RFC 7644); above MAX_PAGE is a 400
    # (the index is echoed back, and JSON integers end at 64 bits).
    startIndex: Annotated[int | None, Query(le=MAX_PAGE)] = None,
    count: Annotated[int | None, Query(le=MAX_PAGE)] = None,
) -> JSON:
    """The organisation's users, a page at a time (``startIndex`` from 1, ``count`` up
    to 100); ``filter`` supports ``userName eq "..."`` (400 ``invalidFilter`` else)."""
    email = None
    if filter is not None and filter.strip():
        found = _FILTER.match(filter)
        if found is None:
            return scim_error(
                400, 'Only the filter userName eq "..." is supported', "invalidFilter"
            )
        email = found.group(1).replace('\\"', '"')
    start = max(1, startIndex or 1)
    size = MAX_RESULTS if count is None else min(max(0, count), MAX_RESULTS)
    rt = runtime(request)
    rows = await rt.read(lambda c: orgs.org_members(c, org.org_id, email=email))
    page = rows[start - 1 : start - 1 + size]
    return JSON(
        {
            "schemas": [LIST_SCHEMA],
            "totalResults": len(rows),
            "startIndex": start,
            "itemsPerPage": len(page),
            "Resources": [user_json(r) for r in page],
        }
    )


def _display_name(name: Any) -> str | None:
    if not isinstance(name, dict):
        return None
    formatted = name.get("formatted")
    if isinstance(formatted, str) and formatted.strip():
        return formatted.strip()[:200]
    parts = [name.get(k) for k in ("givenName", "familyName")]
    joined = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    return joined[:200] or None


@router.post(
    SCIM + "/Users",
    status_code=201,
    responses={201: answer(ScimUser, "Created")},
    openapi_extra=json_body(ScimUserBody),
)
async def create_user(request: Request, org: OrgKey) -> JSON:
    """Provision a user in the organisation (201); 409 ``uniqueness`` when the
    organisation has them already."""
    body = await read_json(request)
    if not isinstance(body, dict):
        return scim_error(400, "The body must be a JSON object", "invalidSyntax")
    email = body.get("userName")
    if not isinstance(email, str) or "@" not in email or len(email) > 320:
        return scim_error(400, "userName must be the user's email address", "invalidValue")
    email = accounts.normalize_email(email)
    name = _display_name(body.get("name"))
    rt = runtime(request)

    def work(c: Conn) -> dict[str, Any] | None:
        user = accounts.find_user(c, email)
        if user is not None and orgs.org_role(c, org.org_id, user["id"]) is not None:
            return None
        user_id = user["id"] if user else accounts.create_user(c, email, None, name=name)
        orgs.join_org(c, org.org_id, user_id)
        return orgs.org_member(c, org.org_id, user_id)

    row = await rt.write(work)
    if row is None:
        return scim_error(409, f"User {email} exists in this organization", "uniqueness")
    await audit_org(rt, org, org.org_id, "member.add", email, {"via": "scim"})
    return JSON(user_json(row), status_code=201)


@router.get(SCIM + "/Users/{userId}", responses=ok(ScimUser))
async def get_user(request: Request, org: OrgKey, userId: str) -> JSON:
    """One user of the organisation (404 for anyone else)."""
    rt = runtime(request)
    row = await rt.read(lambda c: orgs.org_member(c, org.org_id, userId))
    if row is None:
        return scim_error(404, f"User {userId} not found")
    return JSON(user_json(row))


@router.delete(
    SCIM + "/Users/{userId}",
    status_code=204,
    responses={204: {"description": "Deprovisioned (no body)"}},
)
async def delete_user(request: Request, org: OrgKey, userId: str) -> Response:
    """Deprovision: out of the organisation and its projects at once (204; their login
    sessions end when no other organisation or project is left to them); 404 for a user
    the organisation does not have."""
    try:
        removed = await remove_org_member(runtime(request), org, userId, {"via": "scim"})
    except Conflict as exc:
        return scim_error(409, str(exc))
    if removed is None:
        return scim_error(404, f"User {userId} not found")
    return Response(status_code=204)
