"""Evaluators, LLM connections and online evaluation rules through the public API, the
evaluation worker (ticked with an injected clock) and a local OpenAI-compatible stub
on loopback (tests/llm_stub.py) that answers fixed judgements."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers import event, ingest
from lanterna.server.app import create_app
from lanterna.store.db import Database
from lanterna.timeutil import now
from llm_stub import LlmStub, llm_stub
from support import SECRETS, Api, make_settings, new_project

pytestmark = pytest.mark.clickhouse


@pytest.fixture
def app_api(db_url: str, events_url: str, tmp_path: Path) -> Iterator[Api]:
    """The app with the loopback stub allowed, background loops off (tests tick)."""
    settings = make_settings(db_url, tmp_path)
    settings.events_url = events_url
    settings.outbound_allow = "127.0.0.1"
    settings.evaluation_tick_seconds = 0
    settings.alert_tick_seconds = 0
    settings.llm_timeout_seconds = 1
    app = create_app(settings)
    project = new_project(db_url)
    with Api(app, raise_server_exceptions=True) as client:
        client.project = project
        client.auth = project.auth
        yield client


@pytest.fixture
def stub() -> Iterator[LlmStub]:
    with llm_stub() as s:
        yield s


def later() -> Any:
    """The worker's clock: a minute from now (past the settle delay of new traces)."""
    return now() + timedelta(minutes=1)


def tick(api: Api) -> int:
    """Run the worker until it has looked at every new trace; evaluations made."""
    return int(api.app.state.runtime.evaluation.run_until_idle(later()))


def runs(api: Api) -> list[dict[str, Any]]:
    rt = api.app.state.runtime
    return list(
        rt.read_sync(lambda c: rt.store.evaluations.recent_runs(c, api.project.id, limit=5000))
    )


# The LLM keys these tests store: the suite's log audit checks none is ever logged.
SECRETS.update({"sk-stub-secret-1234", "sk-other-secret-9876"})


def connect(
    api: Api, stub: LlmStub, provider: str = "judge-stub", key: str = "sk-stub-secret-1234"
):
    response = api.put(
        "/api/public/llm-connections",
        json={
            "provider": provider,
            "adapter": "openai",
            "secretKey": key,
            "baseURL": stub.base_url,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


JUDGE = {
    "name": "helpfulness",
    "type": "llm_as_judge",
    "prompt": "Question: {{question}}\nAnswer: {{answer}}\nHow helpful is the answer?",
    "outputDefinition": {
        "dataType": "NUMERIC",
        "reasoning": {"description": "why"},
        "score": {"description": "0 to 1", "minValue": 0, "maxValue": 1},
    },
    "modelConfig": {"provider": "judge-stub", "model": "gpt-4o-mini"},
}
MAPPING = [
    {"variable": "question", "source": "input", "jsonPath": "$.question"},
    {"variable": "answer", "source": "output"},
]


def judge_rule(api: Api, sampling: float = 1.0, filter_: list[Any] | None = None) -> dict[str, Any]:
    assert api.post("/api/public/unstable/evaluators", json=JUDGE).status_code == 200
    body = {
        "name": "judge all",
        "evaluator": {"name": "helpfulness"},
        "target": "trace",
        "enabled": True,
        "sampling": sampling,
        "mapping": MAPPING,
        "filter": filter_ or [],
    }
    response = api.post("/api/public/unstable/evaluation-rules", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def trace(trace_id: str, **extra: Any) -> dict[str, Any]:
    body = {
        "id": trace_id,
        "name": "chat",
        "input": {"question": "What is 2+2?"},
        "output": "4",
        **extra,
    }
    return event("trace-create", body)


# --- LLM connections ---------------------------------------------------------------------


def test_connection_key_is_sealed_at_rest_and_never_returned(app_api, stub):
    made = connect(app_api, stub)
    assert made["displaySecretKey"] == "...1234"
    assert "sk-stub-secret-1234" not in str(made)
    assert made["baseURL"] == stub.base_url and made["adapter"] == "openai"
    listed = app_api.get("/api/public/llm-connections").json()
    assert [c["provider"] for c in listed["data"]] == ["judge-stub"]
    assert "sk-stub-secret" not in str(listed)
    # An upsert by provider keeps the id and replaces the key.
    again = connect(app_api, stub, key="sk-other-secret-9876")
    assert again["id"] == made["id"] and again["displaySecretKey"] == "...9876"
    db = Database(app_api.app.state.runtime.db.url)
    try:
        with db.read() as conn:
            row = conn.one("SELECT * FROM llm_connections")
    finally:
        db.close()
    assert row is not None and "sk-other-secret" not in str(row)
    assert str(row["secret_sealed"]).startswith("v1:")
    gone = app_api.delete(f"/api/public/llm-connections/{made['id']}")
    assert gone.json() == {"message": "LLM connection successfully deleted"}
    assert app_api.delete(f"/api/public/llm-connections/{made['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "x", "adapter": "openai"}, "secretKey"),
        ({"provider": "x", "adapter": "nope", "secretKey": "k"}, "adapter"),
        ({"provider": "x", "adapter": "openai", "secretKey": "k", "baseURL": "ftp://h"}, "baseURL"),
        ({"adapter": "openai", "secretKey": "k"}, "provider"),
    ],
)
def test_bad_connections_are_400_naming_the_field(app_api, body, field):
    response = app_api.put("/api/public/llm-connections", json=body)
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]


# --- evaluators and rules ------------------------------------------------------------------


def test_evaluators_are_versioned_by_name_and_checked(app_api, stub):
    no_connection = app_api.post("/api/public/unstable/evaluators", json=JUDGE)
    assert no_connection.status_code == 422
    assert no_connection.json()["error"] == "evaluator_preflight_failed"
    assert no_connection.json()["code"] == "evaluator_preflight_failed"  # Langfuse's envelope
    connect(app_api, stub)
    first = app_api.post("/api/public/unstable/evaluators", json=JUDGE).json()
    assert (first["version"], first["variables"]) == (1, ["question", "answer"])
    second = app_api.post("/api/public/unstable/evaluators", json={**JUDGE, "prompt": "{{x}}"})
    assert second.json()["id"] == first["id"] and second.json()["version"] == 2
    listed = app_api.get("/api/public/unstable/evaluators").json()
    assert [(e["name"], e["version"]) for e in listed["data"]] == [("helpfulness", 2)]
    code = app_api.post(
        "/api/public/unstable/evaluators",
        json={"name": "c", "type": "code", "sourceCode": "x", "sourceCodeLanguage": "PYTHON"},
    )
    assert code.status_code == 400 and "code evaluators" in code.json()["error"]
    bad_regex = app_api.post(
        "/api/public/unstable/evaluators",
        json={"name": "r", "type": "regex", "config": {"pattern": "(a)\\1"}},
    )
    assert bad_regex.status_code == 400 and "RE2" in bad_regex.json()["error"]
    bad_output = app_api.post(
        "/api/public/unstable/evaluators", json={**JUDGE, "outputDefinition": {"dataType": "TEXT"}}
    )
    assert bad_output.status_code == 400 and "dataType" in bad_output.json()["error"]
    got = app_api.get(f"/api/public/unstable/evaluators/{first['id']}").json()
    assert got["prompt"] == "{{x}}" and got["modelConfig"]["provider"] == "judge-stub"


def test_rules_are_checked_listed_changed_and_deleted(app_api, stub):
    connect(app_api, stub)
    rule = judge_rule(app_api, sampling=0.5)
    assert rule["evaluator"]["name"] == "helpfulness" and rule["status"] == "active"
    assert rule["sampling"] == 0.5 and rule["target"] == "trace"
    assert rule["evaluators"][0]["mapping"][0]["jsonPath"] == "$.question"
    bad_filter = {
        "name": "b",
        "evaluator": {"name": "helpfulness"},
        "enabled": True,
        "target": "trace",
        "filter": [{"type": "string", "column": "nope", "operator": "=", "value": "x"}],
    }
    refused = app_api.post("/api/public/unstable/evaluation-rules", json=bad_filter)
    assert refused.status_code == 400 and "nope" in str(refused.json())
    unknown = app_api.post(
        "/api/public/unstable/evaluation-rules",
        json={**bad_filter, "filter": [], "evaluator": {"name": "ghost"}},
    )
    assert unknown.status_code == 400 and "ghost" in unknown.json()["error"]
    other_target = app_api.post(
        "/api/public/unstable/evaluation-rules",
        json={**bad_filter, "filter": [], "target": "session"},
    )
    assert other_target.status_code == 400 and "'session'" in other_target.json()["error"]
    bad_var = app_api.post(
        "/api/public/unstable/evaluation-rules",
        json={**bad_filter, "filter": [], "mapping": [{"variable": "zzz", "source": "input"}]},
    )
    assert bad_var.status_code == 400 and "zzz" in bad_var.json()["error"]
    changed = app_api.patch(
        f"/api/public/unstable/evaluation-rules/{rule['id']}",
        json={"enabled": False, "sampling": 0.25},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["enabled"], changed.json()["sampling"]) == (False, 0.25)
    assert changed.json()["status"] == "inactive"
    listed = app_api.get("/api/public/unstable/evaluation-rules").json()
    assert [r["id"] for r in listed["data"]] == [rule["id"]]
    evaluator_id = rule["evaluator"]["id"]
    in_use = app_api.delete(f"/api/public/unstable/evaluators/{evaluator_id}")
    assert in_use.status_code == 409
    assert app_api.delete(f"/api/public/unstable/evaluation-rules/{rule['id']}").status_code == 200
    assert app_api.get(f"/api/public/unstable/evaluation-rules/{rule['id']}").status_code == 404
    assert app_api.delete(f"/api/public/unstable/evaluators/{evaluator_id}").status_code == 200


# --- LLM-as-a-judge against the stub -------------------------------------------------------


def test_judge_scores_a_new_trace_and_tracks_its_own_cost_apart(app_api, stub):
    connect(app_api, stub)
    judge_rule(app_api)
    ingest(app_api, trace("t-1", environment="production"))
    assert tick(app_api) == 1

    (request,) = stub.requests
    assert request["model"] == "gpt-4o-mini"
    assert "Question: What is 2+2?\nAnswer: 4" in request["messages"][1]["content"]
    assert stub.headers[0]["Authorization"] == "Bearer sk-stub-secret-1234"

    scores = app_api.get("/api/public/v2/scores", params={"name": "helpfulness"}).json()["data"]
    (score,) = scores
    assert (score["traceId"], score["value"], score["dataType"]) == ("t-1", 0.8, "NUMERIC")
    assert (score["comment"], score["source"]) == ("mostly right", "EVAL")
    assert score["environment"] == "production"

    judged = app_api.get("/api/public/traces", params={"environment": "lanterna-evaluation"})
    (judge_trace,) = judged.json()["data"]
    assert judge_trace["name"] == "evaluator:helpfulness"
    assert score["metadata"]["judgeTraceId"] == judge_trace["id"]
    detail = app_api.get(f"/api/public/traces/{judge_trace['id']}").json()
    (generation,) = detail["observations"]
    assert generation["usageDetails"] == {"input": 120, "output": 30, "total": 150}
    assert generation["calculatedTotalCost"] > 0
    assert detail["totalCost"] == pytest.approx(generation["calculatedTotalCost"])
    # The app's own trace carries none of it, and the judge's trace is never judged.
    app_trace = app_api.get("/api/public/traces/t-1").json()
    assert app_trace["totalCost"] == 0
    assert tick(app_api) == 0 and len(stub.requests) == 1


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda s: setattr(s, "status", 500), "answered 500"),
        (lambda s: setattr(s, "content", "I think it is fine."), "no JSON object"),
        (lambda s: setattr(s, "content", '{"score": 7, "reasoning": "x"}'), "outside"),
    ],
)
def test_a_failing_judge_is_a_recorded_error_not_a_crash(app_api, stub, setup, message):
    connect(app_api, stub)
    judge_rule(app_api)
    setup(stub)
    ingest(app_api, trace("t-err"))
    assert tick(app_api) == 0
    (run,) = runs(app_api)
    assert run["status"] == "error" and message in run["error"], run
    assert "sk-stub-secret" not in run["error"]
    assert app_api.get("/api/public/v2/scores").json()["data"] == []


def test_a_judge_that_times_out_never_blocks_ingestion(app_api, stub):
    connect(app_api, stub)
    judge_rule(app_api)
    ingest(app_api, trace("t-slow"))
    stub.gate = threading.Event()  # the stub holds every answer until the test is done
    worker = threading.Thread(target=tick, args=(app_api,))
    worker.start()
    try:
        # While the judge hangs, ingestion answers as usual.
        ingest(app_api, trace("t-meanwhile"))
        worker.join(30)
    finally:
        stub.gate.set()
    failed = [r for r in runs(app_api) if r["object_id"] == "t-slow"]
    assert failed and failed[0]["status"] == "error" and "no answer within" in failed[0]["error"]
    assert app_api.get("/api/public/traces/t-meanwhile").status_code == 200


def test_the_judge_refuses_a_private_endpoint_not_allowlisted(db_url, tmp_path, stub):
    settings = make_settings(db_url, tmp_path)
    settings.evaluation_tick_seconds = settings.alert_tick_seconds = 0
    project = new_project(db_url)
    with Api(create_app(settings)) as api:
        api.project, api.auth = project, project.auth
        connect(api, stub)
        judge_rule(api)
        ingest(api, trace("t-ssrf"))
        tick(api)
        (run,) = runs(api)
    assert run["status"] == "error" and "refused" in run["error"]
    assert stub.requests == []


def test_online_rule_samples_about_a_tenth_of_1000_traces(app_api, stub):
    connect(app_api, stub)
    rule = judge_rule(
        app_api,
        sampling=0.1,
        filter_=[{"type": "string", "column": "name", "operator": "=", "value": "chat"}],
    )
    for start in range(0, 1000, 250):
        ingest(app_api, *(trace(f"bulk-{i}") for i in range(start, start + 250)))
    ingest(app_api, event("trace-create", {"id": "other-name", "name": "batch-job"}))
    scored = tick(app_api)
    print(f"\n1,000 traces at 10 % sampling: {scored} scored")
    assert 70 <= scored <= 130
    scores = app_api.get("/api/public/v2/scores", params={"limit": 100, "page": 1}).json()
    assert scores["meta"]["totalItems"] == scored
    judged = {r["object_id"] for r in runs(app_api)}
    assert all(t.startswith("bulk-") for t in judged)  # never its own traces, nor other names
    assert len(stub.requests) == scored
    # Sampling is stable: the same rule picks the same traces.
    from lanterna.evaluation.worker import sampled

    assert judged == {f"bulk-{i}" for i in range(1000) if sampled(rule["id"], f"bulk-{i}", 0.1)}


# --- deterministic evaluators through the worker ---------------------------------------------


@pytest.mark.parametrize(
    ("kind", "config", "output", "value"),
    [
        ("exact_match", {"expected": " 4 "}, "4", 1.0),
        ("contains", {"value": "PARIS", "caseSensitive": False}, "It is Paris.", 1.0),
        ("regex", {"pattern": "^(a+)+$"}, "a" * 30000 + "b", 0.0),
        ("json_valid", {}, '{"a": 1}', 1.0),
        (
            "json_schema",
            {
                "schema": {
                    "type": "object",
                    "required": ["a"],
                    "properties": {"a": {"type": "string", "pattern": "^x"}},
                }
            },
            '{"a": "y"}',
            0.0,
        ),
        ("numeric", {"expected": 10, "tolerance": 0.1, "relative": True}, "10.5", 1.0),
        ("levenshtein", {"expected": "kitten"}, "sitting", pytest.approx(1 - 3 / 7, abs=1e-6)),
    ],
)
def test_deterministic_evaluators_score_new_traces(app_api, kind, config, output, value):
    made = app_api.post(
        "/api/public/unstable/evaluators",
        json={"name": f"check-{kind}", "type": kind, "config": config},
    )
    assert made.status_code == 200, made.text
    rule = {"name": "r", "evaluator": {"name": f"check-{kind}"}, "target": "trace", "enabled": True}
    assert app_api.post("/api/public/unstable/evaluation-rules", json=rule).status_code == 200
    ingest(app_api, event("trace-create", {"id": "d-1", "name": "x", "output": output}))
    assert tick(app_api) == 1
    (score,) = app_api.get("/api/public/v2/scores").json()["data"]
    assert score["value"] == value and score["name"] == f"check-{kind}"
    assert score["comment"]


# --- the lease, and where the worker runs ----------------------------------------------------


def test_one_worker_at_a_time_evaluates_a_rule(app_api):
    from lanterna.evaluation.worker import EvaluationWorker

    rt = app_api.app.state.runtime
    app_api.post("/api/public/unstable/evaluators", json={"name": "ok", "type": "json_valid"})
    rule = app_api.post(
        "/api/public/unstable/evaluation-rules",
        json={"name": "r", "evaluator": {"name": "ok"}, "target": "trace", "enabled": True},
    ).json()
    ingest(app_api, *(event("trace-create", {"id": f"l-{i}", "output": "{}"}) for i in range(5)))
    other = EvaluationWorker(
        rt.db, rt.store, rt.writer.run_sync, rt.evaluation.evaluate, owner="other-process"
    )
    at = later()
    # The other process holds the rule's lease (it crashed mid-turn, say) ...
    taken = rt.writer.run_sync(
        lambda c: rt.store.evaluations.claim_rule(
            c, app_api.project.id, rule["id"], "other-process", at, at + timedelta(minutes=15)
        )
    )
    assert taken
    # ... so this one leaves the rule alone until the lease runs out.
    assert rt.evaluation.tick(at) == []
    assert rt.evaluation.tick(at + timedelta(minutes=14)) == []
    (turn,) = rt.evaluation.tick(at + timedelta(minutes=16))
    assert turn.evaluated == 5
    # The other process's late finish is refused: nothing is recorded twice.
    assert not rt.writer.run_sync(
        lambda c: rt.store.evaluations.advance_rule(
            c,
            app_api.project.id,
            rule["id"],
            "other-process",
            None,
            [
                {
                    "rule_id": rule["id"],
                    "evaluator_id": "x",
                    "object_type": "TRACE",
                    "object_id": "l-0",
                    "status": "ok",
                }
            ],
        )
    )
    # Afterwards either process may take a turn; the traces are not evaluated again.
    assert all(t.evaluated == 0 for t in other.tick(at + timedelta(minutes=17)))
    assert len(runs(app_api)) == 5


def test_lanterna_worker_runs_the_evaluation_rules(app_api, capsys):
    from lanterna.cli import main

    app_api.post("/api/public/unstable/evaluators", json={"name": "ok", "type": "json_valid"})
    app_api.post(
        "/api/public/unstable/evaluation-rules",
        json={"name": "r", "evaluator": {"name": "ok"}, "target": "trace", "enabled": True},
    )
    url = app_api.app.state.runtime.db.url
    args = (
        ["--data-dir", str(Path(url.removeprefix("sqlite:///")).parent)]
        if url.startswith("sqlite:///")
        else ["--database-url", url]
    )
    assert main(["worker", "--once", *args]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["evaluated 0 rule(s)", "ran 1 evaluation rule(s): 0 evaluation(s)"]


# --- rules on experiments (dataset run items) ------------------------------------------------


def dataset_with_items(api: Api, name: str, expected: dict[str, str]) -> dict[str, Any]:
    """A dataset with one item per ``{item id: expected output}``."""
    made = api.post("/api/public/v2/datasets", json={"name": name})
    assert made.status_code == 200, made.text
    for item_id, output in expected.items():
        body = {"datasetName": name, "id": item_id, "input": {"question": item_id},
                "expectedOutput": output, "metadata": {"difficulty": "easy"}}  # fmt: skip
        assert api.post("/api/public/dataset-items", json=body).status_code == 200
    return made.json()


def link(api: Api, run: str, item_id: str, trace_id: str, **extra: Any) -> None:
    body = {"runName": run, "datasetItemId": item_id, "traceId": trace_id, **extra}
    response = api.post("/api/public/dataset-run-items", json=body)
    assert response.status_code == 200, response.text


def test_an_experiment_rule_scores_new_run_items_against_their_expected_output(app_api):
    qa = dataset_with_items(app_api, "qa", {"q-1": "4", "q-2": "Paris"})
    other = dataset_with_items(app_api, "other", {"o-1": "x"})
    made = app_api.post(
        "/api/public/unstable/evaluators", json={"name": "exact", "type": "exact_match"}
    )
    assert made.status_code == 200 and made.json()["variables"] == ["output", "expected"]
    body = {
        "name": "exact on qa",
        "evaluator": {"name": "exact"},
        "target": "experiment",
        "enabled": True,
        "filter": [
            {"type": "stringOptions", "column": "datasetId", "operator": "any of",
             "value": [qa["id"]]}
        ],
    }  # fmt: skip
    rule = app_api.post("/api/public/unstable/evaluation-rules", json=body)
    assert rule.status_code == 200, rule.text
    assert rule.json()["target"] == "experiment"
    # The app's traces for the run: one right, one wrong, one in another dataset.
    ingest(
        app_api,
        event("trace-create", {"id": "run-q1", "name": "task", "output": "4",
                               "environment": "ci"}),
        event("trace-create", {"id": "run-q2", "name": "task", "output": "Lyon"}),
        event("trace-create", {"id": "run-o1", "name": "task", "output": "x"}),
    )  # fmt: skip
    # Traces alone are not run items: nothing to evaluate yet.
    assert tick(app_api) == 0
    link(app_api, "run-1", "q-1", "run-q1")
    link(app_api, "run-1", "q-2", "run-q2")
    link(app_api, "run-1", "o-1", "run-o1")
    assert tick(app_api) == 2
    scores = app_api.get("/api/public/v2/scores", params={"name": "exact"}).json()["data"]
    by_trace = {s["traceId"]: s for s in scores}
    assert {t: s["value"] for t, s in by_trace.items()} == {"run-q1": 1.0, "run-q2": 0.0}
    assert by_trace["run-q1"]["environment"] == "ci" and by_trace["run-q1"]["source"] == "EVAL"
    assert by_trace["run-q1"]["metadata"]["ruleId"] == rule.json()["id"]
    recorded = {(r["object_type"], r["status"]) for r in runs(app_api)}
    assert recorded == {("DATASET_RUN_ITEM", "ok")}
    # The run comparison shows the scores per item.
    run = app_api.get("/api/public/datasets/qa/runs/run-1").json()
    assert len(run["datasetRunItems"]) == 2
    assert tick(app_api) == 0  # each run item once
    assert other["id"] != qa["id"]


def test_a_judge_on_experiments_reads_the_expected_output_and_scores_the_observation(app_api, stub):
    connect(app_api, stub)
    dataset_with_items(app_api, "capitals", {"c-1": "Paris"})
    judge = {
        **JUDGE,
        "name": "correctness",
        "prompt": "Q: {{question}}\nA: {{answer}}\nExpected: {{truth}} ({{level}})",
    }
    assert app_api.post("/api/public/unstable/evaluators", json=judge).status_code == 200
    mapping = [
        {"variable": "question", "source": "input", "jsonPath": "$.q"},
        {"variable": "answer", "source": "output"},
        {"variable": "truth", "source": "expected_output"},
        {"variable": "level", "source": "experiment_item_metadata", "jsonPath": "$.difficulty"},
    ]
    body = {"name": "judge experiments", "evaluator": {"name": "correctness"},
            "target": "dataset", "enabled": True, "mapping": mapping}  # fmt: skip
    rule = app_api.post("/api/public/unstable/evaluation-rules", json=body)
    assert rule.status_code == 200, rule.text
    assert rule.json()["target"] == "experiment"  # "dataset" is its other name
    ingest(
        app_api,
        event("trace-create", {"id": "exp-t", "name": "capital", "output": "whole trace"}),
        event("generation-create", {"id": "exp-g", "traceId": "exp-t", "name": "llm",
                                    "input": {"q": "Capital of France?"}, "output": "Paris"}),
    )  # fmt: skip
    link(app_api, "judged-run", "c-1", "exp-t", observationId="exp-g")
    assert tick(app_api) == 1
    (request,) = stub.requests
    prompt = request["messages"][1]["content"]
    assert prompt == "Q: Capital of France?\nA: Paris\nExpected: Paris (easy)"
    (score,) = app_api.get("/api/public/v2/scores", params={"name": "correctness"}).json()["data"]
    assert (score["traceId"], score["observationId"], score["value"]) == ("exp-t", "exp-g", 0.8)
    # The judge's own trace is in its own environment, never among the app's costs.
    judged = app_api.get("/api/public/traces", params={"environment": "lanterna-evaluation"})
    assert [t["name"] for t in judged.json()["data"]] == ["evaluator:correctness"]


def test_experiment_rules_are_checked_against_their_target(app_api):
    dataset_with_items(app_api, "qa", {"q-1": "4"})
    app_api.post("/api/public/unstable/evaluators", json={"name": "exact", "type": "exact_match"})
    base = {"name": "r", "evaluator": {"name": "exact"}, "enabled": True}
    rules = "/api/public/unstable/evaluation-rules"
    expected_on_traces = app_api.post(
        rules,
        json={**base, "target": "trace",
              "mapping": [{"variable": "expected", "source": "expected_output"}]},
    )  # fmt: skip
    assert expected_on_traces.status_code == 400
    assert "only valid for target 'experiment'" in expected_on_traces.json()["error"]
    tools_on_traces = app_api.post(
        rules, json={**base, "target": "trace", "mapping": [{"variable": "output",
                                                              "source": "tool_calls"}]}
    )  # fmt: skip
    assert tools_on_traces.status_code == 400
    assert "'observation' or 'experiment'" in tools_on_traces.json()["error"]
    by_name = app_api.post(
        rules,
        json={**base, "target": "experiment",
              "filter": [{"type": "string", "column": "name", "operator": "=", "value": "x"}]},
    )  # fmt: skip
    assert by_name.status_code == 400 and "datasetId" in by_name.json()["error"]
    unknown = app_api.post(
        rules,
        json={**base, "target": "experiment",
              "filter": [{"type": "stringOptions", "column": "datasetId",
                          "operator": "any of", "value": ["no-such-dataset"]}]},
    )  # fmt: skip
    assert unknown.status_code == 400 and "no-such-dataset" in unknown.json()["error"]
    # A trace rule moved to experiments keeps its checks and starts from now.
    made = app_api.post(rules, json={**base, "target": "trace"}).json()
    moved = app_api.patch(f"{rules}/{made['id']}", json={"target": "experiment"})
    assert moved.status_code == 200 and moved.json()["target"] == "experiment"
    expected = [{"variable": "expected", "source": "expected_output"}]
    bad_move = app_api.patch(f"{rules}/{made['id']}", json={"target": "trace", "mapping": expected})
    assert bad_move.status_code == 400
