"""Domain errors (``lanterna.errors``) answer through the app's one handler: their status
and the Langfuse error body on the API, the HTML error page on the dashboard; through
real HTTP on the in-process app, on both backends."""

from __future__ import annotations

import pytest
from fastapi import APIRouter

from lanterna.errors import Conflict, DomainError, NotFound


class _Locked(Conflict):
    """A domain error with its own stable name."""

    error = "PromptLockedError"


def _add_failing_routes(app) -> None:
    router = APIRouter()

    @router.get("/api/public/test-errors/{kind}")
    @router.get("/test-errors/{kind}")
    def fail(kind: str) -> None:
        raise {
            "missing": NotFound("Dataset 'd1' not found"),
            "locked": _Locked("Prompt 'p' is being edited"),
        }[kind]

    app.include_router(router)


def test_a_domain_error_raised_in_a_route_answers_its_status_and_body(api):
    _add_failing_routes(api.app)

    missing = api.get("/api/public/test-errors/missing")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/json")
    # The name Langfuse answers for a 404 (the SDKs map it to NotFoundError).
    assert missing.json() == {
        "message": "Dataset 'd1' not found",
        "error": "LangfuseNotFoundError",
    }

    locked = api.get("/api/public/test-errors/locked")
    assert locked.status_code == 409
    assert locked.json() == {"message": "Prompt 'p' is being edited", "error": "PromptLockedError"}


def test_on_the_dashboard_a_domain_error_is_the_html_error_page(api):
    _add_failing_routes(api.app)
    page = api.get("/test-errors/missing")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Dataset &#39;d1&#39; not found" in page.text
    assert "Back to the start" in page.text


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        # FilterError (store): Langfuse's validation shape, the reason as `error`.
        (
            "GET",
            "/api/public/traces?fromTimestamp=yesterday",
            None,
            {
                "message": "Invalid request data",
                "error": "fromTimestamp: Invalid isoformat string: 'yesterday'",
            },
        ),
        # PromptError (prompts): the reason as the message.
        (
            "POST",
            "/api/public/v2/prompts",
            {"name": "p", "type": "chat", "prompt": "not a list"},
            {
                "message": "prompt: a chat prompt is a list of messages",
                "error": "InvalidRequestError",
            },
        ),
        # ModelError (cost).
        (
            "POST",
            "/api/public/models",
            {"modelName": "m", "matchPattern": "(unclosed", "unit": "TOKENS"},
            {
                "message": "Invalid request data",
                "error": "matchPattern: invalid regex: missing ): (unclosed (patterns use RE2"
                " syntax: no lookarounds or backreferences)",
            },
        ),
        # InvalidConfig (ingest): the reason after Langfuse's validation message.
        (
            "POST",
            "/api/public/score-configs",
            {"name": "", "dataType": "NUMERIC"},
            {
                "message": "Invalid request data: name: required, a non-empty string",
                "error": "InvalidRequestError",
            },
        ),
        # Invalid (ingest), through the scores route.
        (
            "POST",
            "/api/public/scores",
            {"traceId": "t1", "name": "q", "value": 1, "source": "EVAL"},
            {
                "message": "source: EVAL is reserved for evaluator outputs; use API or ANNOTATION",
                "error": "InvalidRequestError",
            },
        ),
    ],
)
def test_the_domain_errors_of_each_package_keep_their_bodies(api, method, path, body, expected):
    response = api.request(method, path, json=body)
    assert response.status_code == 400, response.text
    assert response.json() == expected


def test_a_stopped_writer_is_a_503_domain_error(api):
    api.app.state.runtime.writer.stop()
    response = api.post("/api/public/v2/prompts", json={"name": "p", "prompt": "hi"})
    assert response.status_code == 503
    assert response.json()["error"] == "ServiceUnavailableError"
    assert "stopped" in response.json()["message"]


def test_every_api_route_documents_its_error_body_in_openapi(api):
    spec = api.get("/api/openapi.json").json()
    schema = spec["components"]["schemas"]["ErrorBody"]
    assert set(schema["required"]) == {"message", "error"}
    operations = [
        (path, method, op)
        for path, ops in spec["paths"].items()
        if path.startswith(("/api/public", "/v1/"))
        for method, op in ops.items()
    ]
    assert len(operations) > 20
    for path, method, op in operations:
        documented = op["responses"].get("4XX", {})
        ref = documented.get("content", {}).get("application/json", {}).get("schema", {})
        if path.startswith("/api/public/scim/"):
            # SCIM answers its own error body (RFC 7644) or, before a route runs (bad
            # key, rate limit), ours: the document says either.
            assert ref == {"$ref": "#/components/schemas/ScimOrApiError"}, (method, path)
            either = spec["components"]["schemas"]["ScimOrApiError"]
            assert {"$ref": "#/components/schemas/ErrorBody"} in either["anyOf"]
        else:
            assert ref == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)
        # Validation errors answer 400 in the error body, not FastAPI's 422.
        assert "422" not in op["responses"], (method, path)


def test_a_domain_error_is_an_exception_without_http_machinery():
    err = NotFound("Trace t1 not found")
    assert isinstance(err, DomainError) and err.status == 404 and str(err) == err.message
    assert DomainError("boom").body() == {"message": "boom", "error": "Error"}
    assert Conflict("x", status=423, error="Locked").body() == {"message": "x", "error": "Locked"}
