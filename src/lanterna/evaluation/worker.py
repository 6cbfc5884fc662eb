"""The online evaluation worker: :meth:`EvaluationWorker.tick` runs every enabled rule
over the observations (target ``observation``), traces (target ``trace``) or dataset
run items (target ``experiment``) that arrived since it last looked, once across every
process sharing
the database (a lease per rule, as the alert evaluator's), and records each outcome.
``alerts.evaluator.EvaluatorLoop`` ticks it in a background thread (``lanterna serve``,
``lanterna worker``).

Per rule and tick: take the lease; read up to ``batch`` traces that arrived after the
rule's cursor (and at least ``settle`` ago, so a batch stamped earlier but committed
later is not skipped); keep those matching the rule's filter, not in the
``lanterna-evaluation`` environment, and sampled (a hash of rule and trace id below
the rate: the same trace is always in or out); evaluate each; then, in one
transaction, move the cursor, record the runs and write the scores and the judge's
own traces (only if the lease is still ours). A run item is evaluated as its
observation (when it names one) or its trace, with the item's expected output and
metadata as the ``expected_output`` and ``experiment_item_metadata`` sources (and
``expected`` for the deterministic evaluators); its score lands on that trace and
observation. An observation is evaluated with its own input, output, metadata and
the tool calls in its output (``tool_calls``); its score lands on it (its id and its
trace's); observations in ``lanterna-evaluation`` (the judge's own generations) are
never looked at, whatever the filter says. A judge that fails, times out or
answers nonsense gives a run with status ``error`` and its message, never an
exception out of the tick; ingestion never waits for any of it.

The judge's call is traced: a trace ``evaluator:<name>`` in the environment
``lanterna-evaluation`` with one generation (model, messages, answer, token usage;
its cost priced like any generation), so its cost shows there and never in the
app's environments.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from ..alerts.secretbox import SecretBox
from ..ingest.environment import EVALUATION_ENVIRONMENT
from ..ingest.events import DomainEvent
from ..ingest.langfuse_events import read_event
from ..store.db import Conn, Database
from ..store.filters import conditions_of
from ..store.interface import Store
from ..timeutil import format_ts
from ..timeutil import now as utc_now
from . import deterministic
from .connections import endpoint_of
from .definitions import dataset_filter, observation_filter, variables
from .judge import JudgeAnswerError, fill, instructions, parse_answer, render
from .llm import Caller, LlmError
from .tool_calls import matches, tool_calls_of

log = logging.getLogger("lanterna.evaluation")

T = TypeVar("T")
Write = Callable[[Callable[[Conn], T]], T]
#: Ids the worker makes (the judge trace's, its generation's): uuid4 by default.
NewId = Callable[[], str]


def sampled(rule_id: str, trace_id: str, rate: float) -> bool:
    """Whether a rule with sampling ``rate`` evaluates a trace (stable per pair)."""
    if rate >= 1:
        return True
    digest = hashlib.sha256(f"{rule_id}\x00{trace_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def score_id(rule_id: str, object_id: str) -> str:
    """The score a rule gives an object: the same id each time (a rerun overwrites)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"lanterna-eval:{rule_id}:{object_id}"))


@dataclass
class Outcome:
    """One evaluation: the run to record and the events to write (score, judge trace)."""

    run: dict[str, Any]
    events: list[DomainEvent] = field(default_factory=list)


def _event(kind: str, body: dict[str, Any], at: datetime) -> DomainEvent:
    _id, domain = read_event(
        {"id": str(uuid.uuid4()), "type": kind, "timestamp": format_ts(at), "body": body}
    )
    assert domain is not None
    return domain


class Evaluate:
    """Evaluates one object (a trace's ``input``/``output``/``metadata``) with one
    evaluator: deterministic in-process, LLM-as-a-judge through the caller."""

    def __init__(
        self,
        store: Store,
        read: Callable[[Callable[[Conn], Any]], Any],
        box: Callable[[], SecretBox],
        caller: Caller,
        new_id: NewId = lambda: str(uuid.uuid4()),
    ) -> None:
        self.store = store
        self.read = read
        self.box = box
        self.caller = caller
        self.new_id = new_id

    def __call__(
        self,
        project_id: str,
        evaluator: dict[str, Any],
        mapping: list[dict[str, Any]] | None,
        obj: dict[str, Any],
        *,
        rule_id: str,
        at: datetime,
    ) -> Outcome:
        """Evaluate ``obj`` (``id``, ``environment``, ``input``, ``output``,
        ``metadata``; a run item adds ``objectType``, ``traceId``, ``observationId``,
        ``expected_output``, ``experiment_item_metadata``); the run and the events, never
        an exception for a judge's failure."""
        run: dict[str, Any] = {"rule_id": rule_id, "evaluator_id": evaluator["id"],
                               "object_type": obj.get("objectType", "TRACE"),
                               "object_id": obj["id"]}  # fmt: skip
        values = fill(mapping or evaluator.get("mapping") or [], variables(evaluator), obj)
        score: dict[str, Any] = {
            "id": score_id(rule_id, obj["id"]),
            "traceId": obj.get("traceId", obj["id"]),
            "name": evaluator["name"],
            "source": "EVAL",
            "environment": obj.get("environment") or "default",
            "metadata": {"evaluatorId": evaluator["id"], "ruleId": rule_id},
        }
        if obj.get("observationId"):
            score["observationId"] = obj["observationId"]
        if run["object_type"] == "DATASET_RUN_ITEM":
            score["metadata"]["datasetRunItemId"] = obj["id"]
        if evaluator["type"] != "llm_as_judge":
            try:
                verdict = deterministic.run(evaluator["type"], evaluator["config"] or {}, values)
            except deterministic.EvaluatorConfigError as exc:
                return Outcome({**run, "status": "error", "error": exc.message})
            score.update(value=verdict.value, dataType=verdict.data_type, comment=verdict.comment)
            return Outcome({**run, "status": "ok", "score_id": score["id"]},
                           [_event("score-create", score, at)])  # fmt: skip
        return self._judge(project_id, evaluator, values, obj, run, score, at)

    def _judge(
        self,
        project_id: str,
        evaluator: dict[str, Any],
        values: dict[str, Any],
        obj: dict[str, Any],
        run: dict[str, Any],
        score: dict[str, Any],
        at: datetime,
    ) -> Outcome:
        model = evaluator["model_config"]
        connections = self.store.evaluations
        provider = model["provider"]
        row = self.read(lambda c: connections.connection_by_provider(c, project_id, provider))
        if row is None:
            message = f"no LLM connection named {model['provider']!r} in the project"
            return Outcome({**run, "status": "error", "error": message})
        definition = evaluator["output_definition"]
        messages = [
            {"role": "system", "content": instructions(definition)},
            {"role": "user", "content": render(evaluator["prompt"], values)},
        ]
        try:
            completion = self.caller.chat(endpoint_of(self.box(), row), model["model"], messages)
        except LlmError as exc:
            return Outcome({**run, "status": "error", "error": exc.message})
        judge_trace = self.new_id()
        end = at + timedelta(milliseconds=completion.latency_ms)
        env = EVALUATION_ENVIRONMENT
        events = [
            _event("trace-create", {
                "id": judge_trace, "name": f"evaluator:{evaluator['name']}", "environment": env,
                "input": messages, "output": completion.text,
                "metadata": {"evaluatorId": evaluator["id"], "ruleId": rule_or_none(run),
                             "targetTraceId": score["traceId"],
                             "targetObservationId": score.get("observationId")},
            }, at),
            _event("generation-create", {
                "id": self.new_id(), "traceId": judge_trace, "name": "judge", "environment": env,
                "model": completion.model, "input": messages, "output": completion.text,
                "startTime": format_ts(at), "endTime": format_ts(end),
                "usageDetails": completion.usage or None,
            }, at),
        ]  # fmt: skip
        run["judge_trace_id"] = judge_trace
        try:
            judgement = parse_answer(completion.text, definition)
        except JudgeAnswerError as exc:
            return Outcome({**run, "status": "error", "error": str(exc)}, events)
        value: Any = (
            judgement.string_value if judgement.data_type == "CATEGORICAL" else (judgement.value)
        )
        score.update(value=value, dataType=judgement.data_type, comment=judgement.reasoning)
        score["metadata"]["judgeTraceId"] = judge_trace
        events.append(_event("score-create", score, at))
        return Outcome({**run, "status": "ok", "score_id": score["id"]}, events)


def rule_or_none(run: dict[str, Any]) -> str | None:
    """The run's rule id (None for a run outside a rule)."""
    value = run.get("rule_id")
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class RuleTick:
    """What one rule's turn did: traces looked at, evaluated, failed."""

    project_id: str
    rule_id: str
    looked_at: int
    evaluated: int
    errors: int


class EvaluationWorker:
    """Runs the evaluation rules; one per process (several may share a database)."""

    def __init__(
        self,
        db: Database,
        store: Store,
        write: Write[Any],
        evaluate: Evaluate,
        *,
        clock: Callable[[], datetime] = utc_now,
        lease: timedelta = timedelta(minutes=15),
        settle: timedelta = timedelta(seconds=10),
        batch: int = 500,
        judge_batch: int = 20,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.write = write
        self.evaluate = evaluate
        self.clock = clock
        self.lease = lease
        self.settle = settle
        self.batch = batch
        self.judge_batch = judge_batch
        self.owner = owner or f"evaluation-{uuid.uuid4()}"

    def tick(self, now: datetime | None = None) -> list[RuleTick]:
        """Give every enabled rule whose lease this worker wins one turn at ``now``."""
        at = now or self.clock()
        evaluations = self.store.evaluations
        with self.db.read() as conn:
            rules = evaluations.enabled_rules(conn, at)
        out = []
        for rule in rules:
            pid, rid = rule["project_id"], rule["id"]
            won = self.write(partial(evaluations.claim_rule, project_id=pid, rule_id=rid,
                                     owner=self.owner, at=at, until=at + self.lease))  # fmt: skip
            if not won:
                continue
            try:
                out.append(self._turn(rule, at))
            except Exception:  # a broken rule must not stop the others
                log.exception("evaluation rule %s of project %s failed", rid, pid)
                self.write(partial(evaluations.advance_rule, project_id=pid, rule_id=rid,
                                   owner=self.owner, cursor=None, runs=[]))  # fmt: skip
        return out

    def run_until_idle(self, now: datetime | None = None, max_ticks: int = 1000) -> int:
        """Tick until a tick looks at no trace; the evaluations made (tests, the CLI)."""
        total = 0
        for _ in range(max_ticks):
            turns = self.tick(now)
            total += sum(t.evaluated for t in turns)
            if not any(t.looked_at for t in turns):
                break
        return total

    def _turn(self, rule: dict[str, Any], at: datetime) -> RuleTick:
        pid, rid = rule["project_id"], rule["id"]
        evaluations = self.store.evaluations
        with self.db.read() as conn:
            evaluator = evaluations.get_evaluator(conn, pid, rule["evaluator_id"])
            cursor_at = conn.dialect.ts_parse(rule["cursor_at"])
            assert cursor_at is not None
            limit = (
                self.judge_batch
                if evaluator and evaluator["type"] == "llm_as_judge"
                else (self.batch)
            )
            after, until = (cursor_at, rule["cursor_id"] or ""), at - self.settle
            if rule["target"] == "experiment":
                wanted = dataset_filter(rule["filter"])
                found, cursor = evaluations.new_run_items(
                    conn, pid, wanted, after, until=until, limit=limit
                )
                objects = [_run_item_object(r) for r in found]
            elif rule["target"] == "observation":
                sql, tools = observation_filter(rule["filter"])
                found, cursor = evaluations.new_observations(
                    conn, pid, sql, after, until=until, limit=limit
                )
                objects = [_observation_object(r) for r in found]
                objects = [o for o in objects if matches(tools, o["tool_calls"])]
            else:
                conditions = conditions_of(rule["filter"], "filter")
                objects, cursor = evaluations.new_traces(
                    conn, pid, conditions, after, until=until, limit=limit
                )
        outcomes: list[Outcome] = []
        if evaluator is not None:
            for obj in objects:
                if obj["environment"] == EVALUATION_ENVIRONMENT:
                    continue  # the judge's own traces
                if not sampled(rid, obj["id"], rule["sampling"]):
                    continue
                outcomes.append(self.evaluate(pid, evaluator, rule["mapping"], obj,
                                              rule_id=rid, at=at))  # fmt: skip
        runs = [o.run for o in outcomes]
        events = [e for o in outcomes for e in o.events]

        def commit(conn: Conn) -> None:
            if evaluations.advance_rule(conn, pid, rid, self.owner, cursor, runs) and events:
                self.store.ingest.apply_events(conn, pid, events)

        self.write(commit)
        errors = sum(1 for r in runs if r["status"] == "error")
        looked = 0 if cursor is None else max(len(objects), 1)
        return RuleTick(pid, rid, looked, len(runs) - errors, errors)


def _run_item_object(row: dict[str, Any]) -> dict[str, Any]:
    """A dataset run item as the object an evaluator reads (see the module's doc)."""
    return {
        **row,
        "objectType": "DATASET_RUN_ITEM",
        "traceId": row["trace_id"],
        "observationId": row["observation_id"],
        "expected": row["expected_output"],
        "tool_calls": tool_calls_of(row["output"]),
    }


def _observation_object(row: dict[str, Any]) -> dict[str, Any]:
    """An observation as the object an evaluator reads (see the module's doc)."""
    return {
        **row,
        "objectType": "OBSERVATION",
        "traceId": row["trace_id"],
        "observationId": row["id"],
        "tool_calls": tool_calls_of(row["output"]),
    }
