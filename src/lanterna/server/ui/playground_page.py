"""The playground: run a prompt (text or chat, with its config as model parameters)
against one of the project's LLM connections with its variables filled in; see the
output, tokens, cost and latency; save the edited prompt as a new version. Opens
empty, on a prompt version (``?prompt=name&version=n``) or on a generation
(``?observation=id``: its messages, model and parameters)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ... import _json
from ...evaluation.connections import endpoint_of
from ...evaluation.llm import Completion, LlmError
from ...prompts.compile import compile_chat, compile_text, variables
from ...prompts.validate import PromptError, check_create
from ...store.db import Conn
from ..shapes import observation_json
from .fmt import pretty
from .prompts_page import prompt_url
from .web import Form, Page, UiError, page_form, project_page, redirect, render, rt_of

router = APIRouter()

#: Model parameters passed on to the endpoint (other config keys are the prompt's own).
PARAMETERS = (
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed",
    "presence_penalty", "frequency_penalty", "response_format",
)  # fmt: skip


@dataclass
class State:
    """What the playground form holds."""

    kind: str = "chat"
    prompt: str = '[{"role": "user", "content": "{{question}}"}]'
    config: str = "{}"
    model: str = ""
    provider: str = ""
    name: str = ""
    values: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def variables(self) -> list[str]:
        """The ``{{variables}}`` of the prompt."""
        return variables(self.prompt)


def _from_prompt(row: dict[str, Any]) -> State:
    config = dict(row.get("config") or {})
    model = config.pop("model", "") if isinstance(config.get("model"), str) else ""
    content = row["prompt"]
    text = content if isinstance(content, str) else pretty(content)
    return State(row["type"], text, pretty(config), model, name=row["name"],
                 source=f"prompt {row['name']} v{row['version']}")  # fmt: skip


def _from_generation(obs: dict[str, Any]) -> State:
    given = obs.get("input")
    messages = given.get("messages") if isinstance(given, dict) else given
    if isinstance(messages, list) and all(isinstance(m, dict) and "role" in m for m in messages):
        kind, text = "chat", pretty(messages)
    else:
        kind = "text"
        text = given if isinstance(given, str) else pretty(given)
    params = obs.get("modelParameters") or {}
    source = f"generation {obs['name'] or obs['id']}"
    model = obs.get("model") or ""
    return State(kind, text, pretty(params), model, name=obs.get("promptName") or "", source=source)


def _from_form(form: Form) -> State:
    state = State(
        kind="chat" if form.get("type") == "chat" else "text",
        prompt=form.raw("prompt").replace("\r\n", "\n"),
        config=form.raw("config") or "{}",
        model=form.get("model"),
        provider=form.get("provider"),
        name=form.get("name"),
    )
    state.values = {v: form.raw(f"var_{v}") for v in state.variables()}
    return state


async def _render(
    request: Request, page: Page, state: State, *, status: int = 200, **extra: Any
) -> Response:
    rt = rt_of(request)
    rows, _total = await rt.read(
        lambda c: rt.store.evaluations.page_connections(c, page.pid, 100, 0)
    )
    context = {"state": state, "providers": [r["provider"] for r in rows], "result": None,
               "error": "", **extra}  # fmt: skip
    return render(request, "playground.html", context, page=page, status=status)


@router.get("/project/{project_id}/playground")
async def playground(request: Request, project_id: str) -> Response:
    """The playground, on a prompt version or a generation when one is named."""
    page = await project_page(request, project_id)
    rt = rt_of(request)
    params = request.query_params
    state = State()
    if params.get("prompt"):
        version = params.get("version", "")
        number = int(version) if version.isdigit() else None
        label = None if number else (params.get("label") or "production")
        name = params["prompt"]
        row = await rt.read(
            lambda c: rt.store.prompts.get(c, page.pid, name, version=number, label=label)
        )
        if row is None:
            raise UiError(404, "Prompt not found.")
        state = _from_prompt(row)
    elif params.get("observation"):
        oid = params["observation"]
        row = await rt.read(lambda c: rt.store.observations.get_observation(c, page.pid, oid))
        if row is None:
            raise UiError(404, "Observation not found.")
        state = _from_generation(observation_json(rt.db.dialect, row))
    return await _render(request, page, state)


def _config(state: State) -> dict[str, Any]:
    try:
        config = _json.loads(state.config or "{}")
    except _json.JSONDecodeError:
        raise PromptError("config: not valid JSON") from None
    if not isinstance(config, dict):
        raise PromptError("config: a JSON object")
    return config


def _messages(state: State) -> list[dict[str, Any]]:
    if state.kind == "text":
        return [{"role": "user", "content": compile_text(state.prompt, state.values)}]
    try:
        messages = _json.loads(state.prompt)
    except _json.JSONDecodeError:
        raise PromptError('prompt: a chat prompt is a JSON list like [{"role": ...}]') from None
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise PromptError('prompt: a chat prompt is a JSON list like [{"role": ...}]')
    compiled = compile_chat(messages, state.values)
    # The wire format: stored messages carry ``type: chatmessage``; an unfilled
    # placeholder has no content to send.
    return [
        {k: v for k, v in m.items() if k != "type"}
        for m in compiled
        if m.get("type") != "placeholder"
    ]


async def _run(request: Request, page: Page, state: State) -> Response:
    rt = rt_of(request)
    try:
        config = _config(state)
        messages = _messages(state)
    except PromptError as exc:
        return await _render(request, page, state, status=400, error=str(exc))
    params = {k: config[k] for k in PARAMETERS if k in config}
    model = state.model or (config.get("model") if isinstance(config.get("model"), str) else "")
    if not model or not state.provider:
        return await _render(request, page, state, status=400,
                             error="Choose an LLM connection and a model.")  # fmt: skip
    row = await rt.read(
        lambda c: rt.store.evaluations.connection_by_provider(c, page.pid, state.provider)
    )
    if row is None:
        return await _render(request, page, state, status=400, error="Unknown LLM connection.")
    endpoint = endpoint_of(rt.secret_box(), row)
    try:
        completion: Completion = await run_in_threadpool(
            rt.llm.chat, endpoint, model, messages, params
        )
    except LlmError as exc:
        return await _render(request, page, state, status=502, error=exc.message)
    cost = await rt.read(lambda c: _cost(rt, c, page.pid, completion))
    result = {"output": completion.text, "model": completion.model, "usage": completion.usage,
              "cost": cost, "latency_ms": completion.latency_ms, "messages": messages}  # fmt: skip
    return await _render(request, page, state, result=result)


def _cost(rt: Any, conn: Conn, project_id: str, completion: Completion) -> float | None:
    """The completion's cost at the project's prices (None when the model has none)."""
    pricing = rt.store.models.pricing(conn, project_id)
    record = {
        "model": completion.model,
        "start_time": datetime.now(UTC),
        "provided_usage_details": completion.usage or None,
        "output": completion.text,
    }
    calc = pricing.calculate(record)
    return None if calc.total is None else float(calc.total)


async def _save(request: Request, page: Page, state: State) -> Response:
    rt = rt_of(request)
    try:
        config = _config(state)
        if state.model:
            config["model"] = state.model
        prompt: Any = state.prompt
        if state.kind == "chat":
            prompt = _json.loads(state.prompt) if state.prompt.strip() else None
        new = check_create({"name": state.name, "type": state.kind, "prompt": prompt,
                            "config": config, "labels": [],
                            "commitMessage": "saved from the playground"})  # fmt: skip
        author = page.viewer.user["email"]
        row = await rt.write(lambda c: rt.store.prompts.create(c, page.pid, new, created_by=author))
    except (PromptError, _json.JSONDecodeError) as exc:
        return await _render(request, page, state, status=400, error=str(exc))
    return redirect(prompt_url(page.pid, row["name"], version=row["version"]))


@router.post("/project/{project_id}/playground")
async def run_or_save(request: Request, project_id: str) -> Response:
    """Run the prompt (``action=run``) or save it as a new version (``action=save``)."""
    page, form = await page_form(request, project_id, "edit_prompts")
    state = _from_form(form)
    if form.get("action") == "save":
        return await _save(request, page, state)
    return await _run(request, page, state)
