"""Evaluators and evaluation rules as the unstable API sends them, checked into stored
fields (a 400 naming the field otherwise).

Evaluator types: ``llm_as_judge`` (prompt, output definition, ``modelConfig``
naming an LLM connection's provider and a model) and the deterministic ones of
:mod:`~lanterna.evaluation.deterministic` (``config``). ``code`` evaluators are
refused: Lanterna runs no user code. A rule has one evaluator, a target, a sampling
rate in (0, 1] and an optional mapping. Targets: ``observation`` (new observations,
filtered on the observation columns of Langfuse's list for that target, plus
``model``; the mapping may also read ``tool_calls``), ``trace`` (new traces, filtered
with the trace list's ``filter`` JSON; Langfuse's legacy target) and ``experiment``
(new dataset run items, as Langfuse's evaluators on experiments; ``dataset`` is
accepted as its other name), filtered by ``datasetId`` (``stringOptions``, ``any of``
/ ``none of``), whose mapping may also read the item's ``expected_output`` and
``experiment_item_metadata``.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRequestData
from ..schema import LEVELS, OBSERVATION_TYPES
from ..store.evaluations import OBSERVATION_RULE_COLUMNS
from ..store.filters import Condition, FilterError, conditions_of
from . import deterministic
from .judge import SOURCES, check_mapping, check_output_definition, variables_of
from .tool_calls import TOOL_COLUMNS, check_tool_condition

#: The evaluator types accepted (``type``).
EVALUATOR_TYPES = ("llm_as_judge", *deterministic.TYPES)
#: What a rule evaluates: ``observation`` (new observations matching its filter),
#: ``trace`` (new traces matching the trace list filter) or ``experiment`` (new dataset
#: run items of the datasets its filter names).
TARGETS = ("observation", "trace", "experiment")
#: Other names of a target.
TARGET_ALIASES = {"dataset": "experiment"}
#: The mapping sources each target offers.
TARGET_SOURCES = {
    "observation": (*SOURCES, "tool_calls"),
    "trace": SOURCES,
    "experiment": (*SOURCES, "tool_calls", "expected_output", "experiment_item_metadata"),
}
_ALL_SOURCES = TARGET_SOURCES["experiment"]
#: Allowed values of the observation filter's option columns.
_OPTION_VALUES = {"type": OBSERVATION_TYPES, "level": LEVELS}


class DefinitionError(InvalidRequestData, ValueError):
    """An evaluator or rule body that cannot be stored (400 naming the field)."""


def _name(body: dict[str, Any]) -> str:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise DefinitionError("name: required, a non-empty string of at most 200 characters")
    return name.strip()


def check_evaluator(body: Any) -> dict[str, Any]:
    """The stored fields of a create-evaluator body."""
    if not isinstance(body, dict):
        raise DefinitionError("expected a JSON object")
    name = _name(body)
    kind = body.get("type") or "llm_as_judge"
    if kind == "code":
        raise DefinitionError(
            "type: code evaluators are not supported (Lanterna runs no user code); use"
            f" llm_as_judge or a deterministic type: {', '.join(deterministic.TYPES)}"
        )
    if kind not in EVALUATOR_TYPES:
        raise DefinitionError(f"type: must be one of {', '.join(EVALUATOR_TYPES)}")
    fields: dict[str, Any] = {"name": name, "type": kind, "prompt": None, "model_config": None,
                              "config": None}  # fmt: skip
    fields["mapping"] = check_mapping(body.get("mapping"), "mapping") or None
    if kind == "llm_as_judge":
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise DefinitionError("prompt: required, a non-empty string")
        fields["prompt"] = prompt
        fields["output_definition"] = check_output_definition(body.get("outputDefinition"))
        model = body.get("modelConfig")
        if not isinstance(model, dict) or not all(
            isinstance(model.get(k), str) and model.get(k) for k in ("provider", "model")
        ):
            raise DefinitionError(
                "modelConfig: required, {provider, model} naming one of the project's LLM"
                " connections (GET /api/public/llm-connections); there is no project default"
            )
        fields["model_config"] = {"provider": model["provider"], "model": model["model"]}
    else:
        fields["config"] = deterministic.check_config(kind, body.get("config"))
        fields["output_definition"] = {"dataType": deterministic.TYPES[kind]}
    return fields


def variables(evaluator: dict[str, Any]) -> list[str]:
    """The variables an evaluator's mapping fills."""
    if evaluator["type"] == "llm_as_judge":
        return variables_of(evaluator["prompt"] or "")
    config = evaluator.get("config") or {}
    needs_expected = evaluator["type"] in ("exact_match", "levenshtein", "numeric")
    if needs_expected and config.get("expected") is None:
        return ["output", "expected"]
    return ["output"]


def _sampling(value: Any) -> float:
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise DefinitionError("sampling: a number greater than 0 and at most 1")
    return float(value)


def _evaluator_ref(body: dict[str, Any]) -> tuple[str, Any]:
    """The evaluator name and mapping of a rule body (either form of the spec)."""
    many = body.get("evaluators")
    if many is not None:
        if "evaluator" in body or "mapping" in body:
            raise DefinitionError("evaluators: cannot be combined with evaluator/mapping")
        if not isinstance(many, list) or len(many) != 1 or not isinstance(many[0], dict):
            raise DefinitionError("evaluators: exactly one {evaluator, mapping} per rule")
        ref, mapping = many[0].get("evaluator"), many[0].get("mapping")
    else:
        ref, mapping = body.get("evaluator"), body.get("mapping")
    if not isinstance(ref, dict) or not isinstance(ref.get("name"), str):
        raise DefinitionError("evaluator.name: required, the name of an evaluator")
    return ref["name"], mapping


def check_rule(body: Any, *, partial: bool = False) -> dict[str, Any]:
    """The fields of a create (or, ``partial``, update) rule body: ``name``,
    ``evaluator_name``, ``mapping``, ``target``, ``enabled``, ``sampling``, ``filter``
    (only those given, when partial). The evaluator itself is looked up by the caller."""
    if not isinstance(body, dict):
        raise DefinitionError("expected a JSON object")
    if partial and not body:
        raise DefinitionError("expected at least one field to change")
    out: dict[str, Any] = {}
    if not partial or "name" in body:
        out["name"] = _name(body)
    if not partial or "target" in body:
        target = body.get("target", "trace")
        target = TARGET_ALIASES.get(target, target) if isinstance(target, str) else target
        if target not in TARGETS:
            raise DefinitionError(
                f"target: {target!r} is not supported; rules evaluate new observations"
                " (target 'observation'), new traces (target 'trace', filtered with the"
                " trace list's filter JSON) or new dataset run items (target 'experiment',"
                " filtered by datasetId)"
            )
        out["target"] = target
    sources = _ALL_SOURCES  # which of them the target offers: check_target
    if not partial or any(k in body for k in ("evaluator", "evaluators")):
        out["evaluator_name"], mapping = _evaluator_ref(body)
        out["mapping"] = check_mapping(mapping, "mapping", sources) or None
    elif "mapping" in body:
        out["mapping"] = check_mapping(body["mapping"], "mapping", sources) or None
    if not partial or "enabled" in body:
        enabled = body.get("enabled")
        if not isinstance(enabled, bool):
            raise DefinitionError("enabled: required, true or false")
        out["enabled"] = enabled
    if not partial or "sampling" in body:
        out["sampling"] = _sampling(body.get("sampling"))
    if not partial or "filter" in body:
        raw = body.get("filter")
        out["filter"] = [] if raw is None else raw
        conditions_of(out["filter"], "filter")  # FilterError: a 400 naming the condition
    return out


def check_target(target: str, filter_: Any, mapping: list[dict[str, Any]] | None) -> None:
    """Raise :class:`DefinitionError` when a rule's mapping reads a source its target
    lacks, when an ``experiment`` rule's filter is not on ``datasetId``, or when an
    ``observation`` rule's filter names a column or value that target lacks (its SQL
    conditions and the trace target's filter are compiled by the store too)."""
    for i, entry in enumerate(mapping or []):
        if entry["source"] not in TARGET_SOURCES[target]:
            valid = [t for t in TARGETS if entry["source"] in TARGET_SOURCES[t]]
            raise DefinitionError(
                f"mapping[{i}].source: {entry['source']!r} is only valid for target"
                f" {' or '.join(repr(t) for t in valid)} (target {target!r} offers"
                f" {', '.join(TARGET_SOURCES[target])})"
            )
    if target == "experiment":
        dataset_filter(filter_)
    elif target == "observation":
        observation_filter(filter_)


def observation_filter(filter_: Any) -> tuple[list[Condition], list[Condition]]:
    """An ``observation`` rule's filter split into the conditions SQL evaluates and the
    tool-call ones (``calledToolNames``, ``toolCalls``) the worker evaluates; a
    :class:`~lanterna.store.filters.FilterError` naming the condition when a column is
    not one of that target's or an option value is not one of the column's."""
    sql: list[Condition] = []
    tools: list[Condition] = []
    for i, cond in enumerate(conditions_of(filter_ or [], "filter")):
        where = f"filter[{i}]"
        if cond.column in TOOL_COLUMNS:
            check_tool_condition(cond, where)
            tools.append(cond)
            continue
        if cond.column not in OBSERVATION_RULE_COLUMNS:
            names = ", ".join((*OBSERVATION_RULE_COLUMNS, *TOOL_COLUMNS))
            raise FilterError(
                f"{where}.column: {cond.column!r} is not a column target 'observation' filters"
                f" on (use one of: {names})"
            )
        allowed = _OPTION_VALUES.get(cond.column)
        if allowed and cond.type == "stringOptions" and isinstance(cond.value, list):
            wrong = [v for v in cond.value if v not in allowed]
            if wrong:
                raise FilterError(
                    f"{where}.value: {', '.join(map(str, wrong))} not a valid {cond.column}"
                    f" (allowed: {', '.join(allowed)})"
                )
        sql.append(cond)
    return sql, tools


def dataset_filter(filter_: Any) -> tuple[str, list[str]] | None:
    """An ``experiment`` rule's filter as ``(operator, dataset ids)`` (None: every
    dataset); several conditions narrow each other. :class:`DefinitionError` for any
    other condition."""
    allowed: set[str] | None = None
    excluded: set[str] = set()
    for i, cond in enumerate(conditions_of(filter_ or [], "filter")):
        ok = cond.column == "datasetId" and cond.operator in ("any of", "none of")
        values = cond.value
        if not ok or not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise DefinitionError(
                f"filter[{i}]: target 'experiment' filters only on column 'datasetId'"
                " (type stringOptions, operator 'any of' or 'none of', a list of dataset ids)"
            )
        if cond.operator == "any of":
            allowed = set(values) if allowed is None else allowed & set(values)
        else:
            excluded |= set(values)
    if allowed is not None:
        return "any of", sorted(allowed - excluded)
    return ("none of", sorted(excluded)) if excluded else None


def check_rule_mapping(evaluator: dict[str, Any], mapping: list[dict[str, Any]] | None) -> None:
    """Raise :class:`DefinitionError` when ``mapping`` names a variable the evaluator
    does not have."""
    known = set(variables(evaluator))
    for entry in mapping or []:
        if entry["variable"] not in known:
            raise DefinitionError(
                f"mapping: the evaluator {evaluator['name']!r} has no variable"
                f" {entry['variable']!r} (it has: {', '.join(sorted(known)) or 'none'})"
            )
