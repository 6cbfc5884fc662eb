"""A drop-in for the ``openai`` package that traces every model call as a generation.

Importing this module instruments the ``openai`` client classes (idempotently), so::

    from lanterna.sdk.integrations.openai import openai   # instead of: import openai
    client = openai.OpenAI()
    client.chat.completions.create(model="gpt-4o", messages=[...],
                                   name="summarize", user_id="u1", session_id="s1")

Chat completions, completions, the Responses API and embeddings are traced, sync and
async, streaming included (the time to the first token is recorded; usage when the
stream carries it, e.g. with ``stream_options={"include_usage": True}``). Usage is sent
as OpenAI reports it, so cached, reasoning and audio tokens are counted by the server
without double counting. Calls nest under the current ``@observe`` call; outside one,
each call is a trace of its own. Extra keyword arguments understood (and not passed to
OpenAI): ``name``, ``metadata`` (unless ``store=True``), ``user_id``, ``session_id``,
``tags``, ``trace_id``, ``parent_observation_id`` and ``lanterna_prompt`` (a prompt
object or ``{name, version}`` to link the generation to).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import openai
from openai import AsyncOpenAI, AzureOpenAI, OpenAI

from .. import _errors
from ..client import get_client
from ..fields import prompt_link
from ..observe import end
from ..records import Observation, iso
from ._common import plain, set_extra, start

_PARAMETERS = (
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "n",
    "stop",
    "reasoning_effort",
    "tool_choice",
    "parallel_tool_calls",
    "dimensions",
)
_OURS = (
    "name",
    "user_id",
    "session_id",
    "tags",
    "trace_id",
    "parent_observation_id",
    "lanterna_prompt",
    "langfuse_prompt",
)


def _pop_ours(kwargs: dict[str, Any]) -> dict[str, Any]:
    ours = {k: kwargs.pop(k) for k in _OURS if k in kwargs}
    if "metadata" in kwargs and not kwargs.get("store"):
        ours["metadata"] = kwargs.pop("metadata")
    return ours


def _begin(api: str, kwargs: dict[str, Any], ours: dict[str, Any]) -> Observation | None:
    client = get_client()
    if not client.active:
        return None
    fields = {k: ours[k] for k in ("user_id", "session_id", "tags") if ours.get(k)}
    kind = "embedding" if api == "embeddings" else "generation"
    name = ours.get("name") or ("OpenAI-embedding" if kind == "embedding" else "OpenAI-generation")
    obs = start(client, kind, str(name), None, fields or None, trace_id=ours.get("trace_id"))
    if obs is None:
        return None
    if ours.get("trace_id") and ours.get("parent_observation_id"):
        obs.parent_id = str(ours["parent_observation_id"])
    limit = client.max_field_size
    if api == "chat":
        value: Any = kwargs.get("messages")
        if kwargs.get("tools") or kwargs.get("functions"):
            value = {"messages": value, "tools": kwargs.get("tools") or kwargs.get("functions")}
    elif api == "responses":
        value = kwargs.get("input")
        if kwargs.get("instructions"):
            value = {"instructions": kwargs["instructions"], "input": value}
    elif api == "completions":
        value = kwargs.get("prompt")
    else:
        value = kwargs.get("input")
    obs.input = plain(value, limit)
    if ours.get("metadata") is not None:
        meta = plain(ours["metadata"], limit)
        obs.metadata = meta if isinstance(meta, dict) else {"metadata": meta}
    params = {k: kwargs[k] for k in _PARAMETERS if kwargs.get(k) is not None}
    fmt = kwargs.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type"):
        params["response_format"] = fmt["type"]
    set_extra(
        obs,
        model=kwargs.get("model"),
        modelParameters=plain(params, 10_000) or None,
        **prompt_link(ours.get("lanterna_prompt") or ours.get("langfuse_prompt") or {}),
    )
    return obs


def _dump(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(exclude_none=True) if callable(dump) else value


def _usage(usage: Any) -> dict[str, Any] | None:
    raw = _dump(usage)
    if not isinstance(raw, dict):
        return None
    # OpenAI's own shape; the server splits cached/reasoning/audio tokens out of it.
    return {k: v for k, v in raw.items() if v is not None} or None


def _finish(obs: Observation, api: str, response: Any) -> None:
    limit = obs.trace.client.max_field_size
    if api == "chat":
        choices = getattr(response, "choices", None) or []
        messages = [_dump(c.message) for c in choices]
        obs.output = plain(messages[0] if len(messages) == 1 else messages, limit)
    elif api == "responses":
        text = getattr(response, "output_text", None)
        obs.output = plain(text if text else _dump(getattr(response, "output", None)), limit)
    elif api == "completions":
        choices = getattr(response, "choices", None) or []
        texts = [c.text for c in choices]
        obs.output = plain(texts[0] if len(texts) == 1 else texts, limit)
    else:
        data = getattr(response, "data", None) or []
        obs.output = {"embeddings": len(data), "dimensions": len(data[0].embedding) if data else 0}
    usage = getattr(response, "usage", None)
    if api == "embeddings" and usage is not None:
        wire_usage: Any = {"input": usage.prompt_tokens, "total": usage.total_tokens}
    else:
        wire_usage = _usage(usage) if usage is not None else None
    set_extra(obs, model=getattr(response, "model", None), usageDetails=wire_usage)
    end(obs, None, None, False)


class _Accumulator:
    """What a stream delivered so far: text, tool calls, usage, model."""

    def __init__(self, obs: Observation, api: str) -> None:
        self.obs = obs
        self.api = api
        self.text: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.usage: Any = None
        self.model: str | None = None
        self.first = True
        self.done = False

    def add(self, chunk: Any) -> None:
        try:
            self._add(chunk)
        except Exception as exc:
            _errors.report("openai.stream", exc)

    def _add(self, chunk: Any) -> None:
        got = False
        if self.api == "responses":
            kind = getattr(chunk, "type", "")
            if kind == "response.output_text.delta":
                self.text.append(chunk.delta)
                got = True
            elif kind == "response.completed":
                response = chunk.response
                self.usage = getattr(response, "usage", None)
                self.model = getattr(response, "model", None)
        else:
            self.model = getattr(chunk, "model", None) or self.model
            if getattr(chunk, "usage", None) is not None:
                self.usage = chunk.usage
            for choice in getattr(chunk, "choices", None) or []:
                if getattr(choice, "index", 0) != 0:
                    continue
                if self.api == "completions":
                    if choice.text:
                        self.text.append(choice.text)
                        got = True
                    continue
                delta = choice.delta
                if delta is None:
                    continue
                if delta.content:
                    self.text.append(delta.content)
                    got = True
                for call in delta.tool_calls or []:
                    got = True
                    entry = self.tool_calls.setdefault(
                        call.index,
                        {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                    )
                    if call.id:
                        entry["id"] = call.id
                    if call.function is not None:
                        entry["function"]["name"] += call.function.name or ""
                        entry["function"]["arguments"] += call.function.arguments or ""
        if got and self.first:
            self.first = False
            set_extra(self.obs, completionStartTime=iso(time.time_ns()))

    def finish(self, exc: BaseException | None = None) -> None:
        if self.done:
            return
        self.done = True
        try:
            text = "".join(self.text)
            if self.api == "chat":
                output: Any = {"role": "assistant", "content": text}
                if self.tool_calls:
                    output["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
            else:
                output = text
            self.obs.output = plain(output, self.obs.trace.client.max_field_size)
            set_extra(
                self.obs,
                model=self.model,
                usageDetails=_usage(self.usage) if self.usage is not None else None,
            )
        except Exception as err:
            _errors.report("openai.stream", err)
        end(self.obs, None, exc, False)


class _StreamProxy:
    """An ``openai.Stream`` that records what passes through it."""

    def __init__(self, stream: Any, acc: _Accumulator) -> None:
        self._stream = stream
        self._acc = acc

    def __iter__(self) -> _StreamProxy:
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self._stream)
        except StopIteration:
            self._acc.finish()
            raise
        except BaseException as exc:
            self._acc.finish(exc)
            raise
        self._acc.add(chunk)
        return chunk

    def __enter__(self) -> _StreamProxy:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        self._acc.finish()
        self._stream.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _AsyncStreamProxy:
    """An ``openai.AsyncStream`` that records what passes through it."""

    def __init__(self, stream: Any, acc: _Accumulator) -> None:
        self._stream = stream
        self._acc = acc

    def __aiter__(self) -> _AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            self._acc.finish()
            raise
        except BaseException as exc:
            self._acc.finish(exc)
            raise
        self._acc.add(chunk)
        return chunk

    async def __aenter__(self) -> _AsyncStreamProxy:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        self._acc.finish()
        await self._stream.close()

    async def aclose(self) -> None:
        await self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _safe_begin(api: str, kwargs: dict[str, Any]) -> Observation | None:
    ours = _pop_ours(kwargs)
    try:
        return _begin(api, kwargs, ours)
    except Exception as exc:
        _errors.report("openai.begin", exc)
        return None


def _safe_finish(obs: Observation, api: str, result: Any) -> None:
    try:
        _finish(obs, api, result)
    except Exception as exc:
        _errors.report("openai.finish", exc)


def _returned(
    obs: Observation,
    api: str,
    kwargs: dict[str, Any],
    result: Any,
    proxy: Callable[[Any, _Accumulator], Any],
) -> Any:
    """The call returned: a stream is handed back wrapped (ends with its last chunk),
    anything else ends the observation now."""
    if kwargs.get("stream"):
        return proxy(result, _Accumulator(obs, api))
    _safe_finish(obs, api, result)
    return result


def _wrap_sync(original: Callable[..., Any], api: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        obs = _safe_begin(api, kwargs)
        if obs is None:
            return original(self, *args, **kwargs)
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            end(obs, None, exc, False)
            raise
        return _returned(obs, api, kwargs, result, _StreamProxy)

    create.__lanterna_wrapped__ = True  # type: ignore[attr-defined]
    return create


def _wrap_async(original: Callable[..., Any], api: str) -> Callable[..., Any]:
    @functools.wraps(original)
    async def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        obs = _safe_begin(api, kwargs)
        if obs is None:
            return await original(self, *args, **kwargs)
        try:
            result = await original(self, *args, **kwargs)
        except BaseException as exc:
            end(obs, None, exc, False)
            raise
        return _returned(obs, api, kwargs, result, _AsyncStreamProxy)

    create.__lanterna_wrapped__ = True  # type: ignore[attr-defined]
    return create


def instrument() -> None:
    """Wrap the ``create`` methods of the openai resources (safe to call repeatedly)."""
    from openai.resources import completions, embeddings, responses
    from openai.resources.chat import completions as chat

    targets = [
        (chat.Completions, "chat", False),
        (chat.AsyncCompletions, "chat", True),
        (completions.Completions, "completions", False),
        (completions.AsyncCompletions, "completions", True),
        (responses.Responses, "responses", False),
        (responses.AsyncResponses, "responses", True),
        (embeddings.Embeddings, "embeddings", False),
        (embeddings.AsyncEmbeddings, "embeddings", True),
    ]
    for cls, api, is_async in targets:
        original = cls.__dict__.get("create")
        if original is None or getattr(original, "__lanterna_wrapped__", False):
            continue
        wrapped = (_wrap_async if is_async else _wrap_sync)(original, api)
        setattr(cls, "create", wrapped)  # noqa: B010 - one loop over several classes


instrument()

__all__ = ["AsyncOpenAI", "AzureOpenAI", "OpenAI", "instrument", "openai"]
