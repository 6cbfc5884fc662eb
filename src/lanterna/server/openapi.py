"""What the OpenAPI document (``/api/openapi.json``) says beyond what FastAPI infers from
the routes: how to authenticate, and the answers any route may give besides its own.

Checked by fuzzing (tests/test_openapi_fuzz.py, scripts/fuzz-openapi): schemathesis
generates requests from the document and checks every answer's status code, content
type and body against it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from .errors import ErrorBody

#: The public key and secret key as HTTP Basic credentials (``pk-lf-...:sk-lf-...``).
BASIC = "BasicAuth"
#: The public key alone as a Bearer token: scores only (browser SDKs).
BEARER = "PublicKeyBearer"

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


def _secured(path: str, method: str) -> list[dict[str, list[str]]]:
    schemes: list[dict[str, list[str]]] = [{BASIC: []}]
    if (path, method) in (("/api/public/scores", "post"), ("/api/public/ingestion", "post")):
        schemes.append({BEARER: []})
    return schemes


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with the auth schemes and common answers added."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    spec = FastAPI.openapi(app)
    components = spec.setdefault("components", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    components.setdefault("schemas", {}).setdefault("ErrorBody", ErrorBody.model_json_schema())
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if not path.startswith(_OPEN):
                op["security"] = _secured(path, method)
            if path.startswith(("/api/", "/v1/")):
                for status, answer in COMMON_RESPONSES.items():
                    op["responses"].setdefault(status, answer)
    app.openapi_schema = spec
    return spec


def install(app: FastAPI) -> None:
    """Serve :func:`document` as the app's OpenAPI document."""
    app.openapi = lambda: document(app)  # type: ignore[method-assign]
