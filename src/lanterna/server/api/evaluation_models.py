"""The OpenAPI document's schemas of the evaluation-rule routes
(``/api/public/unstable/evaluation-rules``): the bodies they read and the rules they
answer. The routes read the JSON themselves and check it with
:func:`lanterna.evaluation.definitions.check_rule` (a 400 naming the field); these
models only describe it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from .params import Meta

#: What a rule evaluates (``dataset`` is accepted as another name of ``experiment``).
Target = Literal["observation", "trace", "experiment", "dataset"]
Source = Literal[
    "input", "output", "metadata", "tool_calls", "expected_output", "experiment_item_metadata"
]


class FilterCondition(BaseModel):
    """One condition; every one must hold. ``target`` decides the columns: see
    docs/evaluations.md (observation: ``type``, ``name``, ``environment``, ``level``,
    ``version``, ``model``, ``traceName``, ``userId``, ``sessionId``, ``tags``,
    ``metadata`` with ``key``, ``isRootObservation``, ``parentObservationId``,
    ``calledToolNames``, ``toolCalls``; trace: the trace list's filter columns;
    experiment: ``datasetId``)."""

    type: str
    column: str
    operator: str
    value: Any = None
    key: str | None = None


class Mapping(BaseModel):
    """Fills one evaluator variable from the evaluated object: ``tool_calls`` for the
    observation and experiment targets, ``expected_output`` and
    ``experiment_item_metadata`` for experiments only; ``jsonPath`` a path such as
    ``$.messages[0].content`` or ``$[*].name``."""

    variable: str
    source: Source
    jsonPath: str | None = None


class EvaluatorRef(BaseModel):
    """An evaluator family by name (its latest version is used)."""

    name: str
    type: str | None = None


class Assignment(BaseModel):
    """The evaluator of a rule with its mapping (exactly one per rule)."""

    evaluator: EvaluatorRef
    mapping: list[Mapping] | None = None


class RuleBody(BaseModel):
    """Create a rule (``name``, ``evaluator`` or ``evaluators``, ``enabled`` required)
    or change one (PATCH: at least one field; the others keep their value; a new
    ``target`` starts from the time of the change). ``sampling`` in (0, 1], default 1;
    ``target`` default ``trace``."""

    name: str | None = None
    evaluator: EvaluatorRef | None = None
    mapping: list[Mapping] | None = None
    evaluators: list[Assignment] | None = None
    target: Target | None = None
    enabled: bool | None = None
    sampling: float | None = None
    filter: list[FilterCondition] | None = None


class RuleEvaluator(BaseModel):
    """The rule's evaluator family."""

    id: str
    name: str
    type: str


class RuleAssignment(BaseModel):
    """The rule's evaluator with its mapping."""

    evaluator: RuleEvaluator
    mapping: list[Mapping] | None


class EvaluationRule(BaseModel):
    """A stored rule: ``status`` ``active`` (enabled, its evaluator there) or
    ``inactive``."""

    id: str
    name: str
    evaluator: RuleEvaluator | None
    evaluators: list[RuleAssignment]
    enabled: bool
    status: Literal["active", "inactive"]
    pausedReason: str | None
    pausedMessage: str | None
    sampling: float
    target: Literal["observation", "trace", "experiment"]
    filter: list[FilterCondition]
    mapping: list[Mapping]
    createdAt: str
    updatedAt: str


class EvaluationRules(BaseModel):
    """A page of the project's rules, newest first."""

    data: list[EvaluationRule]
    meta: Meta


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with every ``#/$defs/...`` reference replaced by its definition."""
    if isinstance(node, list):
        return [_inline(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _inline(defs[ref.removeprefix("#/$defs/")], defs)
    return {k: _inline(v, defs) for k, v in node.items()}


def rule_body() -> dict[str, Any]:
    """The rule routes' documented, required JSON body (``openapi_extra=``), its nested
    models inlined (the request body has no ``$defs`` of its own to point at)."""
    schema = RuleBody.model_json_schema()
    schema = _inline(schema, schema.pop("$defs", {}))
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
