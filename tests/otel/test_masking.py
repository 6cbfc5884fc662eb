"""Server-side masking: a project's redaction rules applied at ingestion, to Langfuse
JSON and OTLP alike, before anything is stored: the secrets are checked absent from the
database itself (the SQLite file and its WAL, or the PostgreSQL rows' text)."""

from __future__ import annotations

from pathlib import Path

import pytest
from otel_spans import PROTOBUF, protobuf, record, span_id, trace_id

from helpers import T0, event, ingest
from lanterna.ingest.events import DomainEvent
from lanterna.ingest.masking import check_rules, compile_rules

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
API_KEY = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx"
BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig"
PASSWORD = "hunter2-correct-horse"
CUSTOM = "ACME-778899"
SECRETS = (EMAIL, CARD, API_KEY, "eyJhbGciOiJIUzI1NiJ9", PASSWORD, CUSTOM)
TEXT = f"mail {EMAIL}, card {CARD}, key {API_KEY}, header {BEARER}, order {CUSTOM}"
RULES = [
    {"type": "builtin", "name": "email"},
    {"type": "builtin", "name": "credit_card"},
    {"type": "builtin", "name": "api_key"},
    {"type": "builtin", "name": "bearer_token"},
    {"type": "regex", "pattern": r"ACME-\d+", "replacement": "[ORDER]"},
    {"type": "path", "path": "input.password"},
    {"type": "path", "path": "metadata.auth.*"},
]


def _stored_bytes(api) -> bytes:
    """Everything the database holds, as bytes: the SQLite files, or PostgreSQL's rows."""
    db = api.app.state.runtime.db
    if db.path is not None:
        return b"".join(p.read_bytes() for p in Path(db.path).parent.glob(Path(db.path).name + "*"))
    with db.read() as conn:
        rows = [
            *conn.all("SELECT input::text, output::text, metadata::text FROM traces"),
            *conn.all("SELECT input::text, output::text, metadata::text FROM observations"),
        ]
    return repr(rows).encode()


def test_json_and_otlp_events_are_stored_masked(api):
    assert api.put("/api/public/masking-rules", json={"rules": RULES}).status_code == 200
    ingest(
        api,
        event(
            "trace-create",
            {
                "id": "t-json",
                "input": {"question": TEXT, "password": PASSWORD},
                "output": [TEXT],
                "metadata": {"auth": {"token": PASSWORD, "user": EMAIL}, "plain": "kept"},
            },
        ),
        event("generation-create", {"id": "g-json", "traceId": "t-json", "input": TEXT}),
    )

    def work(tracer):
        with tracer.start_as_current_span("llm") as span:
            span.set_attribute("input.value", TEXT)
            span.set_attribute("output.value", f"reply to {EMAIL}")

    [span] = record(work)
    response = api.post("/api/public/otel/v1/traces", content=protobuf([span]), headers=PROTOBUF)
    assert response.status_code == 200, response.text

    trace = api.get("/api/public/traces/t-json").json()
    assert trace["input"]["password"] == "[REDACTED]"
    assert trace["input"]["question"] == (
        "mail [REDACTED], card [REDACTED], key [REDACTED], header [REDACTED], order [ORDER]"
    )
    assert trace["metadata"] == {
        "auth": {"token": "[REDACTED]", "user": "[REDACTED]"},
        "plain": "kept",
    }
    otlp = api.get(f"/api/public/observations/{span_id(span)}").json()
    assert "[REDACTED]" in str(otlp["input"]) and "[ORDER]" in str(otlp["input"])
    assert api.get(f"/api/public/traces/{trace_id([span])}").status_code == 200

    stored = _stored_bytes(api)
    assert b"[REDACTED]" in stored
    for secret in SECRETS:
        assert secret.encode() not in stored, secret


def test_without_rules_events_are_stored_as_sent(api):
    assert api.get("/api/public/masking-rules").json() == {"rules": []}
    ingest(api, event("trace-create", {"id": "t1", "input": TEXT}))
    assert api.get("/api/public/traces/t1").json()["input"] == TEXT


def test_rules_are_per_project(api):
    other = api.new_project()
    assert api.put("/api/public/masking-rules", json={"rules": RULES}).status_code == 200
    ingest(api, event("trace-create", {"id": "t1", "input": EMAIL}), auth=other.auth)
    assert api.get("/api/public/traces/t1", auth=other.auth).json()["input"] == EMAIL
    assert api.get("/api/public/masking-rules", auth=other.auth).json() == {"rules": []}
    entries = api.get("/api/public/audit-log?action=masking").json()["data"]
    assert [e["detail"] for e in entries] == [{"rules": len(RULES)}]


@pytest.mark.parametrize(
    ("rules", "fragment"),
    [
        ("email", "rules: a list"),
        ([{"type": "builtin", "name": "phone"}], "rules[0]: name"),
        ([{"type": "regex", "pattern": "(a)\\1"}], "rules[0]: pattern: not a valid RE2"),
        ([{"type": "regex", "pattern": ""}], "rules[0]: pattern"),
        ([{"type": "path", "path": "body.secret"}], "rules[0]: path"),
        ([{"type": "nope"}], "rules[0]: type"),
        ([{"type": "builtin", "name": "email"}] * 51, "at most 50"),
    ],
)
def test_bad_rules_are_a_400_naming_the_rule(api, rules, fragment):
    response = api.put("/api/public/masking-rules", json={"rules": rules})
    assert response.status_code == 400 and fragment in response.text, response.text
    assert api.get("/api/public/masking-rules").json() == {"rules": []}


def test_a_catastrophic_pattern_runs_in_linear_time():
    masker = compile_rules(check_rules([{"type": "regex", "pattern": "^(a+)+$"}]))
    assert masker is not None
    e = DomainEvent("trace", "t", T0, {"input": "a" * 50_000 + "!"})
    assert masker.event(e).fields["input"] == "a" * 50_000 + "!"


def test_credit_card_numbers_need_a_valid_checksum():
    masker = compile_rules([{"type": "builtin", "name": "credit_card"}])
    assert masker is not None
    assert masker.text("4111-1111-1111-1111 / 4111 1111 1111 1112") == (
        "[REDACTED] / 4111 1111 1111 1112"
    )
