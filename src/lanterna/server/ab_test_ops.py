"""A/B test operations shared by the API (``api/ab_tests.py``) and the dashboard
(``ui/ab_tests_page.py``): create and change (checked, then the metrics and prompt
references looked up), start, stop, conclude (optionally moving the prompt's
``production`` label to the winner), the readout, and ad-hoc comparisons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ..abtests import rules
from ..abtests.rules import AbTestError
from ..analytics import ab_readout
from ..analytics.ab_readout import Grouping
from ..errors import Conflict
from ..store.db import Conn
from ..store.interface import Store
from ..timeutil import now
from .errors import not_found
from .runtime import Runtime
from .shapes import ab_test_json


def check_references(store: Store, conn: Conn, project_id: str, fields: dict[str, Any]) -> None:
    """400 naming the field when a metric is not a builtin or a score of the project, or
    a variant names a prompt version or label that does not exist."""
    metrics = [("primaryMetric", fields["primary_metric"])]
    metrics += [(f"guardrailMetrics[{i}]", g) for i, g in enumerate(fields["guardrails"])]
    for where, metric in metrics:
        if metric not in rules.BUILTIN_METRICS and not store.ab_tests.score_exists(
            conn, project_id, metric, events=store.events_conn(conn)
        ):
            raise AbTestError(
                f"{where}: metric {metric!r} does not exist (name a score config or a stored"
                f" score of this project, or one of {', '.join(rules.BUILTIN_METRICS)})"
            )
    prompt = fields["prompt"]
    if prompt is None:
        return
    for i, v in enumerate(fields["variants"]):
        found = store.prompts.get(
            conn, project_id, prompt, version=v["promptVersion"], label=v["promptLabel"]
        )
        if found is None:
            which = (
                f"version {v['promptVersion']}"
                if v["promptVersion"] is not None
                else f"label {v['promptLabel']!r}"
            )
            raise AbTestError(f"variants[{i}]: prompt {prompt!r} has no {which}")


async def create(rt: Runtime, project_id: str, body: Any) -> dict[str, Any]:
    """Create a draft A/B test; 400 naming the field, 409 when the name is taken."""
    fields = rules.check_test(body)
    store = rt.store

    def work(conn: Conn) -> dict[str, Any]:
        if store.ab_tests.get(conn, project_id, fields["name"]) is not None:
            raise Conflict(f"an A/B test named {fields['name']!r} exists already")
        check_references(store, conn, project_id, fields)
        return ab_test_json(store.ab_tests.create(conn, project_id, fields))

    return await rt.write(work)


async def update(rt: Runtime, project_id: str, name: str, body: Any) -> dict[str, Any]:
    """Change an A/B test (a started one keeps its variants, weights and salt: 409)."""
    store = rt.store

    def work(conn: Conn) -> dict[str, Any] | None:
        before = store.ab_tests.get(conn, project_id, name)
        if before is None:
            return None
        fields = rules.check_test(body, before)
        check_references(store, conn, project_id, fields)
        changed = store.ab_tests.update(conn, project_id, name, fields)
        return None if changed is None else ab_test_json(changed)

    found = await rt.write(work)
    if found is None:
        raise not_found(f"A/B test {name}")
    return found


async def act(
    rt: Runtime,
    project_id: str,
    name: str,
    action: str,
    winner: Any = None,
    promote: bool = False,
) -> dict[str, Any]:
    """Start, stop or conclude (with ``winner``; ``promote`` moves the prompt's
    ``production`` label to the winner's version) an A/B test."""
    store = rt.store
    at = now()

    def work(conn: Conn) -> dict[str, Any] | None:
        test = store.ab_tests.get(conn, project_id, name)
        if test is None:
            return None
        target = rules.transition(test, action)
        chosen = rules.check_winner(test, winner) if action == "conclude" else None
        if promote:
            _promote(store, conn, project_id, test, chosen)
        row = store.ab_tests.set_state(conn, project_id, name, target, at, chosen)
        return None if row is None else ab_test_json(row)

    found = await rt.write(work)
    if found is None:
        raise not_found(f"A/B test {name}")
    return found


def _promote(
    store: Store, conn: Conn, project_id: str, test: Mapping[str, Any], winner: str | None
) -> None:
    if winner is None or test["prompt"] is None:
        raise AbTestError("promote needs a winner and an A/B test that names a prompt")
    variant = next(v for v in test["variants"] if v["name"] == winner)
    found = store.prompts.get(
        conn,
        project_id,
        test["prompt"],
        version=variant["promptVersion"],
        label=variant["promptLabel"],
    )
    if found is None:
        raise AbTestError(f"the winner's prompt version of {test['prompt']!r} no longer exists")
    store.prompts.add_labels(conn, project_id, test["prompt"], found["version"], ["production"])


async def get(rt: Runtime, project_id: str, name: str) -> dict[str, Any]:
    """One A/B test as the API shows it (404 when missing)."""
    row = await rt.read(lambda conn: rt.store.ab_tests.get(conn, project_id, name))
    if row is None:
        raise not_found(f"A/B test {name}")
    return ab_test_json(row)


async def readout(
    rt: Runtime,
    project_id: str,
    name: str,
    *,
    metric: str | None = None,
    mde: float | None = None,
    from_ts: datetime | None = None,
    to_ts: datetime | None = None,
) -> dict[str, Any]:
    """A declared test's readout (its primary metric unless ``metric`` is given)."""
    test = await get(rt, project_id, name)
    weights = {v["name"]: float(v["weight"]) for v in test["variants"]}
    chosen = metric or test["primaryMetric"]
    guards = [g for g in test["guardrailMetrics"] if g != chosen]

    def read(conn: Conn) -> dict[str, Any]:
        return ab_readout.readout(
            conn,
            project_id,
            Grouping("abTest", name),
            metric=chosen,
            guardrails=guards,
            variants=list(weights),
            control=test["control"],
            weights=weights,
            unit=test["unit"],
            alpha=test["alpha"],
            mde=mde if mde is not None else test["minimumDetectableEffect"],
            from_ts=from_ts,
            to_ts=to_ts,
            events=rt.store.events_conn(conn),
        )

    out = await rt.read(read)
    return {"abTest": test, **out}


def grouping_of(group_by: str | None, tags: Sequence[str], prompt: str | None) -> Grouping:
    """The grouping an ad-hoc comparison names: ``metadata.KEY``, ``tags`` (with at least
    two ``tags``) or ``promptVersion`` (with ``prompt``); 400 otherwise."""
    if not group_by:
        raise AbTestError("groupBy is required: metadata.KEY, tags or promptVersion")
    if group_by.startswith("metadata."):
        key = group_by[len("metadata.") :]
        if not key:
            raise AbTestError("groupBy metadata.KEY needs a key")
        return Grouping("metadata", key)
    if group_by == "tags":
        picked = [t for t in tags if t]
        if len(picked) < 2:
            raise AbTestError("groupBy tags needs at least two tags (tags=a&tags=b)")
        return Grouping("tags", tags=list(dict.fromkeys(picked)))
    if group_by == "promptVersion":
        if not prompt:
            raise AbTestError("groupBy promptVersion needs prompt (the prompt's name)")
        return Grouping("promptVersion", prompt)
    raise AbTestError(f"groupBy {group_by!r}: use metadata.KEY, tags or promptVersion")


async def compare(
    rt: Runtime,
    project_id: str,
    *,
    group_by: str | None,
    metric: str | None,
    tags: Sequence[str] = (),
    prompt: str | None = None,
    control: str | None = None,
    guardrails: Sequence[str] = (),
    unit: str = "user",
    alpha: float = 0.05,
    mde: float | None = None,
    from_ts: datetime | None = None,
    to_ts: datetime | None = None,
) -> dict[str, Any]:
    """An ad-hoc comparison of groups of traces (no declared test, so no SRM check)."""
    grouping = grouping_of(group_by, tags, prompt)
    if not metric:
        raise AbTestError("metric is required: a score name, cost, latency or errorRate")
    if unit not in rules.UNITS:
        raise AbTestError(f"unit must be one of {', '.join(rules.UNITS)}")
    if not 0 < alpha < 0.5:
        raise AbTestError("alpha must be above 0 and below 0.5")
    if mde is not None and mde <= 0:
        raise AbTestError("minimumDetectableEffect must be above 0")

    def read(conn: Conn) -> dict[str, Any]:
        return ab_readout.readout(
            conn,
            project_id,
            grouping,
            metric=metric,
            guardrails=list(guardrails),
            control=control,
            unit=unit,
            alpha=alpha,
            mde=mde,
            from_ts=from_ts,
            to_ts=to_ts,
            events=rt.store.events_conn(conn),
        )

    out = await rt.read(read)
    return {"groupBy": group_by, **out}
