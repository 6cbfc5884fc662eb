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
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar

from ..analytics.alert_metrics import SUMS, MetricSpec, Reading, measure
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
        this evaluator wins; return what each evaluation found."""
        at = now or self.clock()
        alerts = self.store.alerts
        with self.db.read() as conn:
            due = alerts.due_rules(conn, at)
        out = []
        for rule in due:
            pid, rid = rule["project_id"], rule["id"]
            won = self.write(partial(alerts.claim, project_id=pid, rule_id=rid, owner=self.owner,
                                     at=at, until=at + self.lease))  # fmt: skip
            if not won:
                continue  # another evaluator has it
            try:
                out.append(self._evaluate(rule, at))
            except Exception as exc:  # a broken rule must not stop the others
                log.exception("alert rule %s of project %s failed to evaluate", rid, pid)
                state = {"next_eval_at": at + timedelta(seconds=rule["interval_s"])}
                event = {"at": at, "kind": "evaluation_error", "message": type(exc).__name__}
                self.write(partial(alerts.finish, project_id=pid, rule_id=rid, owner=self.owner,
                                   state=state, events=[event]))  # fmt: skip
        self.tick_budgets(at)
        return out

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
                    if not has_new_crossing(conn, pid, at, store=budgets):
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
        messages = budget_messages(conn, project_id, at, base_url=self.base_url, store=budgets)
        out = []
        for message in messages:
            budget = budgets.get(conn, project_id, message.rule_id)
            out.append((message, [] if budget is None else list(budget["channel_ids"])))
        return out

    # --- one rule ---------------------------------------------------------------------

    def _read(self, rule: dict[str, Any], start: datetime, end: datetime) -> Reading:
        spec = MetricSpec(rule["metric"], rule["filters"], rule["score_name"])
        with self.db.read() as conn:
            return measure(conn, rule["project_id"], spec, start, end)

    def threshold_at(self, rule: dict[str, Any], at: datetime) -> float | None:
        """The value the rule compares with at ``at``: its threshold, or ``factor`` x
        its baseline (None when the baseline period has no samples)."""
        if rule["mode"] != "baseline":
            return float(rule["threshold"])
        window = timedelta(seconds=rule["window_s"])
        start = at - window
        if rule["baseline"] == "same_hour_last_week":
            reading = self._read(rule, start - WEEK, at - WEEK)
            base = reading.value
        else:
            reading = self._read(rule, start - DAY, start)
            base = reading.value
            if base is not None and rule["metric"] in SUMS:
                base *= window / DAY  # the 24 hours' sum scaled to one window
        if base is None or not reading.samples:
            return None  # no baseline to compare with
        return float(rule["factor"]) * base

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

    def _evaluate(self, rule: dict[str, Any], at: datetime) -> Outcome:
        reading = self.reading_at(rule, at)
        threshold = self.threshold_at(rule, at)
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
        written = self.write(
            lambda c: self.store.alerts.finish(
                c, rule["project_id"], rule["id"], self.owner, state, events
            )
        )
        final = state.get("status", status)
        kinds = tuple(e["kind"] for e in events) if written else ()
        return Outcome(
            rule["project_id"], rule["id"], reading.value, threshold, reading.samples, final, kinds
        )

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
