"""LLM-as-a-judge: an evaluator's prompt template filled from the evaluated object's
fields, the instruction to answer as JSON, and the answer parsed into a score.

Templates use ``{{variable}}``; each variable is filled through the mapping
(``{variable, source, jsonPath}``: ``source`` is ``input``, ``output`` or ``metadata``
of the evaluated observation or trace, an observation's ``tool_calls``, or a dataset
run item's ``expected_output`` or ``experiment_item_metadata``, ``jsonPath`` an
optional ``$.a.b[0]`` path into it). The judge
is asked for ``{"score": ..., "reasoning": "..."}``; the score is checked against the
output definition (a number within its bounds, true/false, or one of its categories)
and the reasoning becomes the score's comment.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from .. import _json
from ..errors import InvalidRequestData
from .deterministic import as_text

# A fixed pattern of ours (not a user's), so Python's re is safe here.
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[['\"]([^'\"]+)['\"]\]|(\[\*\])")
SOURCES = ("input", "output", "metadata")
#: Variables filled from the object's field of their own name when not mapped (a run
#: item's ``expected_output``, ``experiment_item_metadata`` and ``expected``).
DEFAULT_FIELDS = (*SOURCES, "tool_calls", "expected_output", "experiment_item_metadata", "expected")
DATA_TYPES = ("NUMERIC", "BOOLEAN", "CATEGORICAL")


class JudgeConfigError(InvalidRequestData, ValueError):
    """A prompt, mapping or output definition that cannot be used (400 naming why)."""


class JudgeAnswerError(ValueError):
    """The judge's answer is not a usable score (recorded as the evaluation's error)."""


def variables_of(template: str) -> list[str]:
    """The template's variables, in order of first use."""
    return list(dict.fromkeys(_VARIABLE.findall(template)))


def render(template: str, values: dict[str, Any]) -> str:
    """The template with each ``{{variable}}`` replaced by its value as text."""
    return _VARIABLE.sub(lambda m: as_text(values.get(m.group(1))), template)


def check_path(path: str | None, where: str) -> None:
    """Raise :class:`JudgeConfigError` unless ``path`` is ``$`` followed by ``.key``,
    ``[n]``, ``['key']`` or ``[*]`` (every element) steps (or None)."""
    if path is None:
        return
    if not isinstance(path, str) or not path.startswith("$"):
        raise JudgeConfigError(f"{where}: expected a JSON path such as $.messages[0].content")
    rest = path[1:]
    pos = 0
    for match in _PATH_PART.finditer(rest):
        if match.start() != pos:
            break
        pos = match.end()
    if pos != len(rest):
        raise JudgeConfigError(
            f"{where}: {path!r} is not a supported JSON path ($ then .key, [n], ['key'] or"
            " [*] steps)"
        )


def select(value: Any, path: str | None) -> Any:
    """The part of ``value`` at a checked JSON ``path`` (None when it is absent; a list
    of the matches below a ``[*]`` step)."""
    if not path:
        return value
    if isinstance(value, str):  # a JSON text stored as a string
        try:
            value = _json.loads(value)
        except _json.JSONDecodeError:
            return None
    return _walk(value, _PATH_PART.findall(path[1:]))


def _walk(value: Any, steps: list[tuple[str, str, str, str]]) -> Any:
    for at, (key, index, quoted, every) in enumerate(steps):
        if every:
            if not isinstance(value, list):
                return None
            found = [_walk(item, steps[at + 1 :]) for item in value]
            return [f for f in found if f is not None]
        if index:
            if not isinstance(value, list) or int(index) >= len(value):
                return None
            value = value[int(index)]
        else:
            name = key or quoted
            if not isinstance(value, dict) or name not in value:
                return None
            value = value[name]
    return value


def check_mapping(raw: Any, where: str, sources: tuple[str, ...] = SOURCES) -> list[dict[str, Any]]:
    """A checked mapping list: ``{variable, source, jsonPath}`` entries."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise JudgeConfigError(f"{where}: expected a list of {{variable, source, jsonPath}}")
    out: list[dict[str, Any]] = []
    for i, entry in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise JudgeConfigError(f"{at}: expected an object")
        legacy = next((k for k in ("langfuseObject", "objectName") if k in entry), None)
        if legacy is not None:
            raise JudgeConfigError(
                f"{at}.{legacy}: picking a trace's named observation is only in Langfuse's"
                " read-only legacy mapping; evaluate it with target 'observation' and a"
                " 'name' filter"
            )
        variable, source = entry.get("variable"), entry.get("source")
        if not isinstance(variable, str) or not variable:
            raise JudgeConfigError(f"{at}.variable: required, a string")
        if source not in sources:
            raise JudgeConfigError(f"{at}.source: must be one of {', '.join(sources)}")
        check_path(entry.get("jsonPath"), f"{at}.jsonPath")
        if any(e["variable"] == variable for e in out):
            raise JudgeConfigError(f"{at}.variable: {variable!r} is mapped twice")
        out.append({"variable": variable, "source": source, "jsonPath": entry.get("jsonPath")})
    return out


def fill(
    mapping: list[dict[str, Any]], variables: list[str], obj: dict[str, Any]
) -> dict[str, Any]:
    """The variables' values from ``obj`` (``input``/``output``/``metadata``, and a run
    item's ``expected_output``/``experiment_item_metadata``); a variable without a
    mapping entry takes the field of its own name, if there is one."""
    by_name = {m["variable"]: m for m in mapping}
    values: dict[str, Any] = {}
    for name in variables:
        entry = by_name.get(name)
        if entry is None:
            values[name] = obj.get(name) if name in DEFAULT_FIELDS else None
        else:
            values[name] = select(obj.get(entry["source"]), entry.get("jsonPath"))
    return values


# --- output definitions ---------------------------------------------------------------


def _description(raw: Any, where: str) -> str:
    if not isinstance(raw, dict) or not isinstance(raw.get("description"), str):
        raise JudgeConfigError(f"{where}.description: required, a string")
    return str(raw["description"])


def _bound(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise JudgeConfigError(f"{where}: expected a number or null")
    return float(value)


def check_output_definition(raw: Any) -> dict[str, Any]:
    """A checked ``outputDefinition`` (``dataType``, ``reasoning``, ``score``)."""
    where = "outputDefinition"
    if not isinstance(raw, dict):
        raise JudgeConfigError(f"{where}: required, an object")
    data_type = raw.get("dataType")
    if data_type not in DATA_TYPES:
        raise JudgeConfigError(f"{where}.dataType: must be one of {', '.join(DATA_TYPES)}")
    reasoning = {"description": _description(raw.get("reasoning"), f"{where}.reasoning")}
    score: dict[str, Any] = {"description": _description(raw.get("score"), f"{where}.score")}
    given = raw["score"]
    if data_type == "NUMERIC":
        low = _bound(given.get("minValue"), f"{where}.score.minValue")
        high = _bound(given.get("maxValue"), f"{where}.score.maxValue")
        if low is not None and high is not None and low > high:
            raise JudgeConfigError(f"{where}.score: minValue must not exceed maxValue")
        score.update(minValue=low, maxValue=high)
    elif data_type == "CATEGORICAL":
        categories = given.get("categories")
        if (
            not isinstance(categories, list)
            or not categories
            or not all(isinstance(c, str) and c for c in categories)
        ):
            raise JudgeConfigError(f"{where}.score.categories: required, a list of strings")
        multiple = given.get("shouldAllowMultipleMatches")
        if not isinstance(multiple, bool):
            raise JudgeConfigError(f"{where}.score.shouldAllowMultipleMatches: required, a bool")
        score.update(
            categories=list(dict.fromkeys(categories)), shouldAllowMultipleMatches=multiple
        )
    return {"dataType": data_type, "reasoning": reasoning, "score": score}


def instructions(definition: dict[str, Any]) -> str:
    """The system message: how to answer, from the output definition."""
    score = definition["score"]
    kind = definition["dataType"]
    if kind == "NUMERIC":
        shape = "a number"
        low, high = score.get("minValue"), score.get("maxValue")
        if low is not None or high is not None:
            lowest = "-inf" if low is None else f"{low:g}"
            highest = "inf" if high is None else f"{high:g}"
            shape += f" from {lowest} to {highest}"
    elif kind == "BOOLEAN":
        shape = "true or false"
    else:
        options = ", ".join(_json.dumps(c) for c in score["categories"])
        shape = f"one of {options}"
        if score["shouldAllowMultipleMatches"]:
            shape += " (or a list of several of them)"
    return (
        "You are an evaluator. Answer with only a JSON object of the form"
        ' {"score": <score>, "reasoning": "<reasoning>"}.\n'
        f"score: {shape}. {score['description']}\n"
        f"reasoning: {definition['reasoning']['description']}"
    )


@dataclass(frozen=True, slots=True)
class Judgement:
    """A parsed answer: the score as stored (value and, for categories, its text)."""

    data_type: str
    value: float
    string_value: str | None
    reasoning: str


def _json_object(text: str) -> dict[str, Any]:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise JudgeAnswerError("the judge's answer holds no JSON object")
    try:
        value = _json.loads(text[start : end + 1])
    except _json.JSONDecodeError as exc:
        raise JudgeAnswerError(f"the judge's answer is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise JudgeAnswerError("the judge's answer is not a JSON object")
    return value


def parse_answer(text: str, definition: dict[str, Any]) -> Judgement:
    """The judgement in the judge's answer; :class:`JudgeAnswerError` saying why not."""
    answer = _json_object(text)
    if "score" not in answer:
        raise JudgeAnswerError("the judge's answer has no 'score'")
    raw, reasoning = answer["score"], answer.get("reasoning")
    reasoning = reasoning if isinstance(reasoning, str) else as_text(reasoning)
    kind = definition["dataType"]
    score = definition["score"]
    if kind == "BOOLEAN":
        truth = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
        value = truth.get(str(raw).strip().lower()) if not isinstance(raw, bool) else raw
        if value is None:
            raise JudgeAnswerError(f"the judge's score {raw!r} is not true or false")
        return Judgement(kind, 1.0 if value else 0.0, None, reasoning)
    if kind == "NUMERIC":
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise JudgeAnswerError(f"the judge's score {raw!r} is not a number") from None
        low, high = score.get("minValue"), score.get("maxValue")
        if (
            not math.isfinite(number)
            or (low is not None and number < low)
            or (high is not None and number > high)
        ):
            raise JudgeAnswerError(f"the judge's score {number:g} is outside [{low}, {high}]")
        return Judgement(kind, number, None, reasoning)
    chosen = raw if isinstance(raw, list) else [raw]
    if len(chosen) != 1 and not score["shouldAllowMultipleMatches"]:
        raise JudgeAnswerError("the judge chose several categories where one is allowed")
    for c in chosen:
        if c not in score["categories"]:
            raise JudgeAnswerError(f"the judge's category {c!r} is not one of the categories")
    if not chosen:
        raise JudgeAnswerError("the judge chose no category")
    first = score["categories"].index(chosen[0])
    return Judgement(kind, float(first), ", ".join(chosen), reasoning)
