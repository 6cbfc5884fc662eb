"""A/B tests: ``/api/public/ab-tests`` (create, list, read, change, delete; start, stop,
conclude; assign a unit; the readout) and ``/api/public/ab-tests/compare`` (an ad-hoc
comparison by a metadata key, tags or prompt version). Lanterna's own routes, named
``ab-tests`` because Langfuse's ``/api/public/experiments`` are dataset experiment runs;
documented in docs/experiments.md and docs/api.md.

A test is addressed by its name (unique in the project, fixed once created), which is
what the SDK's ``assign(name, unit_id)`` and ``get_prompt(..., experiment=name)`` use.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import ConfigDict, Field

from ...abtests import rules
from ...abtests.assign import variant_for
from ...store.filters import parse_time
from .. import ab_test_ops as ops
from ..audit import audit
from ..auth import Principal, ProjectAdminKey, ProjectKey
from ..doc_models import DocModel
from ..errors import not_found
from ..responses import JSON
from ..runtime import runtime
from ..shapes import ab_test_json
from .body import NOT_BLANK, Deleted, json_body, ok, read_json, read_json_object
from .params import LimitParam, Meta, PageParam, one_of, page_of

router = APIRouter(tags=["AbTests"])

AB_TESTS = "/api/public/ab-tests"


class Variant(DocModel):
    """A variant: its name, weight (zero or more; the weights' shares split the units)
    and, when the test names a prompt, the prompt version or label it serves."""

    name: str
    weight: float = 1
    promptVersion: int | None = None
    promptLabel: str | None = None


class AbTestBody(DocModel):
    """Create an A/B test (``name``, ``variants`` and ``primaryMetric`` required) or change
    one (PATCH: the fields given; a started test's ``variants``, ``salt``, ``prompt`` and
    ``control`` are fixed, 409). ``primaryMetric`` and ``guardrailMetrics``: score names
    of the project, or ``cost``, ``latency``, ``errorRate``; ``unit``: ``user`` or
    ``session``; ``minimumDetectableEffect``: absolute, in the metric's unit. Any other
    field is refused (400)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str | None = None
    unit: str | None = None
    variants: list[Variant] | None = None
    control: str | None = None
    prompt: str | None = None
    primaryMetric: str | None = None
    guardrailMetrics: list[str] | None = None
    minimumDetectableEffect: float | None = None
    alpha: float | None = None
    salt: str | None = None


class AbTest(DocModel):
    """An A/B test: definition, ``state`` (draft, running, stopped, concluded) and winner."""

    id: str
    name: str
    description: str | None
    unit: str
    state: str
    variants: list[Variant]
    control: str
    winner: str | None
    prompt: str | None
    primaryMetric: str
    guardrailMetrics: list[str]
    minimumDetectableEffect: float | None
    alpha: float
    salt: str
    createdAt: str
    updatedAt: str
    startedAt: str | None
    stoppedAt: str | None
    concludedAt: str | None


class AbTestList(DocModel):
    """A page of the project's A/B tests, newest first."""

    data: list[AbTest]
    meta: Meta


class ConcludeBody(DocModel):
    """Conclude with a ``winner`` (one of the variants); ``promote`` moves the prompt's
    ``production`` label to the winner's version."""

    winner: str
    promote: bool = False


class Assignment(DocModel):
    """The variant a unit sees (and the prompt version or label it names)."""

    abTest: str
    unitId: str
    variant: str
    state: str
    promptVersion: int | None
    promptLabel: str | None


class Comparison(DocModel):
    """A variant against the control: ``test`` (``welch_t``, ``two_proportion_z``,
    ``chi_square``), difference with its interval, p-value, Holm-adjusted p-value,
    Mann-Whitney U (numeric metrics)."""

    test: str
    difference: float | None
    ciLow: float | None = None
    ciHigh: float | None = None
    statistic: float | None = None
    df: float | None = None
    pValue: float | None
    pAdjusted: float | None = None
    significant: bool = False
    mannWhitneyU: float | None = None
    mannWhitneyP: float | None = None


class VariantSummary(DocModel):
    """A variant's n, mean (a proportion for boolean metrics) and its 95 % interval;
    ``categories`` (counts) for categorical scores."""

    n: int
    mean: float | None
    std: float | None = None
    successes: int | None = None
    ciLow: float | None = None
    ciHigh: float | None = None
    categories: dict[str, int] | None = None


class MetricReadout(DocModel):
    """One metric: kind, per variant summary, per non-control variant its comparison."""

    metric: str
    kind: str
    lowerIsBetter: bool
    variants: dict[str, VariantSummary]
    comparisons: dict[str, Comparison]
    correction: str | None


class Operational(DocModel):
    """A variant's traces, units, cost, mean latency (seconds) and error rate."""

    traces: int
    units: int
    totalCost: float | None
    meanCost: float | None
    meanLatency: float | None
    errorRate: float | None


class Srm(DocModel):
    """The sample-ratio mismatch check: chi-square of units per variant against the
    weights; ``mismatch`` below p = 0.001."""

    pValue: float | None
    statistic: float | None = None
    mismatch: bool
    expected: dict[str, float | None]
    observed: dict[str, int]


class Verdict(DocModel):
    """``status``: srm, insufficient, winner, loser or no_difference; ``text``: the
    plain-language verdict."""

    status: str
    winner: str | None
    text: str


class Readout(DocModel):
    """The readout of an A/B test (``abTest``) or comparison (``groupBy``)."""

    abTest: AbTest | None = None
    groupBy: str | None = None
    variants: list[str]
    control: str
    alpha: float
    primary: MetricReadout
    guardrails: list[MetricReadout]
    operational: dict[str, Operational]
    srm: Srm | None
    minimumDetectableEffect: float | None
    sampleSizeNeeded: dict[str, int | None]
    cumulative: list[dict[str, Any]]
    distribution: dict[str, Any]
    verdict: Verdict


_BODY = json_body(AbTestBody)

_TEXT = Annotated[str, Field(pattern=NOT_BLANK)]
_METRIC = Annotated[str, Field(max_length=200, pattern=NOT_BLANK)]


class NewVariant(DocModel):
    """A variant of a new test: ``name`` (letters, digits, space and ``._:-``, at most
    50), ``weight`` (zero or more, default 1), and at most one of ``promptVersion`` and
    ``promptLabel``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "not": {
                "required": ["promptVersion", "promptLabel"],
                "properties": {
                    "promptVersion": {"type": "integer"},
                    "promptLabel": {"type": "string"},
                },
            }
        },
    )

    name: Annotated[str, Field(pattern=rules.VARIANT_NAME.pattern)]
    weight: Annotated[float, Field(ge=0)] = 1
    promptVersion: Annotated[int | None, Field(ge=1)] = None
    promptLabel: _TEXT | None = None


#: A variant that names a prompt version or label (every variant, when the test names
#: a prompt).
_NAMES_A_PROMPT: dict[str, Any] = {
    "anyOf": [
        {"required": ["promptVersion"], "properties": {"promptVersion": {"type": "integer"}}},
        {"required": ["promptLabel"], "properties": {"promptLabel": {"type": "string"}}},
    ]
}


class AbTestCreate(DocModel):
    """A new A/B test: ``name``, ``variants`` (2 to 20, the weights summing above 0) and
    ``primaryMetric`` required; no other fields; with a ``prompt`` every variant names a
    version or label of it. What JSON Schema cannot state (a 400 naming the field):
    variant names differ, ``control`` is one of them, each metric is ``cost``,
    ``latency``, ``errorRate`` or a score of the project, and the prompt's versions and
    labels exist."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {"required": ["prompt"], "properties": {"prompt": {"type": "string"}}},
            "then": {"properties": {"variants": {"items": _NAMES_A_PROMPT}}},
        },
    )

    name: Annotated[
        str,
        Field(
            pattern=rules.TEST_NAME.pattern,
            json_schema_extra={"not": {"enum": list(rules.RESERVED)}},
        ),
    ]
    description: str | None = None
    unit: Literal[rules.UNITS] | None = "user"  # type: ignore[valid-type]
    variants: Annotated[
        list[NewVariant],
        Field(
            min_length=2,
            max_length=rules.MAX_VARIANTS,
            json_schema_extra={
                "contains": {
                    "anyOf": [
                        {"not": {"required": ["weight"]}},
                        {"properties": {"weight": {"exclusiveMinimum": 0}}},
                    ]
                }
            },
        ),
    ]
    control: str | None = None
    prompt: _TEXT | None = None
    primaryMetric: _METRIC
    guardrailMetrics: list[_METRIC] | None = None
    minimumDetectableEffect: Annotated[float | None, Field(gt=0)] = None
    alpha: Annotated[float | None, Field(gt=0, lt=0.5)] = None
    salt: _TEXT | None = None


@router.get(AB_TESTS, responses=ok(AbTestList))
async def list_ab_tests(
    request: Request,
    principal: ProjectKey,
    page: PageParam = None,
    limit: LimitParam = None,
    state: Annotated[str | None, one_of(rules.STATES)] = None,
) -> JSON:
    """The project's A/B tests, newest first (``state`` filters)."""
    paging = page_of(page, limit)
    if state is not None and state not in rules.STATES:
        raise rules.AbTestError(f"state must be one of {', '.join(rules.STATES)}")
    rt = runtime(request)
    rows = await rt.read(lambda conn: rt.store.ab_tests.list_all(conn, principal.project_id, state))
    shown = rows[paging.offset : paging.offset + paging.limit]
    return JSON(paging.envelope([ab_test_json(r) for r in shown], len(rows)))


@router.post(AB_TESTS, responses=ok(AbTest), openapi_extra=json_body(AbTestCreate))
async def create_ab_test(request: Request, principal: ProjectAdminKey) -> JSON:
    """Create a draft A/B test; 400 naming the field (fewer than two variants, weights
    without a positive total, a metric that does not exist, ...), 409 on a taken name."""
    body = await read_json(request)
    rt = runtime(request)
    shown = await ops.create(rt, principal.project_id, body)
    await audit(rt, principal, "ab_test.create", shown["name"])
    return JSON(shown)


@router.get(AB_TESTS + "/compare", responses=ok(Readout))
async def compare(
    request: Request,
    principal: ProjectKey,
    groupBy: Annotated[str, Query(pattern=r"^(metadata\.[^\x00]+|tags|promptVersion)$")],
    metric: Annotated[str, Query(min_length=1)],
    tags: list[str] = Query(default=[]),  # noqa: B008
    prompt: str | None = None,
    control: str | None = None,
    guardrailMetrics: list[str] = Query(default=[]),  # noqa: B008
    unit: Annotated[str, one_of(rules.UNITS)] = "user",
    alpha: Annotated[
        float, Query(json_schema_extra={"exclusiveMinimum": 0, "exclusiveMaximum": 0.5})
    ] = 0.05,
    minimumDetectableEffect: Annotated[
        float | None, Query(json_schema_extra={"exclusiveMinimum": 0})
    ] = None,
    fromTimestamp: str | None = None,
    toTimestamp: str | None = None,
) -> JSON:
    """Compare groups of traces without a declared test: ``groupBy`` is
    ``metadata.KEY`` (traces by that metadata value), ``tags`` (by which of the given
    ``tags`` they carry) or ``promptVersion`` (by the version of ``prompt`` their
    generations used); ``control`` defaults to the largest group. Rules between the
    parameters (``tags`` needs two or more tags, ``promptVersion`` needs ``prompt``) are
    a 400 the document cannot state."""
    out = await ops.compare(
        runtime(request),
        principal.project_id,
        group_by=groupBy,
        metric=metric,
        tags=tags,
        prompt=prompt,
        control=control,
        guardrails=guardrailMetrics,
        unit=unit,
        alpha=alpha,
        mde=minimumDetectableEffect,
        from_ts=parse_time(fromTimestamp, "fromTimestamp"),
        to_ts=parse_time(toTimestamp, "toTimestamp"),
    )
    return JSON(out)


@router.get(AB_TESTS + "/{name}", responses=ok(AbTest))
async def get_ab_test(request: Request, name: str, principal: ProjectKey) -> JSON:
    """One A/B test (what the SDK caches to assign units locally)."""
    return JSON(await ops.get(runtime(request), principal.project_id, name))


@router.patch(AB_TESTS + "/{name}", responses=ok(AbTest), openapi_extra=_BODY)
async def update_ab_test(request: Request, name: str, principal: ProjectAdminKey) -> JSON:
    """Change an A/B test. While it is running, stopped or concluded its variants,
    weights, salt, prompt and control are fixed (409: that would move units to another
    variant)."""
    body = await read_json(request)
    rt = runtime(request)
    shown = await ops.update(rt, principal.project_id, name, body)
    fields = sorted(body) if isinstance(body, dict) else []
    await audit(rt, principal, "ab_test.update", name, {"fields": fields})
    return JSON(shown)


@router.delete(AB_TESTS + "/{name}", responses=ok(Deleted))
async def delete_ab_test(request: Request, name: str, principal: ProjectAdminKey) -> JSON:
    """Delete an A/B test (its traces and scores stay)."""
    rt = runtime(request)
    if not await rt.write(lambda conn: rt.store.ab_tests.delete(conn, principal.project_id, name)):
        raise not_found(f"A/B test {name}")
    await audit(rt, principal, "ab_test.delete", name)
    return JSON({"message": "A/B test deleted successfully"})


@router.post(AB_TESTS + "/{name}/start", responses=ok(AbTest))
async def start_ab_test(request: Request, name: str, principal: ProjectAdminKey) -> JSON:
    """Start (or restart) a draft or stopped test: units are assigned by their hash."""
    return JSON(await _act(request, principal, name, "start"))


@router.post(AB_TESTS + "/{name}/stop", responses=ok(AbTest))
async def stop_ab_test(request: Request, name: str, principal: ProjectAdminKey) -> JSON:
    """Stop a running test: every unit gets the control until it is started again."""
    return JSON(await _act(request, principal, name, "stop"))


@router.post(
    AB_TESTS + "/{name}/conclude", responses=ok(AbTest), openapi_extra=json_body(ConcludeBody)
)
async def conclude_ab_test(request: Request, name: str, principal: ProjectAdminKey) -> JSON:
    """Conclude with a winner (every unit gets it from now on); ``promote: true`` moves
    the prompt's ``production`` label to the winner's version."""
    body = await read_json_object(request)
    promote = body.get("promote", False)
    if not isinstance(promote, bool):
        raise rules.AbTestError("promote must be true or false")
    winner = body.get("winner")
    return JSON(await _act(request, principal, name, "conclude", winner, promote))


async def _act(
    request: Request, principal: Principal, name: str, action: str, *args: Any
) -> dict[str, Any]:
    """Start, stop or conclude a test, audited."""
    rt = runtime(request)
    shown = await ops.act(rt, principal.project_id, name, action, *args)
    detail = {"winner": args[0], "promote": args[1]} if action == "conclude" else None
    await audit(rt, principal, f"ab_test.{action}", name, detail)
    return shown


@router.get(AB_TESTS + "/{name}/assign", responses=ok(Assignment))
async def assign_unit(
    request: Request,
    name: str,
    principal: ProjectKey,
    unitId: Annotated[str, Query(min_length=1)],
) -> JSON:
    """The variant a unit sees (the same hash the SDK computes locally): for clients
    without the SDK. Records nothing. ``unitId`` is required (a 400 without it)."""
    test = await ops.get(runtime(request), principal.project_id, name)
    variant = variant_for(test, unitId)
    chosen = next(v for v in test["variants"] if v["name"] == variant)
    return JSON(
        {
            "abTest": name,
            "unitId": unitId,
            "variant": variant,
            "state": test["state"],
            "promptVersion": chosen["promptVersion"],
            "promptLabel": chosen["promptLabel"],
        }
    )


@router.get(AB_TESTS + "/{name}/readout", responses=ok(Readout))
async def readout(
    request: Request,
    name: str,
    principal: ProjectKey,
    metric: str | None = None,
    minimumDetectableEffect: Annotated[
        float | None, Query(json_schema_extra={"exclusiveMinimum": 0})
    ] = None,
    fromTimestamp: str | None = None,
    toTimestamp: str | None = None,
) -> JSON:
    """The test's readout: per variant n, mean and 95 % interval of the primary metric
    (or ``metric``), the difference against the control with its interval and p-value
    (Holm-adjusted for more than two variants), guardrails, cost, latency and error
    rate, the SRM check, the sample size still needed, the cumulative effect over time
    and the verdict."""
    if minimumDetectableEffect is not None and minimumDetectableEffect <= 0:
        raise rules.AbTestError("minimumDetectableEffect must be above 0")
    out = await ops.readout(
        runtime(request),
        principal.project_id,
        name,
        metric=metric,
        mde=minimumDetectableEffect,
        from_ts=parse_time(fromTimestamp, "fromTimestamp"),
        to_ts=parse_time(toTimestamp, "toTimestamp"),
    )
    return JSON(out)
