"""The OpenAPI document is what the server does: schemathesis generates requests from
``/api/openapi.json`` for every operation and sends them to the real app in-process
(a real SQLite file or PostgreSQL database, seeded with a trace, its observations and
scores, a prompt, a dataset and a comment so that lists and details answer with data),
authenticated with the project's keys (an organisation key of its organisation on the
organisation-level routes, those the document secures with ``OrgBasicAuth``; seeded with
a member made over SCIM). Every answer must pass four checks: not a server error, a
documented status code, a documented content type, and a body valid against the
documented schema of that status; and, but on the operations in ``LOOSE``, a request
valid by the document must not be refused as invalid.

The normal suite sends about ``DEFAULT_CASES`` generated requests per backend; the full
run sends 5,000 (docs/api.md, "The OpenAPI document"):

    LANTERNA_FUZZ_CASES=5000 scripts/test tests/test_openapi_fuzz.py -n 0

``LANTERNA_FUZZ_ONLY`` (a regular expression searched in ``"METHOD /path"``) fuzzes only
the operations it matches, e.g. while documenting a route:

    LANTERNA_FUZZ_ONLY='/api/public/traces' scripts/test tests/test_openapi_fuzz.py
"""

from __future__ import annotations

import base64
import math
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks as core_checks
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi
from schemathesis.specs.openapi import checks as openapi_checks

import support
from helpers import event, iso
from lanterna.server.app import create_app
from lanterna.server.openapi import ORG_BASIC, org_operations
from lanterna.server.settings import Settings
from lanterna.store import projects
from spec_schemas import SPEC
from support import make_settings, new_project

#: Generated requests per backend in the normal suite (``LANTERNA_FUZZ_CASES`` to change).
DEFAULT_CASES = 600
#: The full run takes longer than the suite's per-test timeout (300 s) on a busy machine.
FULL_RUN = pytest.mark.timeout(0 if "LANTERNA_FUZZ_CASES" in os.environ else 300)
CHECKS = [
    core_checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]
#: Operations whose documented request is still looser than what the route checks (an
#: undocumented JSON body, a JSON-in-a-string parameter, rules between parameters):
#: schema-valid requests may get a 400. Every other operation must accept every request
#: valid by its document (schemathesis' positive data acceptance check: 2xx, or 401,
#: 403, 404, 409 or 429). Shrink this set; never grow it.
LOOSE = frozenset(
    {
        "POST /api/public/scores",
        "POST /api/public/v2/prompts",
        "GET /api/public/v2/prompts/{name}",
        "DELETE /api/public/v2/prompts/{name}",
        "POST /api/public/otel/v1/traces",
        "POST /v1/traces",
        "POST /api/public/score-configs",
        "PATCH /api/public/score-configs/{config_id}",
        "POST /api/public/models",
        "GET /api/public/metrics",
        "GET /api/public/v2/metrics",
        # The widget's metrics query must parse (dimensions, measures and filter columns
        # of its view; agg "histogram" exactly with chart type HISTOGRAM).
        "POST /api/public/unstable/dashboard-widgets",
        # A definition's placement ids differ and name widgets of the project.
        "POST /api/public/unstable/dashboards",
        "PATCH /api/public/unstable/dashboards/{dashboard_id}",
        # Each of channelIds names an alert channel of the project.
        "POST /api/public/budgets",
        # A regex rule's pattern must compile as RE2.
        "PUT /api/public/masking-rules",
        # inputSchema/expectedOutputSchema: a valid JSON Schema whose patterns RE2
        # compiles, which the dataset's stored items must match (a 400 otherwise).
        "POST /api/public/v2/datasets",
        "POST /api/public/datasets",
        # The item must match its dataset's JSON schemas; an id of another dataset's item.
        "POST /api/public/dataset-items",
        # An observationId alone must name a stored observation (a 400 asks for traceId).
        "POST /api/public/dataset-run-items",
        "GET /api/public/comments",
        "POST /api/public/annotation-queues",
        "POST /api/public/unstable/evaluators",
        "POST /api/public/unstable/evaluation-rules",
        "PATCH /api/public/unstable/evaluation-rules/{rule_id}",
        # Variant names differ, control is one of them, the metrics are scores of the
        # project (or cost, latency, errorRate), the prompt versions and labels exist.
        "POST /api/public/ab-tests",
        # groupBy=tags needs two or more tags, groupBy=promptVersion needs prompt; the
        # metric is a score of the project (or cost, latency, errorRate).
        "GET /api/public/ab-tests/compare",
        # version needs datasetName (a rule between parameters).
        "GET /api/public/dataset-items",
    }
)
#: Query parameters holding a JSON document (``filter``, the metrics ``query``): the
#: document says "a string"; the route parses it (a 400 when it is not the JSON it wants).
JSON_PARAMETERS = frozenset({"filter", "query"})
#: Not fuzzed: the signed media URLs carry an HMAC of the server's (so every generated
#: request is a 403) and the upload writes a blob; tests/test_media.py covers them.
SKIPPED = ("/api/media/",)
#: Only the operations whose ``"METHOD /path"`` this regular expression matches.
ONLY = re.compile(os.environ.get("LANTERNA_FUZZ_ONLY", ""))


def chosen(operation: Any) -> bool:
    """Whether ``LANTERNA_FUZZ_ONLY`` (when set) picks ``operation``."""
    return bool(ONLY.search(f"{operation.method.upper()} {operation.path}"))


def _org_key(db_url: str, project_id: str) -> tuple[str, str]:
    """A new organisation key of the project's organisation."""

    def create(conn: Any) -> tuple[str, str]:
        org = str(projects.get_project(conn, project_id)["org_id"])
        key = projects.create_org_key(conn, org)
        support.SECRETS.add(key.secret_key)
        return key.public_key, key.secret_key

    return support._in_transaction(db_url, create)


def _seed_org(client: Any, org_auth: tuple[str, str], project_id: str) -> None:
    """An organisation member (made over SCIM) with a role in the project."""
    made = client.post(
        "/api/public/scim/Users",
        json={"userName": "fuzz@example.com", "name": {"formatted": "Fuzz"}},
        auth=org_auth,
    )
    assert made.status_code == 201, made.text
    user = made.json()["id"]
    for path in (
        "/api/public/organizations/memberships",
        f"/api/public/projects/{project_id}/memberships",
    ):
        answer = client.put(path, json={"userId": user, "role": "VIEWER"}, auth=org_auth)
        assert answer.status_code == 200, (path, answer.text)


def _seed(client: Any) -> None:
    """One of each thing the lists and details show, through the API."""
    trace = event(
        "trace-create",
        {"id": "fuzz-trace", "name": "seed", "userId": "fuzz-user", "sessionId": "fuzz-session"},
    )
    span = event("span-create", {"id": "fuzz-span", "traceId": "fuzz-trace", "name": "step"})
    generation = event(
        "generation-create",
        {
            "id": "fuzz-gen",
            "traceId": "fuzz-trace",
            "model": "gpt-4o-mini",
            "startTime": iso(),
            "usageDetails": {"input": 10, "output": 5},
        },
    )
    score = event(
        "score-create", {"id": "fuzz-score", "traceId": "fuzz-trace", "name": "q", "value": 1}
    )
    answer = client.post("/api/public/ingestion", json={"batch": [trace, span, generation, score]})
    assert answer.status_code == 207 and not answer.json()["errors"], answer.text
    for path, body in (
        (
            "/api/public/v2/prompts",
            {"name": "fuzz", "prompt": "Hi {{x}}", "labels": ["production"]},
        ),
        ("/api/public/v2/datasets", {"name": "fuzz-set"}),
        ("/api/public/dataset-items", {"datasetName": "fuzz-set", "input": {"q": 1}}),
        (
            "/api/public/comments",
            {"objectType": "TRACE", "objectId": "fuzz-trace", "content": "seeded"},
        ),
    ):
        answer = client.post(path, json=body)
        assert answer.status_code == 200, (path, answer.text)


def _run(operation: Any, examples: int, headers: dict[str, str], failures: set[str]) -> int:
    """Up to ``examples`` generated requests to one operation of our document; how
    many were sent."""
    label = f"{operation.method.upper()} {operation.path}"
    names = {parameter.name for parameter in operation.iter_parameters()}
    loose = label in LOOSE or names & JSON_PARAMETERS
    checks = CHECKS if loose else [*CHECKS, openapi_checks.positive_data_acceptance]
    return send(operation, examples, headers, checks, failures)


def send(
    operation: Any, examples: int, headers: dict[str, str], checks: list[Any], failures: set[str]
) -> int:
    """Up to ``examples`` generated requests to ``operation``, each answer put through
    ``checks`` (what they find added to ``failures``); how many were sent."""
    sent = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def one(case: Any) -> None:
        nonlocal sent
        sent += 1
        try:
            case.call_and_validate(headers=headers, checks=checks)
        except (Exception, FailureGroup) as exc:  # FailureGroup: what the checks found
            failures.add("\n".join(str(exc).splitlines()[:12]))

    one()
    return sent


def basic(auth: tuple[str, str]) -> dict[str, str]:
    """The ``Authorization`` header of a key pair."""
    token = base64.b64encode(":".join(auth).encode()).decode()
    return {"Authorization": f"Basic {token}"}


def spread(
    operations: list[Any], total: int, run: Callable[[Any, int, set[str]], int]
) -> tuple[int, dict[str, set[str]]]:
    """Send about ``total`` requests spread evenly over ``operations`` with
    ``run(operation, budget, failures)``; return how many were sent and the failures
    by operation."""
    failures: dict[str, set[str]] = defaultdict(set)
    sent = 0
    active = list(operations)
    while sent < total and active:
        budget = math.ceil((total - sent) / len(active))
        exhausted = []
        for operation in active:
            label = f"{operation.method.upper()} {operation.path}"
            count = run(operation, budget, failures[label])
            sent += count
            if count < budget:  # Hypothesis ran out of distinct inputs
                exhausted.append(operation)
            if sent >= total:
                break
        active = [op for op in active if op not in exhausted]
    return sent, {op: found for op, found in failures.items() if found}


def fuzz(
    app: Any, auth: tuple[str, str], org_auth: tuple[str, str], total: int
) -> tuple[int, dict[str, set[str]]]:
    """Send about ``total`` generated requests over every operation (with ``org_auth``
    on the organisation-level ones); return how many were sent and the failures by
    operation."""
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    project_headers, org_headers = basic(auth), basic(org_auth)
    operations = [
        op
        for op in (result.ok() for result in schema.get_all_operations())
        if not op.path.startswith(SKIPPED) and chosen(op)
    ]

    def run(operation: Any, budget: int, failures: set[str]) -> int:
        security = operation.definition.raw.get("security", [])
        headers = org_headers if {ORG_BASIC: []} in security else project_headers
        return _run(operation, budget, headers, failures)

    return spread(operations, total, run)


@contextmanager
def seeded(db_url: str, tmp_path: Path) -> Iterator[tuple[Any, tuple[str, str], tuple[str, str]]]:
    """The app on ``db_url`` with its lifespan running, seeded (``_seed``, ``_seed_org``):
    yields it, the project's key and an organisation key."""
    app = create_app(make_settings(db_url, tmp_path))
    project = new_project(db_url)
    with asgi.get_client(app) as client:
        client.auth = project.auth
        org_auth = _org_key(db_url, project.id)
        _seed(client)
        _seed_org(client, org_auth, project.id)
        try:
            yield app, project.auth, org_auth
        finally:
            asgi.shutdown_lifespans()


def report(name: str, sent: int, failures: dict[str, set[str]]) -> None:
    """Print the count; fail with what the checks found."""
    print(f"\n{name}: {sent} generated requests, {len(failures)} operations failing")
    assert not failures, "\n\n".join(f"{op}:\n" + "\n--\n".join(f) for op, f in failures.items())


@FULL_RUN
def test_generated_requests_get_documented_answers(db_url: str, tmp_path: Path) -> None:
    total = int(os.environ.get("LANTERNA_FUZZ_CASES", DEFAULT_CASES))
    with seeded(db_url, tmp_path) as (app, auth, org_auth):
        sent, failures = fuzz(app, auth, org_auth, total)
    report("schemathesis", sent, failures)
    assert sent >= total


#: Generated requests per backend from Langfuse's spec in the normal suite (also
#: ``LANTERNA_FUZZ_CASES`` for the full run).
LANGFUSE_CASES = 300
#: Operations whose status codes knowingly differ from what Langfuse's spec lists (the
#: other checks still run on them), with why.
LANGFUSE_STATUS_DEVIATIONS = {
    "POST /api/public/scim/Users": "201 Created and 409 uniqueness, as RFC 7644 has them;"
    " Langfuse's spec lists 200 only",
}


def _blank(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


@FULL_RUN
@pytest.mark.skipif(SPEC is None, reason="Langfuse's spec is not beside the checkout")
def test_langfuse_spec_requests_get_langfuse_answers(db_url: str, tmp_path: Path) -> None:
    """Requests generated from Langfuse's own OpenAPI spec
    (``../shared/reference/langfuse-openapi.yml``), for every operation of it we serve
    (all of them: tests/test_route_coverage.py), get answers that its spec documents:
    no server error, a status, content type and body as it says."""
    assert SPEC is not None
    total = int(os.environ.get("LANTERNA_FUZZ_CASES", LANGFUSE_CASES))
    with seeded(db_url, tmp_path) as (app, auth, org_auth):
        org = {(method, _blank(path)) for method, path in org_operations(app)}
        served = {(method, _blank(path)) for method, path in _operations(app)}
        schema = schemathesis.openapi.from_path(str(SPEC))
        schema.app = app
        operations = [
            op
            for op in (result.ok() for result in schema.get_all_operations())
            if (op.method.lower(), _blank(op.path)) in served
        ]
        assert len(operations) >= 110
        operations = [op for op in operations if chosen(op)]
        project_headers, org_headers = basic(auth), basic(org_auth)

        def run(operation: Any, budget: int, failures: set[str]) -> int:
            key = (operation.method.lower(), _blank(operation.path))
            headers = org_headers if key in org else project_headers
            checks = CHECKS
            if f"{operation.method.upper()} {operation.path}" in LANGFUSE_STATUS_DEVIATIONS:
                checks = [c for c in CHECKS if c is not openapi_checks.status_code_conformance]
            return send(operation, budget, headers, checks, failures)

        sent, failures = spread(operations, total, run)
    report("schemathesis (Langfuse's spec)", sent, failures)
    assert sent >= total


def _operations(app: Any) -> set[tuple[str, str]]:
    """``(method, path)`` of every operation in our document."""
    paths = app.openapi()["paths"]
    return {(method, path) for path, item in paths.items() for method in item}


def test_every_operation_needs_a_key_unless_it_is_public(tmp_path: Path) -> None:
    spec = create_app(Settings(data_dir=str(tmp_path))).openapi()
    assert spec["components"]["securitySchemes"]["BasicAuth"]["scheme"] == "basic"
    open_ops = {
        (method, path)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if "security" not in op
    }
    assert open_ops == {
        ("get", "/api/public/health"),
        ("put", "/api/media/{project_id}/{media_id}/upload"),
        ("get", "/api/media/{project_id}/{media_id}"),
    }
    org_ops = {
        (method, path)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if op.get("security") == [{ORG_BASIC: []}]
    }
    # Projects, their keys, memberships, SCIM and blob storage take an organisation key;
    # the project key's own project list does not.
    assert len(org_ops) >= 20, org_ops
    assert {("post", "/api/public/projects"), ("get", "/api/public/scim/Users")} <= org_ops
    assert ("get", "/api/public/projects") not in org_ops
    assert ("put", "/api/public/integrations/blob-storage") in org_ops


def test_success_answers_are_described(tmp_path: Path) -> None:
    spec = create_app(Settings(data_dir=str(tmp_path))).openapi()
    undescribed = [
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method, op in item.items()
        for status, answer in op["responses"].items()
        if status.startswith("2")
        and status != "204"
        and any(media.get("schema") in (None, {}) for media in answer.get("content", {}).values())
    ]
    # Every operation says what it answers (a 204 has no body to describe).
    assert undescribed == []


def _with_examples(node: Any) -> Iterator[dict[str, Any]]:
    """Every schema in ``node`` that gives ``examples``."""
    if isinstance(node, list):
        for item in node:
            yield from _with_examples(item)
    elif isinstance(node, dict):
        if isinstance(node.get("examples"), list) and ("type" in node or "properties" in node):
            yield node
        for value in node.values():
            yield from _with_examples(value)


def test_examples_are_valid_by_their_schemas(tmp_path: Path) -> None:
    import jsonschema

    spec = create_app(Settings(data_dir=str(tmp_path))).openapi()
    schemas = list(_with_examples(spec))
    titles = {schema.get("title") for schema in schemas}
    assert {"IngestionBatch", "IngestionResult", "CommentBody", "ProjectBody"} <= titles
    for schema in schemas:
        # The root carries the components, so "#/components/schemas/..." resolves.
        rooted = {**schema, "components": spec["components"]}
        for example in schema["examples"]:
            jsonschema.Draft202012Validator(rooted).validate(example)
