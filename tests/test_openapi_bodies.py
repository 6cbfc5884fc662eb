"""The documented bodies of the alert, budget, retention, masking and dashboard routes
say what the routes check, both ways: each body below is valid by the document exactly
when the route (the real app, on both backends) takes it. The fuzz test
(tests/test_openapi_fuzz.py) sends generated valid bodies; this one also sends bodies
the document refuses, and checks that the route refuses them too."""

from __future__ import annotations

from typing import Any

import jsonschema

from support import Api

RULE = {"name": "errors", "metric": "error_rate", "threshold": 5}
WEBHOOK = {"url": "https://hooks.example.com/x", "secret": "s" * 16}
EMAIL = {"host": "smtp.example.com", "from": "a@example.com", "to": ["b@example.com"]}
TILE = {"id": "p1", "widgetId": "w1", "x": 0, "y": 0, "width": 6, "height": 4}

#: ``(method, path, body, taken)``: whether the route takes the body (a 2xx).
CASES: list[tuple[str, str, Any, bool]] = [
    ("POST", "/api/public/alerts/rules", RULE, True),
    ("POST", "/api/public/alerts/rules", {**RULE, "windowSeconds": 600.0}, True),
    ("POST", "/api/public/alerts/rules", {**RULE, "windowSeconds": 30}, False),
    ("POST", "/api/public/alerts/rules", {**RULE, "threshold": None}, False),
    ("POST", "/api/public/alerts/rules", {**RULE, "mode": "baseline"}, False),
    ("POST", "/api/public/alerts/rules", {**RULE, "mode": "baseline", "threshold": None,
                                          "baseline": "last_24_hours", "factor": 2}, True),
    ("POST", "/api/public/alerts/rules", {**RULE, "metric": "score_avg"}, False),
    ("POST", "/api/public/alerts/rules", {**RULE, "metric": "score_avg", "scoreName": " "}, False),
    ("POST", "/api/public/alerts/rules", {**RULE, "metric": "score_avg", "scoreName": "q"}, True),
    ("POST", "/api/public/alerts/rules", {**RULE, "scoreName": ""}, True),
    ("POST", "/api/public/alerts/rules", {**RULE, "filters": {"colour": "red"}}, False),
    ("POST", "/api/public/alerts/rules", {**RULE, "filters": {"metadata": {"k": 1}}}, True),
    ("POST", "/api/public/alerts/rules", {**RULE, "filters": {"metadata": {"k": [1]}}}, False),
    ("POST", "/api/public/alerts/rules", {**RULE, "colour": "red"}, False),
    ("POST", "/api/public/alert-channels", {"name": "w", "type": "webhook", "config": WEBHOOK},
     True),
    ("POST", "/api/public/alert-channels",
     {"name": "w", "type": "webhook", "config": {**WEBHOOK, "secret": " short secret  "}}, False),
    ("POST", "/api/public/alert-channels",
     {"name": "s", "type": "slack", "config": {"url": "http://hooks.example.com/x"}}, False),
    ("POST", "/api/public/alert-channels",
     {"name": "s", "type": "slack", "config": {"url": "https://hooks.example.com/x"}}, True),
    ("POST", "/api/public/alert-channels", {"name": "e", "type": "email", "config": EMAIL}, True),
    ("POST", "/api/public/alert-channels",
     {"name": "e", "type": "email", "config": {**EMAIL, "username": "u"}}, False),
    ("POST", "/api/public/alert-channels",
     {"name": "e", "type": "email", "config": {**EMAIL, "to": ["b@x;c@x"]}}, False),
    ("POST", "/api/public/alert-channels",
     {"name": "e", "type": "slack", "config": EMAIL}, False),
    ("POST", "/api/public/budgets", {"name": "b", "limitUsd": 5}, True),
    ("POST", "/api/public/budgets", {"name": "b", "limitUsd": 5, "scope": "user"}, False),
    ("POST", "/api/public/budgets",
     {"name": "b", "limitUsd": 5, "scope": "user", "scopeValue": "u1"}, True),
    ("POST", "/api/public/budgets", {"name": "b", "limitUsd": 5, "scopeValue": "u1"}, False),
    ("POST", "/api/public/budgets", {"name": "b", "limitUsd": 0}, False),
    ("POST", "/api/public/budgets", {"name": "b", "limitUsd": 5, "softPercent": 100}, False),
    ("POST", "/api/public/budgets", {"name": "b", "limitUsd": 5, "softPercent": None}, True),
    ("PUT", "/api/public/retention", {"retentionDays": 30.0}, True),
    ("PUT", "/api/public/retention", {"retentionDays": 30.5}, False),
    ("PUT", "/api/public/retention", {}, False),
    ("PUT", "/api/public/masking-rules", {"rules": [{"type": "path", "path": "$.input.a"}]}, True),
    ("PUT", "/api/public/masking-rules", {"rules": [{"type": "path", "path": "input"}]}, False),
    ("PUT", "/api/public/masking-rules", {"rules": [{"type": "builtin", "name": "x"}]}, False),
    ("PUT", "/api/public/masking-rules",
     {"rules": [{"type": "builtin", "name": "email", "replacement": None}]}, False),
    ("POST", "/api/public/unstable/dashboards", {"name": "d"}, True),
    ("POST", "/api/public/unstable/dashboards", {"name": " "}, False),
    ("POST", "/api/public/unstable/dashboards",
     {"name": "d", "definition": {"widgets": [{**TILE, "x": 7}]}}, False),
    ("POST", "/api/public/unstable/dashboards",
     {"name": "d", "filters": [{"type": "string", "column": "name", "operator": "="}]}, False),
    ("POST", "/api/public/unstable/dashboards",
     {"name": "d", "filters": [{"type": "null", "column": "name", "operator": "is null"}]}, True),
]  # fmt: skip


def _schema(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    body = spec["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]
    return {**body["schema"], "components": spec["components"]}


def test_the_document_takes_a_body_exactly_when_the_route_does(api: Api) -> None:
    spec = api.get("/api/openapi.json").json()
    wrong = []
    for method, path, body, taken in CASES:
        valid = jsonschema.Draft202012Validator(_schema(spec, method, path)).is_valid(body)
        answer = api.request(method, path, json=body)
        status = 200 if taken else 400
        if valid is not taken or answer.status_code != status:
            wrong.append((method, path, body, valid, answer.status_code, answer.text))
    assert not wrong, wrong
