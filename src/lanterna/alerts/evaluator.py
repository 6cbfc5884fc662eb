"""The rule evaluator: :meth:`Evaluator.tick` evaluates every rule that is due, once
across every process sharing the database (the lease in ``store.alerts``), decides
fired / resolved / re-notify, hands :class:`AlertMessage` s to the rule's channels and
records the history. :class:`EvaluatorLoop` runs ticks in a background thread
(``lanterna serve``, ``lanterna worker``).

Time comes from an injected clock (``tick(now)``), never from sleeping, so tests
drive it tick by tick.

A rule's notifications:

- it starts to hold (with at least ``min_samples`` samples): ``fired`` is recorded and
  sent, unless a notification went out less than ``cooldown_s`` ago;
- it keeps holding: ``fired`` is sent again every ``renotify_s`` (0: never);
- it stops holding (with enough samples): ``resolved`` is recorded, and sent when
  ``notify_resolved`` and the firing was notified.

Each delivery is recorded as ``notified`` (with the channel's id) or
``delivery_error`` (with :class:`DeliveryError`'s message).

Budgets (:meth:`Evaluator.tick_budgets`, part of every tick): for each project with
budgets whose spend (read on a read connection,
:func:`~lanterna.alerts.budgets.has_new_crossing`) reached a level not yet recorded,
:func:`~lanterna.alerts.budgets.budget_messages` runs in one write transaction, which
records each new crossing (soft, exceeded) under a database key and returns messages
only for the crossings this transaction recorded. So of several evaluators ticking at
once exactly one gets each message; it delivers it to the budget's ``channel_ids``
through ``channels_for`` (the rules' lookup) and records ``fired`` and the deliveries
in the alert history with ``source`` ``budget``.
"""

from __future__ import annotations

import logging
import operator
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ..analytics.alert_metrics import SUMS, Ask, MetricSpec, Reading, measure, measure_many
from ..store.db import Conn, Database
from ..store.interface import Store
from ..timeutil import Ticker
from ..timeutil import now as utc_now
from .budgets import budget_messages, has_new_crossing
from .message import AlertMessage, Channel, DeliveryError
from .rules import describe

log = logging.getLogger("lanterna.alerts")

T = TypeVar("T")
#: Runs a unit of work in a write transaction and returns its result once committed
#: (the server's writer: ``Writer.run_sync``).
Write = Callable[[Callable[[Conn], T]], T]
#: The channels a rule notifies: ``(channel id, channel)`` pairs for a stored rule.
ChannelLookup = Callable[[dict[str, Any]], Sequence[tuple[str, Channel]]]

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
WEEK = timedelta(days=7)
DAY = timedelta(days=1)


def file_clock(path: str) -> Callable[[], datetime]:
    """A clock reading the time from a file (ISO 8601, UTC) at each call: the testing
    setting ``alert_clock_file``, which moves real server processes' evaluators
    through time without waiting."""

    def read() -> datetime:
        text = Path(path).read_text().strip()
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)

    return read


def no_channels(rule: dict[str, Any]) -> Sequence[tuple[str, Channel]]:
    """The lookup when none is configured: a rule's history still records its state."""
    return ()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one evaluation of one rule found and did."""

    project_id: str
    rule_id: str
    value: float | None
    threshold: float | None
    samples: int
    status: str
    events: tuple[str, ...]


class Evaluator:
    """Evaluates due alert rules; one per process (several may share a database)."""

    def __init__(
        self,
        db: Database,
        store: Store,
        write: Write[Any],
        *,
        channels_for: ChannelLookup = no_channels,
        base_url: str = "",
        clock: Callable[[], datetime] = utc_now,
        lease: timedelta = timedelta(minutes=5),
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.write = write
        self.channels_for = channels_for
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.lease = lease
        #: This evaluator's name on the leases it takes.
        self.owner = owner or f"evaluator-{uuid.uuid4()}"

    def tick(self, now: datetime | None = None) -> list[Outcome]:
        """Evaluate every rule due at ``now`` (the clock's time by default) whose lease
        this evaluator wins; return what each evaluation found.

        The leases are taken in one write transaction and the outcomes recorded in
        another; the metrics are read in between on a read connection (never under
        the write lock), rules sharing a range and filters in one query
        (:func:`~lanterna.analytics.alert_metrics.measure_many`)."""
        at = now or self.clock()
        alerts = self.store.alerts
        with self.db.read() as conn:
            due = alerts.due_rules(conn, at)
        if due:
            won = self.write(partial(self._claim, rules=due, at=at))
            rules = [rule for rule, ok in zip(due, won, strict=True) if ok]  # others: taken
        else:
            rules = []
        out: list[Outcome] = []
        if rules:
            readings = self._readings(rules, at)
            done: list[tuple[dict[str, Any], dict[str, Any], list[Any], Outcome | None]] = []
            for rule, (reading, base) in zip(rules, readings, strict=True):
                try:
                    done.append(self._decide(rule, at, reading, base))
                except Exception as exc:  # a broken rule must not stop the others
                    log.error(
                        "alert rule %s of project %s failed to evaluate: %s",
                        rule["id"], rule["project_id"], type(exc).__name__,
                    )  # fmt: skip
                    state = {"next_eval_at": at + timedelta(seconds=rule["interval_s"])}
                    event = {"at": at, "kind": "evaluation_error", "message": type(exc).__name__}
                    done.append((rule, state, [event], None))
            written = self.write(partial(self._finish, done=done))
            for (_, _, events, outcome), ok in zip(done, written, strict=True):
                if outcome is not None:
                    kinds = tuple(e["kind"] for e in events) if ok else ()
                    out.append(replace(outcome, events=kinds))
        self.tick_budgets(at)
        return out

    def _claim(self, conn: Conn, rules: list[dict[str, Any]], at: datetime) -> list[bool]:
        """In one write transaction: take each rule's lease; which were won."""
        claim = self.store.alerts.claim
        until = at + self.lease
        return [claim(conn, r["project_id"], r["id"], self.owner, at, until) for r in rules]

    def _finish(
        self, conn: Conn, done: list[tuple[dict[str, Any], dict[str, Any], list[Any], Any]]
    ) -> list[bool]:
        """In one write transaction: record each evaluation; which were still ours."""
        finish = self.store.alerts.finish
        return [
            finish(conn, rule["project_id"], rule["id"], self.owner, state, events)
            for rule, state, events, _ in done
        ]

    def _readings(
        self, rules: list[dict[str, Any]], at: datetime
    ) -> list[tuple[Reading | Exception, Reading | Exception | None]]:
        """Per rule, its window's reading and (baseline mode) its baseline's, read on
        one read connection in as few queries as the rules allow."""
        asks: list[Ask] = []
        for rule in rules:
            spec = MetricSpec(rule["metric"], rule["filters"], rule["score_name"])
            start, end = at - timedelta(seconds=rule["window_s"]), at
            asks.append(Ask(rule["project_id"], spec, start, end))
            if rule["mode"] == "baseline":
                asks.append(Ask(rule["project_id"], spec, *self._baseline_range(rule, at)))
        with self.db.read() as conn:
            results = iter(measure_many(self.store.events_conn(conn), asks))
        return [
            (next(results), next(results) if rule["mode"] == "baseline" else None) for rule in rules
        ]

    # --- budgets ----------------------------------------------------------------------

    def tick_budgets(self, now: datetime | None = None) -> list[AlertMessage]:
        """Record the budget crossings new at ``now`` and notify each budget's channels;
        return the messages this evaluator sent (another evaluator's are not)."""
        at = now or self.clock()
        budgets = self.store.budgets
        with self.db.read() as conn:
            projects = budgets.projects_with_budgets(conn)
        sent: list[AlertMessage] = []
        for pid in projects:
            try:
                # Spend is read first on a read connection; the writer (which holds the
                # write lock while it runs) is used only when a crossing is new.
                with self.db.read() as conn:
                    if not has_new_crossing(
                        conn, pid, at, store=budgets, events=self.store.events_conn(conn)
                    ):
                        continue
                found = self.write(partial(self._crossings, project_id=pid, at=at))
            except Exception:  # one project's failure must not stop the others
                log.exception("budgets of project %s failed to evaluate", pid)
                continue
            for message, channel_ids in found:
                try:
                    self._notify_budget(message, channel_ids)
                except Exception:  # the others are still sent
                    log.exception("budget %s of project %s: notifying failed", message.rule_id, pid)
                sent.append(message)
        return sent

    def _notify_budget(self, message: AlertMessage, channel_ids: list[str]) -> None:
        """Deliver a budget's message to its channels; record it and the deliveries in
        the alert history (``source`` ``budget``)."""
        pid = message.project_id
        lookup = {"project_id": pid, "channel_ids": channel_ids}
        fired = {"at": message.at, "kind": "fired", "value": message.value,
                 "threshold": message.threshold, "message": message.condition}  # fmt: skip
        events = [fired, *self._deliver(message, self.channels_for(lookup))]
        record = partial(self.store.alerts.add_events, project_id=pid,
                         rule_id=message.rule_id, events=events)  # fmt: skip
        self.write(partial(record, source="budget"))

    def _crossings(
        self, conn: Conn, project_id: str, at: datetime
    ) -> list[tuple[AlertMessage, list[str]]]:
        """In the write transaction: the messages of the crossings recorded now, each
        with its budget's channel ids."""
        budgets = self.store.budgets
        messages = budget_messages(
            conn,
            project_id,
            at,
            base_url=self.base_url,
            store=budgets,
            events=self.store.events_conn(conn),
        )
        out = []
        for message in messages:
            budget = budgets.get(conn, project_id, message.rule_id)
            out.append((message, [] if budget is None else list(budget["channel_ids"])))
        return out

    # --- one rule ---------------------------------------------------------------------

    def _read(self, rule: dict[str, Any], start: datetime, end: datetime) -> Reading:
        spec = MetricSpec(rule["metric"], rule["filters"], rule["score_name"])
        with self.db.read() as conn:
            return measure(self.store.events_conn(conn), rule["project_id"], spec, start, end)

    @staticmethod
    def _baseline_range(rule: dict[str, Any], at: datetime) -> tuple[datetime, datetime]:
        """The range a baseline rule's baseline is read over, for the window ending at
        ``at``: the same window a week earlier, or the 24 hours before the window."""
        start = at - timedelta(seconds=rule["window_s"])
        if rule["baseline"] == "same_hour_last_week":
            return start - WEEK, at - WEEK
        return start - DAY, start

    @staticmethod
    def _threshold(rule: dict[str, Any], base: Reading | None) -> float | None:
        """The value the rule compares with: its threshold, or ``factor`` x its
        baseline's reading ``base`` (None when the baseline has no samples)."""
        if rule["mode"] != "baseline":
            return float(rule["threshold"])
        assert base is not None
        value = base.value
        if value is None or not base.samples:
            return None  # no baseline to compare with
        if rule["baseline"] == "last_24_hours" and rule["metric"] in SUMS:
            value *= timedelta(seconds=rule["window_s"]) / DAY  # the 24 hours' sum, per window
        return float(rule["factor"]) * value

    def threshold_at(self, rule: dict[str, Any], at: datetime) -> float | None:
        """The value the rule compares with at ``at``: its threshold, or ``factor`` x
        its baseline (None when the baseline period has no samples)."""
        if rule["mode"] != "baseline":
            return self._threshold(rule, None)
        return self._threshold(rule, self._read(rule, *self._baseline_range(rule, at)))

    def reading_at(self, rule: dict[str, Any], at: datetime) -> Reading:
        """The rule's metric over the window ending at ``at``."""
        return self._read(rule, at - timedelta(seconds=rule["window_s"]), at)

    def series(
        self, rule: dict[str, Any], end: datetime, points: int = 24
    ) -> list[tuple[datetime, float | None, float | None]]:
        """``(at, value, threshold)`` as the evaluator would see them at ``points``
        instants up to ``end``, a window apart (at most 7 hours apart), oldest first:
        what the Alerts page charts. ``rule`` needs the definition only."""
        step = min(timedelta(seconds=rule["window_s"]), timedelta(hours=7))
        out = []
        for i in range(points - 1, -1, -1):
            at = end - i * step
            out.append((at, self.reading_at(rule, at).value, self.threshold_at(rule, at)))
        return out

    def _decide(
        self,
        rule: dict[str, Any],
        at: datetime,
        read: Reading | Exception,
        baseline: Reading | Exception | None,
    ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]], Outcome | None]:
        """One rule's evaluation from its readings: the new state and history events
        (notifications delivered), and the outcome (before it is recorded)."""
        if isinstance(read, Exception):
            raise read
        if isinstance(baseline, Exception):
            raise baseline
        reading = read
        threshold = self._threshold(rule, baseline)
        enough = (
            reading.value is not None
            and threshold is not None
            and reading.samples >= rule["min_samples"]
        )
        holds = enough and _COMPARE[rule["comparator"]](reading.value, threshold)  # type: ignore[arg-type]
        status = rule["status"]
        notified_at: datetime | None = rule["notified_at"]
        state: dict[str, Any] = {
            "last_value": reading.value,
            "last_threshold": threshold,
            "last_samples": reading.samples,
            "last_eval_at": at,
            "next_eval_at": at + timedelta(seconds=rule["interval_s"]),
        }
        events: list[dict[str, Any]] = []
        base = {"at": at, "value": reading.value, "threshold": threshold}
        send: str | None = None
        if holds and status != "firing":
            state.update(status="firing", firing_since=at)
            events.append({**base, "kind": "fired", "message": describe(rule)})
            quiet = timedelta(seconds=rule["cooldown_s"])
            if notified_at is None or at - notified_at >= quiet:
                send = "fired"
        elif holds:
            again = rule["renotify_s"]
            if again and notified_at is not None and at - notified_at >= timedelta(seconds=again):
                send = "fired"
        elif enough and status == "firing":
            state.update(status="ok", firing_since=None)
            events.append({**base, "kind": "resolved", "message": describe(rule)})
            was_notified = notified_at is not None and notified_at >= rule["firing_since"]
            if rule["notify_resolved"] and was_notified:
                send = "resolved"
        if send is not None:
            if send == "fired":
                state["notified_at"] = at
            events.extend(self._notify(rule, send, at, reading, threshold))
        final = state.get("status", status)
        outcome = Outcome(
            rule["project_id"], rule["id"], reading.value, threshold, reading.samples, final, ()
        )
        return rule, state, events, outcome

    def _notify(
        self,
        rule: dict[str, Any],
        kind: str,
        at: datetime,
        reading: Reading,
        threshold: float | None,
    ) -> list[dict[str, Any]]:
        pid, rid = rule["project_id"], rule["id"]
        message = AlertMessage(
            kind="fired" if kind == "fired" else "resolved",
            project_id=pid,
            rule_id=rid,
            rule_name=rule["name"],
            condition=describe(rule),
            value=reading.value,
            threshold=threshold,
            at=at,
            url=f"{self.base_url}/project/{pid}/alerts/{rid}",
            details={
                "metric": rule["metric"],
                "windowSeconds": rule["window_s"],
                "samples": reading.samples,
                "filters": rule["filters"],
                "mode": rule["mode"],
            },
        )
        return self._deliver(message, self.channels_for(rule))

    def _deliver(
        self, message: AlertMessage, channels: Sequence[tuple[str, Channel]]
    ) -> list[dict[str, Any]]:
        """Send ``message`` to each channel; the history events of the deliveries."""
        events = []
        for channel_id, channel in channels:
            event = {
                "at": message.at,
                "channel_id": channel_id,
                "value": message.value,
                "threshold": message.threshold,
            }
            try:
                channel.deliver(message)
            except DeliveryError as exc:
                events.append({**event, "kind": "delivery_error", "message": str(exc)})
            except Exception as exc:  # a channel's bug must not stop the evaluator
                # Its type only: a channel's error text may hold its URL or credentials.
                log.error("alert channel %s failed: %s", channel_id, type(exc).__name__)
                events.append({**event, "kind": "delivery_error", "message": type(exc).__name__})
            else:
                events.append({**event, "kind": "notified", "message": message.kind})
        return events


class Ticks(Protocol):
    """Background work done a tick at a time (the alert evaluator, the evaluation worker)."""

    def tick(self) -> object:
        """Do what is due now."""


class EvaluatorLoop(Ticker):
    """Calls ``evaluator.tick()`` (:meth:`Evaluator.tick`, or any :class:`Ticks`) every
    ``interval`` seconds in a daemon thread until :meth:`stop` (which wakes it at once)."""

    def __init__(self, evaluator: Ticks, interval: float, name: str = "lanterna-alerts") -> None:
        super().__init__(
            evaluator.tick,
            interval,
            name=name,
            log=log,
            failure=f"{name}: tick failed",
        )
        self.evaluator = evaluator
