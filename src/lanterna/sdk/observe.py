"""``@observe`` and ``with observe(...)``: trace functions and blocks with one contextvar.

The decorator picks its wrapper once, when it decorates: plain, coroutine, generator or
async generator function. While an observed call runs, :data:`CURRENT` holds its
:class:`~lanterna.sdk.records.Observation`; a call with no current observation starts a
trace and is that trace's root observation. Each call costs a clock reading, an id, a
small object, a contextvar set/reset and a deque append; everything else (timestamps
as text, JSON, HTTP) happens on the exporter's thread.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import time
from collections.abc import AsyncGenerator, Callable, Generator
from contextvars import Token
from typing import Any, Literal, TypeVar, overload

from . import _errors, _state
from .capture import LARGE, _Budget, _walk, capture_args, captured_size, positional
from .fields import prompt_link
from .handles import ObservationHandle
from .records import Observation, Trace, _bits, _rng, new_observation

F = TypeVar("F", bound=Callable[..., Any])

#: The observation of the innermost observed call or block, or None outside any (kept in
#: ``_state`` so modules the client imports can read it).
CURRENT = _state.CURRENT
_get_current = CURRENT.get
_set_current = CURRENT.set
_reset_current = CURRENT.reset
_now = time.time_ns

AS_TYPES = (
    "span",
    "generation",
    "agent",
    "tool",
    "chain",
    "retriever",
    "embedding",
    "event",
    "evaluator",
    "guardrail",
)

# Keyword arguments an observed call takes for itself (ours and langfuse 2.x's names):
# they attach the call to a trace started elsewhere (another thread or service).
_TRACE_KW = ("lanterna_trace_id", "langfuse_parent_trace_id")
_PARENT_KW = ("lanterna_parent_observation_id", "langfuse_parent_observation_id")
_ID_KW = ("lanterna_observation_id", "langfuse_observation_id")
_SPECIAL = frozenset(_TRACE_KW + _PARENT_KW + _ID_KW)


def _client() -> Any:
    from .client import get_client

    return get_client()


class _Spec:
    """What one decoration or one ``observe(...)`` asked for."""

    __slots__ = ("capture_input", "capture_output", "kind", "link", "name", "names", "skip")

    def __init__(
        self, name: str | None, as_type: str, capture_input: bool, capture_output: bool
    ) -> None:
        if as_type not in AS_TYPES:
            raise ValueError(f"as_type must be one of {', '.join(AS_TYPES)}, got {as_type!r}")
        self.name = name or "span"
        self.kind = as_type
        self.capture_input = capture_input
        self.capture_output = capture_output
        self.names: tuple[str, ...] = ()
        self.skip = 0
        #: ``promptName``/``promptVersion`` of a prompt given to observe(), else None.
        self.link: dict[str, Any] | None = None

    def for_function(self, fn: Callable[..., Any], explicit_name: bool) -> _Spec:
        spec = _Spec(
            self.name if explicit_name else fn.__name__,
            self.kind,
            self.capture_input,
            self.capture_output,
        )
        spec.link = self.link
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            params = []
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        names = [p.name for p in params if p.kind in positional]
        # A method's receiver is not input worth recording.
        if names and names[0] in ("self", "cls"):
            spec.skip = 1
            names = names[1:]
        spec.names = tuple(names)
        return spec


def begin(spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Observation | None:
    """Start an observation for one call (None: tracing is off). Pops our own kwargs."""
    if kwargs and not _SPECIAL.isdisjoint(kwargs):
        return _begin_explicit(spec, args, kwargs)
    parent = _get_current()
    if parent is not None:  # a child: its trace's client (no process-wide lookup)
        trace = parent.trace
        client = trace.client
        if not client.active:
            return None
        obs = new_observation(trace, parent.oid, spec.kind, spec.name)
    else:
        client = _state.client or _client()
        if not client.active:
            return None
        rate = client.sample_rate
        trace = Trace(_bits(128), client, rate >= 1.0 or _rng.random() < rate)
        obs = new_observation(trace, None, spec.kind, spec.name)
        trace.root = obs
        trace.root_id = obs.oid
        trace.root_kind = spec.kind
        obs.top = True
    if spec.link is not None:
        obs.extra = dict(spec.link)
    if spec.capture_input and (args or kwargs) and trace.sampled:
        limit = client.max_field_size
        given = args[spec.skip :] if spec.skip else args
        if kwargs:
            simple = None
        elif len(given) == 1 and type(given[0]) is str and spec.names:
            # One text argument that fits (a prompt, a question): what positional()
            # makes of it, without the call.
            used = len(given[0])
            simple = ({spec.names[0]: given[0]}, used) if used <= limit else None
        else:
            simple = positional(spec.names, given, limit)
        if simple is not None:
            obs.input, used = simple
        else:
            budget = _Budget(limit)
            obs.input = capture_args(spec.names, given, kwargs, limit, budget)
            used = limit - budget.left
        if used >= LARGE:
            obs.size = used
    return obs


def _begin_explicit(
    spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Observation | None:
    """A call that names its trace/parent/id through our keyword arguments."""
    special = {k: kwargs.pop(k) for k in _SPECIAL if k in kwargs}
    trace_id = next((special[k] for k in _TRACE_KW if special.get(k)), None)
    parent_id = next((special[k] for k in _PARENT_KW if special.get(k)), None)
    own_id = next((special[k] for k in _ID_KW if special.get(k)), None)
    if trace_id:
        client = _state.client or _client()
        if not client.active:
            return None
        trace = Trace(str(trace_id), client, True)
        obs: Observation | None = new_observation(
            trace, str(parent_id) if parent_id else None, spec.kind, spec.name
        )
        assert obs is not None
        obs.top = True
        if spec.link is not None:
            obs.extra = dict(spec.link)
        if spec.capture_input and (args or kwargs):
            obs.input = capture_args(
                spec.names, args[spec.skip :] if spec.skip else args, kwargs, client.max_field_size
            )
    else:
        obs = begin(spec, args, kwargs)
    if obs is not None and own_id:
        obs.oid = str(own_id)
        if obs.trace.root_id is not None and obs.top:
            obs.trace.root_id = obs.oid
    return obs


def end(obs: Observation, output: Any, exc: BaseException | None, capture_output: bool) -> None:
    """Finish ``obs`` (with the call's result or exception) and hand it to the exporter."""
    try:
        obs.end = _now()
        trace = obs.trace
        if exc is not None:
            _mark_error(obs, exc)
        elif capture_output and output is not None and trace.sampled and obs.output is None:
            _take_output(obs, trace, output)
        if obs.top:
            trace.closed = True
            trace.root = None
        if trace.sampled:
            trace.client.submit(obs)
    except Exception as err:
        _errors.report("observe.end", err)


def _take_output(obs: Observation, trace: Trace, output: Any) -> None:
    """Record a call's result (not None, the trace sampled, no output set by an update)."""
    n = len(output) if type(output) is str else LARGE
    if n < LARGE and n <= trace.client.max_field_size:
        obs.output = output  # what captured_size() keeps of text, without the call
    else:
        value, size = captured_size(output, trace.client.max_field_size)
        obs.output = value
        if size:
            obs.size += size


def _mark_error(obs: Observation, exc: BaseException) -> None:
    if isinstance(exc, GeneratorExit):
        return  # the consumer stopped iterating early: not an error
    asyncio = sys.modules.get("asyncio")  # not imported: no task could be cancelled
    if asyncio is not None and isinstance(exc, asyncio.CancelledError):
        obs.level, obs.status = "WARNING", "cancelled"
        return
    obs.level = "ERROR"
    obs.status = str(exc) or type(exc).__name__


def _begin_failed(exc: Exception, kwargs: dict[str, Any]) -> Observation | None:
    """Report a failure to start tracing a call; the call then runs untraced."""
    _errors.report("observe.begin", exc)
    for key in _SPECIAL:
        kwargs.pop(key, None)
    return None


# --- wrappers, one per kind of function -------------------------------------------------


def _begin_safely(spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Observation | None:
    """:func:`begin`, or ``None`` (call untraced) when starting the trace fails."""
    try:
        return begin(spec, args, kwargs)
    except Exception as exc:
        return _begin_failed(exc, kwargs)


def _leave(
    obs: Observation,
    token: Token[Observation | None],
    spec: _Spec,
    result: Any,
    exc: BaseException | None,
) -> None:
    """The call returned or raised: restore the caller's current observation, end ours."""
    _reset_current(token)
    if exc is not None:
        end(obs, None, exc, False)
    else:
        end(obs, result, None, spec.capture_output)


def _wrap_sync(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    # The hot path: begin/leave inlined, and end() too when the call returns (the same
    # steps, without a call per observation); module functions bound to locals once.
    capture_output = spec.capture_output
    start, finish, failed = begin, end, _begin_failed
    set_current, reset_current = _set_current, _reset_current
    now, take_output, report = _now, _take_output, _errors.report

    kind, name = spec.kind, spec.name
    # begin()'s commonest case, inlined: a call without arguments to capture, without
    # our keyword arguments or a prompt link, inside an observed call (a child) or not
    # (a trace's root); anything else goes through begin(), which does the same.
    plain = spec.link is None
    get_current, new_obs, new_trace, bits, rng = _get_current, new_observation, Trace, _bits, _rng
    state, default_client = _state, _client

    @functools.wraps(fn)
    def observed(*args: Any, **kwargs: Any) -> Any:
        try:
            if plain and not args and not kwargs:
                parent = get_current()
                if parent is not None:
                    trace = parent.trace
                    obs = new_obs(trace, parent.oid, kind, name) if trace.client.active else None
                else:
                    client = state.client or default_client()
                    if client.active:
                        rate = client.sample_rate
                        trace = new_trace(bits(128), client, rate >= 1.0 or rng.random() < rate)
                        obs = new_obs(trace, None, kind, name)
                        trace.root = obs
                        trace.root_id = obs.oid
                        trace.root_kind = kind
                        obs.top = True
                    else:
                        obs = None
            else:
                obs = start(spec, args, kwargs)
        except Exception as exc:
            obs = failed(exc, kwargs)
        if obs is None:
            return fn(*args, **kwargs)
        token = set_current(obs)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            reset_current(token)
            finish(obs, None, exc, False)
            raise
        reset_current(token)
        try:  # end(obs, result, None, capture_output), inlined
            obs.end = now()
            trace = obs.trace
            if capture_output and result is not None and trace.sampled and obs.output is None:
                take_output(obs, trace, result)
            if obs.top:
                trace.closed = True
                trace.root = None
            if trace.sampled:
                trace.client.submit(obs)
        except Exception as err:
            report("observe.end", err)
        return result

    return observed


def _wrap_async(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def observed(*args: Any, **kwargs: Any) -> Any:
        obs = _begin_safely(spec, args, kwargs)
        if obs is None:
            return await fn(*args, **kwargs)
        token = CURRENT.set(obs)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            _leave(obs, token, spec, None, exc)
            raise
        _leave(obs, token, spec, result, None)
        return result

    return observed


class _Collector:
    """Items a generator yielded, kept within the size budget, as one output value."""

    __slots__ = ("budget", "cut", "items")

    def __init__(self, limit: int) -> None:
        self.items: list[Any] = []
        self.budget = _Budget(limit)
        self.cut = 0

    def add(self, item: Any) -> None:
        if self.budget.left > 0:
            self.items.append(_walk(item, self.budget, 1))
        else:
            self.cut += 1

    def value(self) -> Any:
        items = self.items
        out: Any = "".join(items) if items and all(type(i) is str for i in items) else items
        if self.cut:
            marker = f"...[lanterna: truncated {self.cut} more items]"
            out = out + marker if isinstance(out, str) else [*out, marker]
        return out


def _wrap_generator(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(fn)
    def observed(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        obs = _begin_safely(spec, args, kwargs)
        if obs is None:
            return (yield from fn(*args, **kwargs))
        collect = (
            _Collector(obs.trace.client.max_field_size)
            if spec.capture_output and obs.trace.sampled
            else None
        )
        try:
            token = CURRENT.set(obs)
            try:
                gen = fn(*args, **kwargs)
            finally:
                CURRENT.reset(token)
            send, payload = True, None
            while True:
                token = CURRENT.set(obs)
                try:
                    item = gen.send(payload) if send else gen.throw(payload)
                except StopIteration as stop:
                    result = stop.value
                    break
                finally:
                    CURRENT.reset(token)
                if collect is not None:
                    collect.add(item)
                try:
                    payload, send = (yield item), True
                except GeneratorExit:
                    gen.close()
                    raise
                except BaseException as thrown:
                    payload, send = thrown, False
        except GeneratorExit:  # the consumer stopped early: keep what it got
            end(obs, collect.value() if collect else None, None, collect is not None)
            raise
        except BaseException as exc:
            end(obs, None, exc, False)
            raise
        end(obs, collect.value() if collect else None, None, collect is not None)
        return result

    return observed


def _wrap_async_generator(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def observed(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        obs = _begin_safely(spec, args, kwargs)
        if obs is None:
            async for item in fn(*args, **kwargs):
                yield item
            return
        collect = (
            _Collector(obs.trace.client.max_field_size)
            if spec.capture_output and obs.trace.sampled
            else None
        )
        try:
            agen = fn(*args, **kwargs)
            send, payload = True, None
            while True:
                token = CURRENT.set(obs)
                try:
                    if send:
                        item = await agen.asend(payload)
                    else:
                        item = await agen.athrow(payload)
                except StopAsyncIteration:
                    break
                finally:
                    CURRENT.reset(token)
                if collect is not None:
                    collect.add(item)
                try:
                    payload, send = (yield item), True
                except GeneratorExit:
                    await agen.aclose()
                    raise
                except BaseException as thrown:
                    payload, send = thrown, False
        except GeneratorExit:
            end(obs, collect.value() if collect else None, None, collect is not None)
            raise
        except BaseException as exc:
            end(obs, None, exc, False)
            raise
        end(obs, collect.value() if collect else None, None, collect is not None)

    return observed


def wrap(fn: F, spec: _Spec) -> F:
    """The observed version of ``fn``; the wrapper kind is chosen here, once."""
    if inspect.isasyncgenfunction(fn):
        return _wrap_async_generator(fn, spec)  # type: ignore[return-value]
    if inspect.iscoroutinefunction(fn):
        return _wrap_async(fn, spec)  # type: ignore[return-value]
    if inspect.isgeneratorfunction(fn):
        return _wrap_generator(fn, spec)  # type: ignore[return-value]
    return _wrap_sync(fn, spec)  # type: ignore[return-value]


# --- the public observe() -------------------------------------------------------------


class Observer:
    """What ``observe(...)`` returns: a decorator, and a (sync or async) context manager.

    As a context manager it yields an :class:`ObservationHandle` for the block::

        with observe(name="load_document") as span:
            span.update(output={"size": 3})
    """

    __slots__ = ("_explicit_name", "_open", "_spec")

    def __init__(self, spec: _Spec, explicit_name: bool) -> None:
        self._spec = spec
        self._explicit_name = explicit_name
        # Blocks entered and not yet exited, by observation id. Keyed so that one
        # observe(...) object can be used by several threads or tasks at once: at exit
        # the current observation is the one this block entered (blocks nest).
        self._open: dict[int | str, Token[Observation | None]] = {}

    def __call__(self, fn: F) -> F:
        return wrap(fn, self._spec.for_function(fn, self._explicit_name))

    def __enter__(self) -> ObservationHandle:
        try:
            obs = begin(self._spec, (), {})
        except Exception as exc:
            obs = _begin_failed(exc, {})
        if obs is not None:
            self._open[obs.oid] = CURRENT.set(obs)
        return ObservationHandle(obs)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        obs = CURRENT.get()
        token = self._open.pop(obs.oid, None) if obs is not None else None
        if obs is not None and token is not None:
            # exited in another context than entered: leave the variable be
            with contextlib.suppress(ValueError):
                CURRENT.reset(token)
            end(obs, None, exc, False)
        return False

    async def __aenter__(self) -> ObservationHandle:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        return self.__exit__(exc_type, exc, tb)


@overload
def observe(func: F, /) -> F: ...
@overload
def observe(
    func: None = None,
    /,
    *,
    name: str | None = None,
    as_type: str = "span",
    capture_input: bool = True,
    capture_output: bool = True,
    prompt: Any = None,
) -> Observer: ...
def observe(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    as_type: str = "span",
    capture_input: bool = True,
    capture_output: bool = True,
    prompt: Any = None,
) -> Any:
    """Trace a function (``@observe`` / ``@observe(...)``) or a block (``with observe(...)``).

    ``name`` defaults to the function's name; ``as_type`` is one of span, generation,
    agent, tool, chain, retriever, embedding, event (also evaluator, guardrail). The
    function's arguments (by parameter name) and its return value are recorded unless
    ``capture_input``/``capture_output`` is False; a generator's output is its yielded
    items (joined when they are all strings). An exception sets level ERROR and the
    status message, then propagates unchanged. Works on plain, ``async``, generator and
    async generator functions. The outermost observed call is the trace and its root
    observation. ``prompt`` (a prompt from ``get_prompt``, or ``{name, version}``) links
    each observation to that prompt version (a fallback prompt links nothing).
    """
    spec = _Spec(name, as_type, capture_input, capture_output)
    if prompt is not None:
        spec.link = prompt_link(prompt) or None
    if func is not None:
        return wrap(func, spec.for_function(func, False))
    return Observer(spec, name is not None)
