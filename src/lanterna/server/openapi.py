"""What the OpenAPI document (``/api/openapi.json``) says beyond what FastAPI infers from
the routes: how to authenticate, and the answers any route may give besides its own.

Checked by fuzzing (tests/test_openapi_fuzz.py, scripts/fuzz-openapi): schemathesis
generates requests from the document and checks every answer's status code, content
type and body against it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from .doc_models import resolve
from .errors import ErrorBody
from .org_auth import require_org

#: The public key and secret key as HTTP Basic credentials (``pk-lf-...:sk-lf-...``).
BASIC = "BasicAuth"
#: The public key alone as a Bearer token: scores only (browser SDKs).
BEARER = "PublicKeyBearer"
#: An organisation key's public and secret key as HTTP Basic credentials: the
#: organisation-level routes (projects, their keys, memberships, SCIM, blob storage).
ORG_BASIC = "OrgBasicAuth"

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    BASIC: {
        "type": "http",
        "scheme": "basic",
        "description": "The project's public key as user name, its secret key as password.",
    },
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "The project's public key alone: may only send scores.",
    },
    ORG_BASIC: {
        "type": "http",
        "scheme": "basic",
        "description": "An organisation API key (lanterna keys create --org): its public key"
        " as user name, its secret key as password. Opens only the organisation-level"
        " routes; a project key gets 403 there, and an organisation key on a project's.",
    },
}

#: Routes that need no API key: the health check, and media behind signed URLs.
_OPEN = ("/api/public/health", "/api/media/")

#: Answers any route may give, whatever it does (documented on every API operation).
COMMON_RESPONSES: dict[str, dict[str, Any]] = {
    "503": {
        "description": "The database is unavailable or its disk is full: nothing was"
        " written; retry later",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    },
}


#: Query parameters every route reads as an ISO-8601 instant with a UTC offset
#: (``timeutil.parse_ts``: a 400 naming the parameter otherwise).
TIME_PARAMETERS = frozenset(
    {"at", "fromTimestamp", "toTimestamp", "fromStartTime", "toStartTime"}
    | {"fromUpdatedAt", "toUpdatedAt"}
)
#: No NUL byte in a path or query string, on any route (``guards.RequestGuard``'s 400).
NO_NUL = "^[^\\u0000]*$"
#: A time parameter: no NUL, before year 9999 (``timeutil.MAX_TS``: a 400 from there) and
#: not on the first day of year 1, whose times with a positive offset fall before year 1
#: in UTC (a 400 "out of range").
TIME_RANGE = "^(?!9999-|0001-01-01T)[^\\u0000]*$"


def _string_rules(schema: dict[str, Any], extra: dict[str, str]) -> None:
    """Add ``extra`` to the string branches of a parameter's schema."""
    if schema.get("type") == "string":
        for key, value in extra.items():
            schema.setdefault(key, value)  # a route's own pattern excludes NULs already
        if schema.get("format") == "date-time" and schema.get("pattern") == NO_NUL:
            schema["pattern"] = TIME_RANGE
    for branch in schema.get("anyOf", ()):
        _string_rules(branch, extra)
    if isinstance(schema.get("items"), dict):
        _string_rules(schema["items"], extra)


def _parameter_rules(op: dict[str, Any]) -> None:
    """What the server checks of every route's parameters, stated in their schemas."""
    for parameter in op.get("parameters", ()):
        extra = {"pattern": NO_NUL}
        if parameter["in"] == "query" and parameter["name"] in TIME_PARAMETERS:
            extra["format"] = "date-time"
        _string_rules(parameter.get("schema", {}), extra)


#: Bodies read as they are sent (``read_json``) refuse a NUL in any string or key; the
#: ingestion batch and OTLP strip them instead, as Langfuse does (``langfuse_events``).
_NUL_STRIPPED = ("/api/public/ingestion", "/api/public/otel/", "/v1/", "/api/media/")
#: Any JSON value whose strings and keys hold no NUL: what a free-form body field takes.
JSON_VALUE = "JsonValue"
_JSON_REF = {"$ref": f"#/components/schemas/{JSON_VALUE}"}
JSON_VALUE_SCHEMA: dict[str, Any] = {
    "description": "Any JSON value; no string or key may hold a NUL character",
    "anyOf": [
        {"type": "null"},
        {"type": "boolean"},
        {"type": "number"},
        {"type": "string", "pattern": NO_NUL},
        {"type": "array", "items": _JSON_REF},
        {"type": "object", "propertyNames": {"pattern": NO_NUL}, "additionalProperties": _JSON_REF},
    ],
}
#: Keywords whose value is one schema, or a list or map of schemas.
_ONE = ("items", "additionalProperties", "not", "contains")
_MANY = ("anyOf", "oneOf", "allOf", "prefixItems")
#: Keywords that say nothing of a value's type or shape (a schema of only these is "any").
_NOTES = frozenset({"title", "description", "default", "examples", "deprecated"})


def _no_nul(schema: Any, schemas: dict[str, Any], seen: set[str]) -> Any:
    """``schema`` (a request body's) stating that no string or key in it holds a NUL
    (``read_json``'s 400): patterns on strings, key names and free-form values.
    Referenced components are changed in place (once)."""
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name not in seen and name in schemas:
            seen.add(name)
            schemas[name] = _no_nul(schemas[name], schemas, seen)
        return schema
    if set(schema) <= _NOTES:  # any value
        return {**schema, **_JSON_REF}
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "string" in kinds and "enum" not in schema and "const" not in schema:
        schema.setdefault("pattern", NO_NUL)  # a route's own pattern excludes NULs already
    if "object" in kinds:
        schema.setdefault("propertyNames", {"pattern": NO_NUL})
        if schema.get("additionalProperties", True) is True:
            schema["additionalProperties"] = _JSON_REF
    for key in _ONE:
        if key in schema:
            schema[key] = _no_nul(schema[key], schemas, seen)
    for key in _MANY:
        if key in schema:
            schema[key] = [_no_nul(item, schemas, seen) for item in schema[key]]
    if isinstance(schema.get("properties"), dict):
        schema["properties"] = {
            name: _no_nul(item, schemas, seen) for name, item in schema["properties"].items()
        }
    return schema


def _body_rules(path: str, op: dict[str, Any], schemas: dict[str, Any], seen: set[str]) -> None:
    """What ``read_json`` checks of every JSON body, stated in its schema."""
    if path.startswith(_NUL_STRIPPED):
        return
    content = op.get("requestBody", {}).get("content", {})
    answer = content.get("application/json")
    if answer is not None and "schema" in answer:
        answer["schema"] = _no_nul(answer["schema"], schemas, seen)


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every API route, also inside included routers (mounted without a prefix)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _api_routes(inner.routes)
        elif isinstance(route, APIRoute):
            yield route


def org_operations(app: FastAPI) -> set[tuple[str, str]]:
    """``(method, path)`` of every route that takes an organisation key (``OrgKey``)."""
    found = set()
    for route in _api_routes(app.routes):
        if any(dep.call is require_org for dep in route.dependant.dependencies):
            found |= {(method.lower(), route.path) for method in route.methods or ()}
    return found


def _secured(path: str, method: str) -> list[dict[str, list[str]]]:
    schemes: list[dict[str, list[str]]] = [{BASIC: []}]
    if (path, method) in (("/api/public/scores", "post"), ("/api/public/ingestion", "post")):
        schemes.append({BEARER: []})
    return schemes


def _without_defaults(node: Any) -> Any:
    """``node`` without its ``default`` notes (a body's model and the same model as an
    answer differ only there)."""
    if isinstance(node, dict):
        return {k: _without_defaults(v) for k, v in node.items() if k != "default"}
    if isinstance(node, list):
        return [_without_defaults(v) for v in node]
    return node


def _hoist_defs(node: Any, schemas: dict[str, Any]) -> Any:
    """Move the ``$defs`` of schemas written inline (a route's ``json_body``) into
    ``components.schemas``, where their ``#/...`` references resolve: inside the
    document, ``#/$defs/X`` would point at its root."""
    if isinstance(node, list):
        return [_hoist_defs(item, schemas) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$defs":
            for name, schema in value.items():
                hoisted = _hoist_defs(schema, schemas)
                kept = schemas.setdefault(name, hoisted)
                if _without_defaults(kept) != _without_defaults(hoisted):
                    raise RuntimeError(f"two schemas named {name} in the OpenAPI document")
        elif key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
            out[key] = "#/components/schemas/" + value.removeprefix("#/$defs/")
        elif key == "discriminator" and isinstance(value, dict) and "mapping" in value:
            out[key] = {
                **value,
                "mapping": {
                    tag: "#/components/schemas/" + ref.removeprefix("#/$defs/")
                    if isinstance(ref, str) and ref.startswith("#/$defs/")
                    else ref
                    for tag, ref in value["mapping"].items()
                },
            }
        else:
            out[key] = _hoist_defs(value, schemas)
    return out


#: Documents built in this process, by the routes they describe: every app of a
#: process (the tests make hundreds) has the same routes, and building one takes seconds.
_BUILT: dict[tuple[Any, ...], dict[str, Any]] = {}


def _routes_key(app: FastAPI) -> tuple[Any, ...]:
    return (
        app.title,
        app.version,
        *(
            (route.path, tuple(sorted(route.methods or ())), id(route.endpoint))
            for route in app.routes
            if isinstance(route, APIRoute) and route.include_in_schema
        ),
    )


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with the auth schemes and common answers added
    (built once per process for a set of routes; each app gets its own copy)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    key = _routes_key(app)
    if key not in _BUILT:
        _BUILT[key] = _build(app)
    app.openapi_schema = copy.deepcopy(_BUILT[key])
    return app.openapi_schema


def _build(app: FastAPI) -> dict[str, Any]:
    spec = FastAPI.openapi(app)
    components = spec.setdefault("components", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    schemas = components.setdefault("schemas", {})
    schemas.setdefault("ErrorBody", ErrorBody.model_json_schema())
    schemas.setdefault(JSON_VALUE, JSON_VALUE_SCHEMA)
    spec["paths"] = _hoist_defs(resolve(spec["paths"], schemas), schemas)
    seen: set[str] = set()
    org = org_operations(app)
    for path, item in spec["paths"].items():
        for method, op in item.items():
            _parameter_rules(op)
            _body_rules(path, op, schemas, seen)
            if (method, path) in org:
                op["security"] = [{ORG_BASIC: []}]
            elif not path.startswith(_OPEN):
                op["security"] = _secured(path, method)
            if path.startswith(("/api/", "/v1/")):
                for status, answer in COMMON_RESPONSES.items():
                    op["responses"].setdefault(status, answer)
    return spec


def install(app: FastAPI) -> None:
    """Serve :func:`document` as the app's OpenAPI document."""
    app.openapi = lambda: document(app)  # type: ignore[method-assign]
