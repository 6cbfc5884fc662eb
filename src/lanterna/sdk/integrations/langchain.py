"""A LangChain callback handler: chains, chat/LLM calls, tools and retrievers as one
trace per top-level run (nested under the current ``@observe`` call when there is one).

Drop-in for langfuse 2.x's ``langfuse.callback.CallbackHandler``::

    from lanterna.sdk.integrations.langchain import CallbackHandler

    handler = CallbackHandler(user_id="u1", session_id="s1", metadata={"agent": "research"})
    chain.invoke({"input": "..."}, config={"callbacks": [handler]})
    llm = ChatOpenAI(model="gpt-4", callbacks=[handler])   # or on the model itself

Generations record the model, its parameters, the messages, the reply, token usage
(cached, reasoning and audio tokens split out) and the time to the first streamed token.

A prompt from ``get_prompt`` is linked to the generation that uses it as in Langfuse's
handler: put it in the prompt template's metadata under ``langfuse_prompt`` (or
``lanterna_prompt``), and the next model call of the same chain records its name and
version::

    prompt = client.get_prompt("qa", type="chat")
    template = ChatPromptTemplate.from_messages(prompt.get_langchain_prompt())
    template.metadata = {"langfuse_prompt": prompt}
    (template | llm).invoke({"question": "..."}, config={"callbacks": [handler]})
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from .. import _errors, _state
from ..client import Lanterna, get_client
from ..fields import prompt_link
from ..observe import end
from ..records import Observation, iso
from ._common import plain, set_extra, start, usage_from_details

_ROLES = {
    "human": "user",
    "ai": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "function",
    "chat": "user",
}
#: Run metadata keys that carry a prompt object to link (Langfuse's, and ours).
_PROMPT_KEYS = ("langfuse_prompt", "lanterna_prompt")
_MODEL_PARAMETERS = (
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "top_p",
    "top_k",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "n",
    "stop",
    "request_timeout",
    "reasoning_effort",
)

_Callback = TypeVar("_Callback", bound=Callable[..., None])


def _guarded(callback: _Callback) -> _Callback:
    """Wrap a LangChain callback so a failure of ours is reported, never raised.

    LangChain runs the user's chain and our callbacks in the same call; an exception
    escaping here would break the traced app, so it goes to ``_errors`` instead.
    """
    where = f"langchain.{callback.__name__}"

    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            callback(*args, **kwargs)
        except Exception as exc:
            _errors.report(where, exc)

    return wrapper  # type: ignore[return-value]


class CallbackHandler(BaseCallbackHandler):
    """Sends LangChain runs to Lanterna. Keys/host default to the process-wide client.

    ``user_id``, ``session_id``, ``trace_name``, ``metadata``, ``tags``, ``release`` and
    ``version`` apply to every trace the handler starts (langfuse 2.x's arguments; its
    other options, such as ``threads`` or ``flush_at``, are accepted and ignored).
    """

    # Run in the caller's thread and context (not an executor), so that runs nest under
    # the current @observe call and appear in order; the handler never blocks.
    run_inline = True
    raise_error = False

    def __init__(
        self,
        public_key: str | None = None,
        secret_key: str | None = None,
        host: str | None = None,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        trace_name: str | None = None,
        metadata: dict[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        release: str | None = None,
        version: str | None = None,
        client: Lanterna | None = None,
        **langfuse_options: Any,
    ) -> None:
        super().__init__()
        self.client = client or _client_for(public_key, secret_key, host, langfuse_options)
        self.trace_fields: dict[str, Any] = {
            k: v
            for k, v in {
                "user_id": user_id,
                "session_id": session_id,
                "name": trace_name,
                "metadata": metadata or None,
                "tags": list(tags) if tags else None,
                "release": release,
                "version": version,
            }.items()
            if v is not None
        }
        self._runs: dict[UUID, Observation] = {}
        self._first_token: set[UUID] = set()
        #: Parent of every run in progress, to find a prompt registered further up.
        self._parents: dict[UUID, UUID | None] = {}
        #: Prompts waiting for the next model call under the run they are keyed by.
        self._prompts: dict[UUID, Any] = {}
        #: The id of the last trace this handler started or joined.
        self.trace_id: str | None = None

    # --- helpers --------------------------------------------------------------------

    def _start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        kind: str,
        name: str,
        value: Any,
        metadata: dict[str, Any] | None,
        tags: list[str] | None,
    ) -> None:
        self._parents[run_id] = parent_run_id
        prompt = _prompt_in(metadata)
        if prompt is not None and parent_run_id is not None:
            # A prompt template's run: the model call after it is its sibling.
            self._prompts[parent_run_id] = prompt
        parent = self._runs.get(parent_run_id) if parent_run_id is not None else None
        fields = None
        if parent is None:
            fields = dict(self.trace_fields)  # a new trace is named after its root run
            if tags:
                fields["tags"] = sorted(set(fields.get("tags", [])) | set(tags))
        obs = start(self.client, kind, name, parent, fields)
        if obs is None:
            return
        limit = self.client.max_field_size
        if value is not None:
            obs.input = plain(value, limit)
        run_metadata = {
            k: v
            for k, v in (metadata or {}).items()
            if not k.startswith("ls_") and k not in _PROMPT_KEYS
        }
        if run_metadata:
            obs.metadata = plain(run_metadata, limit)
        self._runs[run_id] = obs
        self.trace_id = obs.trace.id

    def _end(self, run_id: UUID, output: Any = None, error: BaseException | None = None) -> None:
        obs = self._runs.pop(run_id, None)
        self._first_token.discard(run_id)
        self._parents.pop(run_id, None)
        self._prompts.pop(run_id, None)
        if obs is None:
            return
        if output is not None:
            obs.output = plain(output, self.client.max_field_size)
        end(obs, None, error, False)

    # --- chains ---------------------------------------------------------------------

    @_guarded
    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A chain or runnable started."""
        name = _name(serialized, kwargs, "chain")
        kind = "agent" if "agent" in name.lower() else "chain"
        self._start(run_id, parent_run_id, kind, name, inputs, metadata, tags)

    @_guarded
    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """A chain finished."""
        self._end(run_id, outputs)

    @_guarded
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A chain failed."""
        self._end(run_id, error=error)

    # --- models ---------------------------------------------------------------------

    @_guarded
    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A chat model was called."""
        flat = [_message(m) for batch in messages for m in batch]
        self._start_generation(serialized, flat, run_id, parent_run_id, tags, metadata, kwargs)

    @_guarded
    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A completion model was called."""
        value = prompts[0] if len(prompts) == 1 else prompts
        self._start_generation(serialized, value, run_id, parent_run_id, tags, metadata, kwargs)

    def _start_generation(
        self,
        serialized: dict[str, Any] | None,
        value: Any,
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        kwargs: dict[str, Any],
    ) -> None:
        params = kwargs.get("invocation_params") or {}
        name = _name(serialized, kwargs, "llm")
        self._start(run_id, parent_run_id, "generation", name, value, metadata, tags)
        obs = self._runs.get(run_id)
        if obs is None:
            return
        model = (
            params.get("model") or params.get("model_name") or (metadata or {}).get("ls_model_name")
        )
        parameters = {k: params[k] for k in _MODEL_PARAMETERS if params.get(k) is not None}
        link = prompt_link(self._take_prompt(run_id, metadata) or {})
        set_extra(obs, model=model, modelParameters=plain(parameters, 10_000) or None, **link)

    def _take_prompt(self, run_id: UUID, metadata: dict[str, Any] | None) -> Any:
        """The prompt for a model call: in its own metadata, else the nearest one registered
        on an enclosing run (used up, as Langfuse does: one prompt, one generation)."""
        own = _prompt_in(metadata)
        if own is not None:
            # _start registered it for the parent too (inherited metadata): used up here.
            parent = self._parents.get(run_id)
            if parent is not None:
                self._prompts.pop(parent, None)
            return own
        ancestor = self._parents.get(run_id)
        while ancestor is not None:
            if ancestor in self._prompts:
                return self._prompts.pop(ancestor)
            ancestor = self._parents.get(ancestor)
        return None

    @_guarded
    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """A streamed token: the first one fixes the time to first token."""
        if run_id in self._first_token:
            return
        obs = self._runs.get(run_id)
        if obs is not None:
            self._first_token.add(run_id)
            set_extra(obs, completionStartTime=iso(time.time_ns()))

    @_guarded
    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """A model call finished: its reply, model name and usage."""
        obs = self._runs.get(run_id)
        if obs is not None:
            output, usage, model = _llm_result(response)
            set_extra(obs, usageDetails=usage)
            if model:
                set_extra(obs, model=model)
            self._end(run_id, output)

    @_guarded
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A model call failed."""
        self._end(run_id, error=error)

    # --- tools and retrievers -------------------------------------------------------

    @_guarded
    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A tool was called."""
        self._start(
            run_id,
            parent_run_id,
            "tool",
            _name(serialized, kwargs, "tool"),
            inputs if inputs is not None else input_str,
            metadata,
            tags,
        )

    @_guarded
    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """A tool returned."""
        self._end(run_id, getattr(output, "content", output))

    @_guarded
    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A tool failed."""
        self._end(run_id, error=error)

    @_guarded
    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A retriever was queried."""
        self._start(
            run_id,
            parent_run_id,
            "retriever",
            _name(serialized, kwargs, "retriever"),
            query,
            metadata,
            tags,
        )

    @_guarded
    def on_retriever_end(self, documents: Sequence[Any], *, run_id: UUID, **kwargs: Any) -> None:
        """A retriever returned documents."""
        docs = [
            {
                "page_content": getattr(d, "page_content", d),
                "metadata": getattr(d, "metadata", {}),
            }
            for d in documents
        ]
        self._end(run_id, docs)

    @_guarded
    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A retriever failed."""
        self._end(run_id, error=error)

    # --- langfuse 2.x conveniences -----------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver what the handler recorded (see ``Lanterna.flush``)."""
        return self.client.flush(timeout)

    def auth_check(self) -> bool:
        """See ``Lanterna.auth_check``."""
        return self.client.auth_check()

    def get_trace_id(self) -> str | None:
        """The id of the last trace this handler started or joined."""
        return self.trace_id


def _client_for(
    public_key: str | None, secret_key: str | None, host: str | None, options: dict[str, Any]
) -> Lanterna:
    """The process-wide client when the keys match it, else a client of their own."""
    explicit = public_key is not None or secret_key is not None or host is not None
    if _state.client is None and explicit:
        return Lanterna(public_key, secret_key, host, **options)  # becomes process-wide
    client = get_client()
    same = (
        public_key in (None, client.public_key)
        and secret_key in (None, client.secret_key)
        and (host is None or host.rstrip("/") == client.host)
    )
    if same:
        return client
    return Lanterna(public_key, secret_key, host, **options)


def _prompt_in(metadata: dict[str, Any] | None) -> Any:
    if not metadata:
        return None
    for key in _PROMPT_KEYS:
        if metadata.get(key) is not None:
            return metadata[key]
    return None


def _name(serialized: dict[str, Any] | None, kwargs: dict[str, Any], default: str) -> str:
    if kwargs.get("name"):
        return str(kwargs["name"])
    if serialized:
        if serialized.get("name"):
            return str(serialized["name"])
        ids = serialized.get("id")
        if isinstance(ids, list) and ids:
            return str(ids[-1])
    return default


def _message(message: Any) -> dict[str, Any]:
    """A LangChain message as ``{role, content}`` (plus tool calls / name when present)."""
    kind = getattr(message, "type", None)
    role = getattr(message, "role", None) or _ROLES.get(str(kind), str(kind))
    out: dict[str, Any] = {"role": role, "content": getattr(message, "content", message)}
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        out["tool_calls"] = tool_calls
    name = getattr(message, "name", None)
    if name:
        out["name"] = name
    tool_call_id = getattr(message, "tool_call_id", None)
    if tool_call_id:
        out["tool_call_id"] = tool_call_id
    return out


def _llm_result(response: Any) -> tuple[Any, dict[str, int] | None, str | None]:
    """The reply, usage and model name of an ``LLMResult``."""
    generations = getattr(response, "generations", None) or [[]]
    last = generations[-1][-1] if generations and generations[-1] else None
    output: Any = None
    usage = None
    model = None
    if last is not None:
        message = getattr(last, "message", None)
        if message is not None:
            output = _message(message)
            meta = getattr(message, "usage_metadata", None)
            if meta:
                usage = usage_from_details(
                    meta.get("input_tokens"),
                    meta.get("output_tokens"),
                    meta.get("total_tokens"),
                    meta.get("input_token_details"),
                    meta.get("output_token_details"),
                )
            response_meta = getattr(message, "response_metadata", None) or {}
            model = response_meta.get("model_name") or response_meta.get("model")
        else:
            output = getattr(last, "text", None)
    llm_output = getattr(response, "llm_output", None) or {}
    if usage is None:
        raw = llm_output.get("token_usage") or llm_output.get("usage")
        if isinstance(raw, dict):
            usage = usage_from_details(
                raw.get("prompt_tokens", raw.get("input_tokens")),
                raw.get("completion_tokens", raw.get("output_tokens")),
                raw.get("total_tokens"),
                raw.get("prompt_tokens_details"),
                raw.get("completion_tokens_details"),
            )
    model = model or llm_output.get("model_name") or llm_output.get("model")
    return output, usage, model


__all__ = ["CallbackHandler"]
