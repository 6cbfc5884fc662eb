"""``POST /api/public/ingestion`` behaviour (contract 2): event types, merge rules,
idempotency, bad input, auth scopes. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from helpers import event, ingest, iso
from lanterna.server.app import create_app
from lanterna.server.settings import Settings
from lanterna.store.db import Database

OBSERVATION_CREATES = {
    "agent-create": "AGENT",
    "tool-create": "TOOL",
    "chain-create": "CHAIN",
    "retriever-create": "RETRIEVER",
    "evaluator-create": "EVALUATOR",
    "embedding-create": "EMBEDDING",
    "guardrail-create": "GUARDRAIL",
}


def nested(levels: int) -> dict[str, Any]:
    """A JSON object nested ``levels`` deep."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def rows(db_url: str, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Rows straight from the database (what is really stored)."""
    db = Database(db_url)
    try:
        with db.read() as conn:
            return conn.all(sql, params)
    finally:
        db.close()


def count(db_url: str, table: str) -> int:
    return int(rows(db_url, f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])


def get_trace(api: Any, trace_id: str) -> dict[str, Any]:
    response = api.get(f"/api/public/traces/{trace_id}")
    assert response.status_code == 200, response.text
    trace: dict[str, Any] = response.json()
    return trace


def observations(api: Any, trace_id: str) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in get_trace(api, trace_id)["observations"]}


def single_error(result: dict[str, Any]) -> dict[str, Any]:
    assert result["successes"] == [], result
    assert len(result["errors"]) == 1, result
    error: dict[str, Any] = result["errors"][0]
    return error


# --- every event type ----------------------------------------------------------------


def test_every_public_event_type_is_accepted(api, db_url):
    events = [
        event("trace-create", {"id": "t", "name": "root"}),
        event("span-create", {"id": "span", "traceId": "t", "name": "s"}, at=1),
        event("span-update", {"id": "span", "traceId": "t", "output": "done"}, at=2),
        event("generation-create", {"id": "gen", "traceId": "t", "model": "gpt-4o"}, at=1),
        event("generation-update", {"id": "gen", "traceId": "t", "output": "hi"}, at=2),
        event("event-create", {"id": "ev", "traceId": "t", "name": "click"}, at=1),
        event("score-create", {"id": "sc", "traceId": "t", "name": "q", "value": 1}, at=3),
        event("observation-create", {"id": "legacy", "traceId": "t", "type": "GENERATION"}),
        event("observation-update", {"id": "legacy", "traceId": "t", "output": "x"}, at=1),
        *(
            event(kind, {"id": kind, "traceId": "t", "model": "m", "input": kind})
            for kind in OBSERVATION_CREATES
        ),
    ]
    log = event("sdk-log", {"log": {"level": "debug", "message": "hello"}})
    result = ingest(api, *events, log)
    assert result["errors"] == []
    # A valid sdk-log is listed in neither successes nor errors.
    assert [s["id"] for s in result["successes"]] == [e["id"] for e in events]
    assert all(s["status"] == 201 for s in result["successes"])
    trace = get_trace(api, "t")
    types = {o["id"]: o["type"] for o in trace["observations"]}
    assert types == {
        "span": "SPAN", "gen": "GENERATION", "ev": "EVENT", "legacy": "GENERATION",
        **{kind: obs_type for kind, obs_type in OBSERVATION_CREATES.items()},
    }  # fmt: skip
    by_id = {o["id"]: o for o in trace["observations"]}
    assert by_id["span"]["output"] == "done"
    assert (by_id["gen"]["model"], by_id["gen"]["output"]) == ("gpt-4o", "hi")
    assert by_id["legacy"]["output"] == "x"
    assert by_id["tool-create"]["model"] == "m"
    assert [s["id"] for s in trace["scores"]] == ["sc"]
    assert count(db_url, "observations") == 4 + len(OBSERVATION_CREATES)


def test_legacy_observation_update_alone_creates_a_span(api):
    result = ingest(
        api,
        event("trace-create", {"id": "t"}),
        event("observation-update", {"id": "o", "traceId": "t", "name": "late"}),
    )
    assert result["errors"] == []
    assert observations(api, "t")["o"]["type"] == "SPAN"


# --- merge semantics -----------------------------------------------------------------


def test_update_merges_field_by_field(api):
    ingest(
        api,
        event("trace-create", {"id": "t"}),
        event("span-create", {"id": "s", "traceId": "t", "name": "step", "input": {"q": 1},
                              "level": "WARNING", "startTime": iso()}),
        event("span-update", {"id": "s", "traceId": "t", "output": {"a": 2},
                              "endTime": iso(seconds=3), "statusMessage": "ok"}, at=1),
    )  # fmt: skip
    span = observations(api, "t")["s"]
    assert (span["name"], span["input"], span["output"]) == ("step", {"q": 1}, {"a": 2})
    assert (span["level"], span["statusMessage"]) == ("WARNING", "ok")
    assert span["endTime"] == "2024-05-01T10:00:03.000000Z"
    assert span["latency"] == 3


def test_a_later_event_cannot_move_an_observation_or_change_its_start(api):
    ingest(
        api,
        event("trace-create", {"id": "t1"}),
        event("trace-create", {"id": "t2"}),
        event("span-create", {"id": "s", "traceId": "t1", "startTime": iso(), "name": "a"}),
    )
    ingest(
        api,
        event("span-update", {"id": "s", "traceId": "t2", "startTime": iso(seconds=30),
                              "name": "b", "environment": "other"}, at=40),
    )  # fmt: skip
    span = observations(api, "t1")["s"]
    assert span["traceId"] == "t1"
    assert span["startTime"] == "2024-05-01T10:00:00.000000Z"
    assert span["environment"] == "default"
    assert span["name"] == "b"  # mutable fields do change
    assert observations(api, "t2") == {}


def test_trace_timestamp_and_environment_are_fixed_by_the_first_write(api):
    ingest(api, event("trace-create", {"id": "t", "timestamp": iso(), "environment": "prod"}))
    ingest(
        api,
        event("trace-create", {"id": "t", "timestamp": iso(seconds=9), "environment": "dev",
                               "name": "renamed"}, at=9),
    )  # fmt: skip
    trace = get_trace(api, "t")
    assert (trace["timestamp"], trace["environment"]) == ("2024-05-01T10:00:00.000000Z", "prod")
    assert trace["name"] == "renamed"


def test_metadata_deep_merges_and_tags_union(api):
    ingest(
        api,
        event("trace-create", {"id": "t", "tags": ["b", "a"],
                               "metadata": {"user": {"plan": "pro"}, "keep": 1}}),
    )  # fmt: skip
    ingest(
        api,
        event("trace-create", {"id": "t", "tags": ["c", "a"],
                               "metadata": {"user": {"region": "eu"}, "new": True}}, at=1),
    )  # fmt: skip
    trace = get_trace(api, "t")
    assert trace["tags"] == ["a", "b", "c"]
    assert trace["metadata"] == {"user": {"plan": "pro", "region": "eu"}, "keep": 1, "new": True}


def test_non_object_metadata_is_kept_under_the_metadata_key(api):
    ingest(api, event("trace-create", {"id": "t", "metadata": "just text"}))
    assert get_trace(api, "t")["metadata"] == {"metadata": "just text"}


def test_input_and_output_change_only_to_non_empty_values(api):
    ingest(api, event("trace-create", {"id": "t", "input": "question", "output": {"a": 1}}))
    ingest(api, event("trace-create", {"id": "t", "input": "", "name": "n"}, at=1))
    trace = get_trace(api, "t")
    assert (trace["input"], trace["output"], trace["name"]) == ("question", {"a": 1}, "n")
    ingest(api, event("trace-create", {"id": "t", "input": "better question"}, at=2))
    assert get_trace(api, "t")["input"] == "better question"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Langfuse-Prod", "prod"),
        ("langfuse_staging", "staging"),
        ("PRODUCTION", "production"),
        ("bad env!", "default"),
        ("langfuse", "default"),
        (42, "default"),
        ("e" * 50, "e" * 40),
        (None, "default"),
    ],
)
def test_environment_is_normalised_never_an_error(api, given, stored):
    body: dict[str, Any] = {"id": "t"}
    if given is not None:
        body["environment"] = given
    result = ingest(
        api,
        event("trace-create", body),
        event(
            "span-create", {"id": "s", "traceId": "t", **({"environment": given} if given else {})}
        ),
    )
    assert result["errors"] == []
    assert get_trace(api, "t")["environment"] == stored
    assert observations(api, "t")["s"]["environment"] == stored


def test_end_time_before_start_time_is_clamped(api):
    ingest(
        api,
        event("trace-create", {"id": "t"}),
        event("span-create", {"id": "s", "traceId": "t", "startTime": iso(seconds=10),
                              "endTime": iso(seconds=4)}),
    )  # fmt: skip
    span = observations(api, "t")["s"]
    assert span["endTime"] == span["startTime"] == "2024-05-01T10:00:10.000000Z"
    assert span["latency"] == 0


def test_events_apply_in_timestamp_order_whatever_the_batch_order(api):
    ingest(
        api,
        event("trace-create", {"id": "t", "name": "late"}, at=5),
        event("trace-create", {"id": "t", "name": "early"}, at=1),
        event("span-update", {"id": "s", "traceId": "t", "name": "updated"}, at=2),
        event("span-create", {"id": "s", "traceId": "t", "name": "created"}, at=2),
    )
    assert get_trace(api, "t")["name"] == "late"
    # On a timestamp tie the create applies before the update.
    assert observations(api, "t")["s"]["name"] == "updated"


def test_generation_usage_cost_and_prompt_link(api):
    ingest(
        api,
        event("trace-create", {"id": "t"}),
        event("generation-create", {
            "id": "openai", "traceId": "t", "model": "gpt-4o", "promptName": "p",
            "promptVersion": 3, "modelParameters": {"temperature": 0.2},
            "usageDetails": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                             "prompt_tokens_details": {"cached_tokens": 30}},
            "costDetails": {"input": 0.01, "output": 0.02, "bogus": -1},
        }),
        event("generation-create", {
            "id": "legacy", "traceId": "t",
            "usage": {"promptTokens": 7, "completionTokens": 3},
        }),
        event("generation-create", {
            "id": "legacy-cost", "traceId": "t",
            "usage": {"input": 5, "output": 6, "unit": "TOKENS", "totalCost": 0.5},
        }),
    )  # fmt: skip
    obs = observations(api, "t")
    openai = obs["openai"]
    assert openai["usageDetails"] == {
        "input": 70, "input_cached_tokens": 30, "output": 20, "total": 120,
    }  # fmt: skip
    assert openai["costDetails"] == {"input": 0.01, "output": 0.02, "total": 0.03}
    assert (openai["promptName"], openai["promptVersion"]) == ("p", 3)
    assert openai["modelParameters"] == {"temperature": 0.2}
    assert obs["legacy"]["usageDetails"] == {"input": 7, "output": 3, "total": 10}
    assert obs["legacy-cost"]["usageDetails"] == {"input": 5, "output": 6, "total": 11}
    assert obs["legacy-cost"]["costDetails"] == {"total": 0.5}


# --- idempotency ---------------------------------------------------------------------


def _stored(db_url: str, table: str) -> list[dict[str, Any]]:
    found = rows(db_url, f"SELECT * FROM {table} ORDER BY id")
    for row in found:
        row.pop("updated_at")  # allowed to move on a re-send
    return found


def test_the_same_batch_twice_changes_nothing(api, db_url):
    batch = [
        event("trace-create", {"id": "t", "name": "n", "tags": ["x"], "metadata": {"a": {"b": 1}},
                               "input": {"q": "?"}}),
        event("span-create", {"id": "s", "traceId": "t", "startTime": iso()}),
        event("span-update", {"id": "s", "traceId": "t", "endTime": iso(seconds=1)}, at=1),
        event("generation-create", {"id": "g", "traceId": "t", "usage": {"input": 1}}),
        event("score-create", {"id": "sc", "traceId": "t", "name": "q", "value": "good"}),
        event("score-create", {"id": "sc2", "traceId": "t", "name": "n", "value": 0.5}),
    ]  # fmt: skip
    first = ingest(api, *batch)
    before = {t: _stored(db_url, t) for t in ("traces", "observations", "scores", "sessions")}
    second = ingest(api, *batch)
    assert second == first
    after = {t: _stored(db_url, t) for t in ("traces", "observations", "scores", "sessions")}
    assert after == before
    assert (len(after["traces"]), len(after["observations"]), len(after["scores"])) == (1, 2, 2)


# --- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'{"batch": [', "malformed JSON"),
        (b"", "empty"),
        (b'{"events": []}', "batch"),
        (b'{"batch": {"id": "x"}}', "batch"),
        (b'[{"id": "x"}]', "batch"),
        (b'"batch"', "batch"),
    ],
)
def test_bad_envelope_is_400_and_nothing_is_written(api, db_url, content, fragment):
    response = api.post(
        "/api/public/ingestion", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert fragment in f"{body['message']} {body.get('error')}"
    assert count(db_url, "traces") == 0


def test_unknown_event_type_is_a_per_event_400_and_good_neighbours_are_stored(api, db_url):
    good = event("trace-create", {"id": "t"})
    bad = event("trace-delete", {"id": "t"})
    internal = event("dataset-run-item-create", {"id": "x"})
    result = ingest(api, good, bad, internal)
    assert [s["id"] for s in result["successes"]] == [good["id"]]
    assert {e["id"]: e["status"] for e in result["errors"]} == {bad["id"]: 400, internal["id"]: 400}
    assert "trace-delete" in result["errors"][0]["error"]
    assert count(db_url, "traces") == 1


def test_missing_ids(api, db_url):
    no_envelope_id = event("trace-create", {"id": "a"})
    del no_envelope_id["id"]
    result = ingest(api, no_envelope_id)
    assert single_error(result)["id"] == "unknown"
    assert single_error(result)["status"] == 400
    # Observations need a body id: an error names the envelope.
    span = event("span-create", {"traceId": "t"})
    assert single_error(ingest(api, span))["id"] == span["id"]
    # Traces and scores without a body id are acknowledged but not stored (Langfuse).
    trace = event("trace-create", {"name": "anonymous"})
    score = event("score-create", {"traceId": "t", "name": "q", "value": 1})
    result = ingest(api, trace, score)
    assert [s["id"] for s in result["successes"]] == [trace["id"], score["id"]]
    assert count(db_url, "traces") == count(db_url, "scores") == count(db_url, "observations") == 0


@pytest.mark.parametrize(
    ("envelope", "fragment"),
    [
        ({"timestamp": "2024-05-01T10:00:00"}, "offset"),
        ({"timestamp": None}, "timestamp"),
        ({"timestamp": "soon"}, "timestamp"),
        ({"body": None}, "body"),
        ({"body": ["x"]}, "body"),
        ({"type": None}, "type"),
        ({"id": ""}, "id"),
        ({"id": 12}, "id"),
        ({"id": "x" * 801}, "id"),
    ],
)
def test_bad_envelope_fields_are_per_event_400(api, envelope, fragment):
    bad = {**event("trace-create", {"id": "t"}), **envelope}
    good = event("trace-create", {"id": "ok"})
    result = ingest(api, bad, good)
    assert [s["id"] for s in result["successes"]] == [good["id"]]
    (error,) = result["errors"]
    assert error["status"] == 400
    assert error["message"] == "Invalid request data"
    assert fragment in error["error"]


@pytest.mark.parametrize(
    ("type_", "body", "fragment"),
    [
        ("trace-create", {"id": "t", "name": 5}, "name"),
        ("trace-create", {"id": "t", "tags": "a,b"}, "tags"),
        ("trace-create", {"id": "t", "tags": [1]}, "tags"),
        ("trace-create", {"id": "t", "public": "yes"}, "public"),
        ("trace-create", {"id": "t", "timestamp": "2024-05-01 10:00"}, "timestamp"),
        ("trace-create", {"id": "t", "userId": {"id": 1}}, "userId"),
        ("trace-create", {"id": "t", "name": "n" * 1001}, "name"),
        ("span-create", {"id": "s", "traceId": "t", "startTime": "2024-05-01T10:00:00"}, "offset"),
        ("span-create", {"id": "s", "traceId": "t", "level": "INFO"}, "level"),
        ("span-create", {"id": "s", "traceId": ["t"]}, "traceId"),
        ("span-create", {"id": 7, "traceId": "t"}, "id"),
        ("generation-create", {"id": "g", "modelParameters": [1]}, "modelParameters"),
        ("generation-create", {"id": "g", "usage": {"input": -1}}, "usage.input"),
        ("generation-create", {"id": "g", "usage": {"input": 1.5}}, "usage.input"),
        ("generation-create", {"id": "g", "usage": "lots"}, "usage"),
        ("generation-create", {"id": "g", "usageDetails": [1]}, "usageDetails"),
        ("generation-create", {"id": "g", "costDetails": 3}, "costDetails"),
        ("generation-create", {"id": "g", "promptName": "p"}, "promptVersion"),
        ("generation-create", {"id": "g", "promptVersion": 2}, "promptName"),
        ("generation-create", {"id": "g", "promptName": "p", "promptVersion": "2"}, "integer"),
        ("generation-create", {"id": "g", "promptName": "p", "promptVersion": 2**40}, "between"),
        ("trace-create", {"id": "t", "timestamp": "0001-01-01T00:00:00+05:00"}, "range"),
        ("span-create", {"id": "s", "endTime": "9999-12-31T23:59:59-05:00"}, "range"),
        ("trace-create", {"id": "t", "metadata": nested(201)}, "levels deep"),
        ("trace-create", {"id": "t", "timestamp": "9999-12-31T23:00:00Z"}, "9999-01-01"),
        ("trace-create", {"id": "t", "timestamp": "9998-12-31T23:00:00-02:00"}, "9999-01-01"),
        ("span-create", {"id": "s", "startTime": "9999-06-01T00:00:00Z"}, "9999-01-01"),
        ("span-create", {"id": "s", "endTime": "9999-06-01T00:00:00Z"}, "9999-01-01"),
        ("generation-create", {"id": "g", "completionStartTime": "9999-06-01T00:00:00Z"},
         "9999-01-01"),
        ("event-create", {"id": "e", "startTime": "9999-06-01T00:00:00Z"}, "9999-01-01"),
        ("score-create", {"id": "s", "traceId": "t", "name": "n", "value": 1,
                          "timestamp": "9999-06-01T00:00:00Z"}, "9999-01-01"),
        ("observation-create", {"id": "o", "type": "AGENT"}, "type"),
        ("score-create", {"id": "s", "traceId": "t", "name": "n", "value": [1]}, "value"),
        ("score-create", {"id": "s", "name": "n", "value": 1}, "traceId"),
        ("score-create", {"id": "s", "traceId": "t", "name": "n", "value": 3,
                          "dataType": "BOOLEAN"}, "BOOLEAN"),
    ],
)  # fmt: skip
def test_wrong_field_types_are_per_event_400_naming_the_field(api, db_url, type_, body, fragment):
    result = ingest(api, event(type_, body))
    error = single_error(result)
    assert error["status"] == 400
    assert fragment in error["error"], error
    assert count(db_url, "traces") + count(db_url, "observations") + count(db_url, "scores") == 0


def test_a_time_in_year_9999_is_refused_and_its_neighbours_are_stored(api, db_url):
    # The next hour of the last one there is cannot be computed (rollups, buckets).
    late = event("trace-create", {"id": "late", "timestamp": "9999-12-31T23:00:00Z"})
    child = event("span-create", {"id": "o", "traceId": "late", "startTime": iso()})
    stamped = {**event("trace-create", {"id": "t2"}), "timestamp": "9999-12-31T23:59:59Z"}
    result = ingest(api, late, child, stamped)
    assert [e["id"] for e in result["errors"]] == [late["id"], stamped["id"]]
    assert {e["status"] for e in result["errors"]} == {400}
    assert all("before 9999-01-01" in e["error"] for e in result["errors"])
    assert result["successes"] == [{"id": child["id"], "status": 201}]
    assert count(db_url, "observations") == 1
    # The last moment accepted is stored and read back.
    last = "9998-12-31T23:59:59.999999Z"
    ingest(api, event("trace-create", {"id": "last", "timestamp": last}),
           event("span-create", {"id": "o2", "traceId": "last", "startTime": last,
                                 "endTime": last}))  # fmt: skip
    assert get_trace(api, "last")["timestamp"] == last


def test_a_trace_stored_in_the_last_hour_there_is_still_takes_observations(api, db_url):
    # Stored before ingestion refused year 9999 (its next hour does not exist).
    from datetime import datetime

    ingest(api, event("trace-create", {"id": "t"}))
    db = Database(db_url)
    try:
        with db.transaction() as conn:
            late = datetime.fromisoformat("9999-12-31T23:30:00+00:00")
            conn.run("UPDATE traces SET timestamp = ? WHERE id = 't'", [conn.dialect.ts(late)])
    finally:
        db.close()
    result = ingest(api, event("span-create", {"id": "o", "traceId": "t", "startTime": iso()}))
    assert result["errors"] == []
    assert [o["id"] for o in get_trace(api, "t")["observations"]] == ["o"]


def test_deep_nesting_up_to_the_limit_is_stored_and_read_back(api):
    # The body itself is one level: metadata may nest 199 more.
    deep = nested(199)
    ingest(api, event("trace-create", {"id": "t", "metadata": deep}))
    ingest(api, event("trace-create", {"id": "t", "metadata": deep}, at=1))
    assert get_trace(api, "t")["metadata"] == deep


def test_unknown_body_keys_are_ignored(api):
    result = ingest(api, event("trace-create", {"id": "t", "release": "1", "trace": {"x": 1},
                                                "externalId": "e", "whatever": [1]}))  # fmt: skip
    assert result["errors"] == []
    assert get_trace(api, "t")["release"] == "1"


def test_events_that_are_not_objects_are_per_event_400(api):
    good = event("trace-create", {"id": "t"})
    result = ingest(api, 1, "text", None, [good], good)
    assert [s["id"] for s in result["successes"]] == [good["id"]]
    assert [(e["id"], e["status"]) for e in result["errors"]] == [("unknown", 400)] * 4


def test_nul_characters_are_dropped_on_every_backend(api):
    # PostgreSQL text and jsonb cannot store U+0000; one NUL must not fail the batch.
    result = ingest(
        api,
        event("trace-create", {"id": "t\u0000", "name": "a\u0000b", "tags": ["x\u0000"],
                               "input": {"k\u0000": ["v\u0000"]}, "metadata": {"m": "\u0000"}}),
        event("score-create", {"id": "s", "traceId": "t", "name": "q", "value": "\u0000ok"}),
    )  # fmt: skip
    assert result["errors"] == []
    trace = get_trace(api, "t")
    assert (trace["name"], trace["tags"], trace["input"]) == ("ab", ["x"], {"k": ["v"]})
    assert trace["metadata"] == {"m": ""}
    assert trace["scores"][0]["stringValue"] == "ok"
    # A literal backslash-u-0000 text is not a NUL and is kept as written.
    ingest(api, event("trace-create", {"id": "t2", "name": "\\u0000"}))
    assert get_trace(api, "t2")["name"] == "\\u0000"


def test_a_lone_surrogate_is_a_per_event_error_and_the_rest_is_stored(api):
    # A JSON escape \ud800 without its pair is no Unicode text (no database stores
    # it); the strict parser refused the whole batch for it. Only its event is refused.
    import json

    good = event("trace-create", {"id": "fine", "name": "ok \U0001f600"})
    bad = event("trace-create", {"id": "bad", "name": "half \ud800 a pair"})
    worse = event("span-create", {"id": "s", "traceId": "fine"}, id="env-\udfff")
    body = json.dumps({"batch": [good, bad, worse]}).encode()  # ASCII, \ud800 escaped
    assert b"\\ud800" in body
    response = api.post(
        "/api/public/ingestion", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 207, response.text
    result = response.json()
    assert [s["id"] for s in result["successes"]] == [good["id"]]
    assert [(e["id"], e["status"]) for e in result["errors"]] == [
        (bad["id"], 400),
        ("env-?", 400),
    ]
    assert all("lone surrogate" in e["error"] for e in result["errors"])
    assert get_trace(api, "fine")["name"] == "ok \U0001f600"
    assert api.get("/api/public/traces/bad").status_code == 404
    # a body malformed otherwise is still a 400 for the whole batch
    broken = api.post(
        "/api/public/ingestion",
        content=b'{"batch": [\\ud800',
        headers={"Content-Type": "application/json"},
    )
    assert broken.status_code == 400


# --- size limits (an app with small limits) ------------------------------------------


@pytest.fixture
def small(api: Any, db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """A second app on the same database with max_event_bytes=2000 and
    max_request_bytes=20000, authenticated as the ``api`` fixture's project."""
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        settings = Settings(data_dir=str(path.parent))
    else:
        settings = Settings(data_dir=str(tmp_path), database_url=db_url)
    settings.max_event_bytes = 2_000
    settings.max_request_bytes = 20_000
    with TestClient(create_app(settings)) as client:
        client.auth = api.project.auth
        yield client


def test_an_oversize_event_is_a_per_event_413(small, db_url):
    big = event("trace-create", {"id": "big", "input": "x" * 3_000})
    fine = event("trace-create", {"id": "fine", "input": "y" * 500})
    result = ingest(small, big, fine)
    assert [s["id"] for s in result["successes"]] == [fine["id"]]
    (error,) = result["errors"]
    assert (error["id"], error["status"]) == (big["id"], 413)
    assert [r["id"] for r in rows(db_url, "SELECT id FROM traces")] == ["fine"]


def test_an_oversize_request_is_413_and_nothing_is_written(small, db_url):
    events = [event("trace-create", {"id": f"t{i}", "input": "z" * 1_000}) for i in range(30)]
    response = small.post("/api/public/ingestion", json={"batch": events})
    assert response.status_code == 413
    assert "20000" in response.json()["message"]
    assert count(db_url, "traces") == 0


# --- auth ----------------------------------------------------------------------------


def test_wrong_or_missing_key_is_401_with_a_message(api, db_url):
    batch = {"batch": [event("trace-create", {"id": "t"})]}
    wrong = base64.b64encode(f"{api.project.public_key}:sk-lf-wrong".encode()).decode()
    for headers in ({"Authorization": f"Basic {wrong}"}, {}, {"Authorization": "Token abc"}):
        response = api.post("/api/public/ingestion", json=batch, headers=headers, auth=None)
        assert response.status_code == 401, headers
        body = response.json()
        assert body["error"] == "UnauthorizedError"
        assert "configured the correct host" in body["message"]
    assert count(db_url, "traces") == 0


def test_bearer_public_key_may_only_send_scores(api, db_url):
    auth = {"headers": {"Authorization": f"Bearer {api.project.public_key}"}, "auth": None}
    score = event("score-create", {"id": "sc", "traceId": "t", "name": "thumbs", "value": 1})
    trace = event("trace-create", {"id": "t"})
    span = event("span-create", {"id": "s", "traceId": "t"})
    log = event("sdk-log", {"log": "x"})
    response = api.post("/api/public/ingestion", json={"batch": [score, trace, span, log]}, **auth)
    assert response.status_code == 207
    result = response.json()
    assert result["successes"] == [{"id": score["id"], "status": 201}]
    assert [(e["id"], e["status"], e["error"]) for e in result["errors"]] == [
        (trace["id"], 401, "Access Scope Denied"),
        (span["id"], 401, "Access Scope Denied"),
    ]
    assert [r["id"] for r in rows(db_url, "SELECT id FROM scores")] == ["sc"]
    assert count(db_url, "traces") == 0
    for path in ("/api/public/traces/t", "/api/public/projects"):
        denied = api.get(path, **auth)
        assert denied.status_code == 403, path
        assert "insufficient permissions" in denied.json()["message"]


def test_a_key_cannot_read_another_projects_trace(api):
    ingest(api, event("trace-create", {"id": "shared-id", "name": "A's"}))
    other = api.new_project()
    response = api.get("/api/public/traces/shared-id", auth=other.auth)
    assert response.status_code == 404
    # The same id in project B is a different trace; A's stays untouched.
    ingest(api, event("trace-create", {"id": "shared-id", "name": "B's"}), auth=other.auth)
    assert api.get("/api/public/traces/shared-id", auth=other.auth).json()["name"] == "B's"
    assert get_trace(api, "shared-id")["name"] == "A's"


def test_fixed_fields_come_from_the_earliest_event_that_has_them(api):
    # The update (later) names the trace; the create (earlier) does not.
    ingest(
        api,
        event("span-create", {"id": "late-trace", "name": "s"}, at=0),
        event("span-update", {"id": "late-trace", "traceId": "tt"}, at=1),
    )
    observation = api.get("/api/public/observations/late-trace").json()
    assert observation["traceId"] == "tt"


def test_resent_numeric_score_is_not_rewritten(api):
    score = event("score-create", {"id": "sc", "traceId": "t", "name": "q", "value": 0.5})
    ingest(api, score)
    first = api.get("/api/public/v2/scores/sc").json()["updatedAt"]
    ingest(api, score)
    assert api.get("/api/public/v2/scores/sc").json()["updatedAt"] == first


def test_indexed_text_over_the_byte_limit_is_a_per_event_error(api):
    long_korean = "가" * 900  # 900 characters, 2,700 UTF-8 bytes: too big for an index
    body = ingest(
        api,
        event("trace-create", {"id": "ok-trace", "name": "가" * 600}, id="ok"),
        event("trace-create", {"id": "big-name", "name": long_korean}, id="bad-name"),
        event("trace-create", {"id": "big-user", "userId": long_korean}, id="bad-user"),
        event("span-create", {"id": "big-span", "traceId": "t", "name": long_korean}, id="bad-obs"),
    )
    assert [s["id"] for s in body["successes"]] == ["ok"]
    assert {e["id"] for e in body["errors"]} == {"bad-name", "bad-user", "bad-obs"}
    assert all("bytes" in e["error"] for e in body["errors"])
    assert api.get("/api/public/traces/ok-trace").json()["name"] == "가" * 600
