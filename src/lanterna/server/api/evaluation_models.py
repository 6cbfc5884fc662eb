"""The OpenAPI document's schemas of the evaluation routes: LLM connections
(``/api/public/llm-connections``), evaluators (``/api/public/unstable/evaluators``) and
evaluation rules (``/api/public/unstable/evaluation-rules``): the bodies they read and
what they answer. The routes read the JSON themselves and check it
(:func:`lanterna.evaluation.connections.check_connection`,
:func:`lanterna.evaluation.definitions.check_evaluator` and ``check_rule``: a 400 naming
the field); these models only describe it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.json_schema import SkipJsonSchema

from ..doc_models import DocModel, request_body
from .body import NOT_BLANK
from .params import Meta

#: What a rule evaluates (``dataset`` is accepted as another name of ``experiment``).
Target = Literal["observation", "trace", "experiment", "dataset"]
Source = Literal[
    "input", "output", "metadata", "tool_calls", "expected_output", "experiment_item_metadata"
]


# --- LLM connections ---------------------------------------------------------------

#: The adapters (Langfuse's ``LlmAdapter``; ``evaluation.connections.ADAPTERS``).
Adapter = Literal["anthropic", "openai", "azure", "bedrock", "google-vertex-ai", "google-ai-studio"]
#: ``baseURL`` as the server takes it (``alerts.outbound.check_url``): http:// or
#: https://, a host, no user name or password, a port up to 65535. IPv6 literals are
#: accepted too, but left out here.
BASE_URL = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~%!$&'()*+,;=-]+"
    r"(:([0-9]{0,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
    r"([/?#][^\x00]*)?$"
)
#: ``displaySecretKey``: ``...`` and the key's last four characters (``...`` alone when
#: the key has eight characters or fewer). The key itself is never answered.
MASKED_KEY = r"^\.\.\.[\s\S]{0,4}$"
_NotEmpty = Annotated[str, Field(min_length=1)]


class LlmConnectionBody(DocModel):
    """``PUT /api/public/llm-connections``: create the connection named ``provider`` or
    replace all its settings and key. The key and the extra headers' values are sealed
    before they are stored and never answered."""

    provider: str = Field(max_length=200, pattern=NOT_BLANK, description="Unique in the project")
    adapter: Adapter
    secretKey: str = Field(min_length=1, description="Stored sealed; answered only masked")
    baseURL: str | None = Field(None, pattern=BASE_URL)
    customModels: list[_NotEmpty] | None = None
    withDefaultModels: bool | None = Field(None, description="Default true")
    extraHeaders: dict[str, str] | None = Field(
        None,
        description="Sent with every call; answered by name only (extraHeaderKeys)",
        json_schema_extra={"propertyNames": {"pattern": r"^[^\x00]+$"}},
    )
    config: dict[str, Any] | None = Field(None, description="Adapter-specific, kept as given")


class LlmConnection(DocModel):
    """A connection as Langfuse's ``LlmConnection``: no secret in it."""

    id: str
    provider: str
    adapter: Adapter
    displaySecretKey: str = Field(
        pattern=MASKED_KEY,
        description="The key masked: '...' and its last four characters ('...' alone for"
        " a key of eight characters or fewer)",
    )
    baseURL: str | None
    customModels: list[str]
    withDefaultModels: bool
    extraHeaderKeys: list[str]
    config: dict[str, Any] | None
    createdAt: str
    updatedAt: str


class LlmConnections(DocModel):
    """A page of the project's connections, by provider."""

    data: list[LlmConnection]
    meta: Meta


# --- evaluators ------------------------------------------------------------------------

#: ``jsonPath`` as ``judge.check_path`` takes it: ``$`` then ``.key``, ``[n]``,
#: ``['key']`` or ``[*]`` steps.
JSON_PATH = r"^\$(\.[A-Za-z_][A-Za-z0-9_-]*|\[[0-9]+\]|\[['\"][^'\"\x00]+['\"]\]|\[\*\])*$"


class EvaluatorMapping(DocModel):
    """An evaluator's default mapping entry: fills ``variable`` from the evaluated
    object's ``input``, ``output`` or ``metadata`` (``jsonPath`` into it); a variable
    appears once."""

    variable: str = Field(min_length=1)
    source: Literal["input", "output", "metadata"]
    jsonPath: str | None = Field(None, pattern=JSON_PATH)


class JudgeModel(DocModel):
    """The judge's model: ``provider`` names one of the project's LLM connections (422
    otherwise)."""

    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)


class OutputText(DocModel):
    """What the judge is told to give in this field."""

    description: str


class NumericJudgeScore(DocModel):
    """A numeric score, optionally within inclusive bounds (``minValue`` <= ``maxValue``)."""

    description: str
    minValue: float | None = None
    maxValue: float | None = None


class CategoricalJudgeScore(DocModel):
    """One or more of the categories."""

    description: str
    categories: list[_NotEmpty] = Field(min_length=1)
    shouldAllowMultipleMatches: bool


class NumericOutput(DocModel):
    """A NUMERIC judge score."""

    dataType: Literal["NUMERIC"]
    reasoning: OutputText
    score: NumericJudgeScore


class BooleanOutput(DocModel):
    """A BOOLEAN judge score."""

    dataType: Literal["BOOLEAN"]
    reasoning: OutputText
    score: OutputText


class CategoricalOutput(DocModel):
    """A CATEGORICAL judge score."""

    dataType: Literal["CATEGORICAL"]
    reasoning: OutputText
    score: CategoricalJudgeScore


OutputDefinition = Annotated[
    NumericOutput | BooleanOutput | CategoricalOutput, Field(discriminator="dataType")
]


class JudgeEvaluatorBody(DocModel):
    """An LLM-as-a-judge evaluator (``type`` absent or null: this one). The mapping's
    variables are the prompt's ``{{variable}}`` names."""

    name: str = Field(max_length=200, pattern=NOT_BLANK)
    type: Literal["llm_as_judge"] | None = None
    prompt: str = Field(pattern=NOT_BLANK)
    outputDefinition: OutputDefinition
    modelConfig: JudgeModel
    mapping: list[EvaluatorMapping] | None = None


class _Deterministic(DocModel):
    """What every deterministic evaluator body has."""

    name: str = Field(max_length=200, pattern=NOT_BLANK)
    mapping: list[EvaluatorMapping] | None = None


class TextMatchConfig(DocModel):
    """``expected`` (absent: the ``expected`` variable, a dataset item's expected output)."""

    expected: str | None = None
    caseSensitive: bool = True


class TextMatchEvaluatorBody(_Deterministic):
    """Exact match (BOOLEAN) or Levenshtein similarity (NUMERIC, 0 to 1)."""

    type: Literal["exact_match", "levenshtein"]
    config: TextMatchConfig | None = None


class ContainsConfig(DocModel):
    """The text the output must contain."""

    value: str
    caseSensitive: bool = True


class ContainsEvaluatorBody(_Deterministic):
    """Whether the output contains ``config.value`` (BOOLEAN)."""

    type: Literal["contains"]
    config: ContainsConfig


class RegexConfig(DocModel):
    """An RE2 pattern (one RE2 cannot compile is a 400)."""

    pattern: str
    caseSensitive: bool = True


class RegexEvaluatorBody(_Deterministic):
    """Whether the pattern matches the output (BOOLEAN)."""

    type: Literal["regex"]
    config: RegexConfig


class JsonValidEvaluatorBody(_Deterministic):
    """Whether the output is JSON (BOOLEAN); ``config`` is not read."""

    type: Literal["json_valid"]
    config: dict[str, Any] | None = None


class JsonSchemaConfig(DocModel):
    """A JSON schema (checked when the evaluator is created; its patterns on RE2)."""

    schema_: dict[str, Any] | bool = Field(alias="schema")


class JsonSchemaEvaluatorBody(_Deterministic):
    """Whether the output, as JSON, is valid by ``config.schema`` (BOOLEAN)."""

    type: Literal["json_schema"]
    config: JsonSchemaConfig


class NumericConfig(DocModel):
    """``expected`` (absent: the ``expected`` variable), within ``tolerance`` (relative:
    a share of ``expected``)."""

    expected: float | SkipJsonSchema[None] = None  # null is refused: absent or a number
    tolerance: float = Field(0, ge=0)
    relative: bool = False


class NumericEvaluatorBody(_Deterministic):
    """Whether the output, as a number, is within tolerance of the expected (BOOLEAN)."""

    type: Literal["numeric"]
    config: NumericConfig | None = None


class EvaluatorBody(
    RootModel[
        JudgeEvaluatorBody
        | TextMatchEvaluatorBody
        | ContainsEvaluatorBody
        | RegexEvaluatorBody
        | JsonValidEvaluatorBody
        | JsonSchemaEvaluatorBody
        | NumericEvaluatorBody
    ]
):
    """``POST /api/public/unstable/evaluators``: an LLM-as-a-judge evaluator or a
    deterministic one (``code`` evaluators are refused). The same ``name`` again makes
    its next version."""


DeterministicType = Literal[
    "exact_match", "contains", "regex", "json_valid", "json_schema", "numeric", "levenshtein"
]


class _EvaluatorBase(DocModel):
    """What every evaluator answer has (Langfuse's ``unstableEvaluatorBase``)."""

    id: str
    name: str
    version: int
    variables: list[str]
    mapping: list[Mapping] | None
    evaluationRuleCount: int
    createdAt: str
    updatedAt: str


class JudgeEvaluator(_EvaluatorBase):
    """An LLM-as-a-judge evaluator (Langfuse's ``unstableLlmAsJudgeEvaluator``)."""

    type: Literal["llm_as_judge"]
    prompt: str
    outputDefinition: OutputDefinition
    modelConfig: JudgeModel | None


class DeterministicOutput(DocModel):
    """The score type a deterministic evaluator gives."""

    dataType: Literal["BOOLEAN", "NUMERIC"]


class DeterministicEvaluator(_EvaluatorBase):
    """A deterministic evaluator (Lanterna's): its ``config`` as given (``{}`` for none)."""

    type: DeterministicType
    outputDefinition: DeterministicOutput
    config: dict[str, Any]


AnyEvaluator = Annotated[JudgeEvaluator | DeterministicEvaluator, Field(discriminator="type")]


class Evaluator(RootModel[AnyEvaluator]):
    """The latest version of an evaluator."""


class Evaluators(DocModel):
    """A page of the latest version of each of the project's evaluators, by name."""

    data: list[AnyEvaluator]
    meta: Meta


# --- evaluation rules ------------------------------------------------------------------


class FilterCondition(DocModel):
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


class Mapping(DocModel):
    """Fills one evaluator variable from the evaluated object: ``tool_calls`` for the
    observation and experiment targets, ``expected_output`` and
    ``experiment_item_metadata`` for experiments only; ``jsonPath`` a path such as
    ``$.messages[0].content`` or ``$[*].name``."""

    variable: str
    source: Source
    jsonPath: str | None = None


class RuleMapping(DocModel):
    """A rule's mapping entry as the routes take it (a variable once; the source one
    the target offers: see :class:`Mapping`)."""

    variable: str = Field(min_length=1)
    source: Source
    jsonPath: str | None = Field(None, pattern=JSON_PATH)


class EvaluatorRef(DocModel):
    """An evaluator family by name (its latest version is used; a name the project
    lacks is a 400). ``type`` is not read."""

    name: str
    type: str | None = None


class Assignment(DocModel):
    """The evaluator of a rule with its mapping (exactly one per rule)."""

    evaluator: EvaluatorRef
    mapping: list[RuleMapping] | None = None


class RuleBody(DocModel):
    """Create a rule: ``name``, ``enabled`` and either ``evaluator`` (with an optional
    ``mapping``) or ``evaluators`` (exactly one entry; then neither ``evaluator`` nor
    ``mapping``). ``sampling`` in (0, 1], default 1; ``target`` default ``trace``. The
    mapping names the evaluator's variables, from the sources the target offers; the
    filter's columns are the target's (docs/evaluations.md)."""

    name: str = Field(max_length=200, pattern=NOT_BLANK)
    evaluator: EvaluatorRef | SkipJsonSchema[None] = None
    mapping: list[RuleMapping] | None = None
    evaluators: list[Assignment] | None = Field(None, min_length=1, max_length=1)
    target: Target | SkipJsonSchema[None] = None
    enabled: bool
    sampling: float | None = Field(None, gt=0, le=1)
    filter: list[FilterCondition] | None = None


class RuleChange(DocModel):
    """Change a rule: at least one field, the others keep their value (``mapping``
    alone keeps the evaluator); a new ``target`` starts from the time of the change."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    name: Annotated[str, Field(max_length=200, pattern=NOT_BLANK)] | SkipJsonSchema[None] = None
    evaluator: EvaluatorRef | SkipJsonSchema[None] = None
    mapping: list[RuleMapping] | None = None
    evaluators: list[Assignment] | SkipJsonSchema[None] = Field(None, min_length=1, max_length=1)
    target: Target | SkipJsonSchema[None] = None
    enabled: bool | SkipJsonSchema[None] = None
    sampling: float | None = Field(None, gt=0, le=1)
    filter: list[FilterCondition] | None = None


class RuleEvaluator(DocModel):
    """The rule's evaluator family."""

    id: str
    name: str
    type: str


class RuleAssignment(DocModel):
    """The rule's evaluator with its mapping."""

    evaluator: RuleEvaluator
    mapping: list[Mapping] | None


class EvaluationRule(DocModel):
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


class EvaluationRules(DocModel):
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


def rule_body(model: type[BaseModel]) -> dict[str, Any]:
    """A rule route's documented, required JSON body (``openapi_extra=``), its nested
    models inlined (the request body has no ``$defs`` of its own to point at)."""

    def schema() -> dict[str, Any]:
        made = model.model_json_schema()
        inlined: dict[str, Any] = _inline(made, made.pop("$defs", {}))
        return inlined

    return request_body(schema)
