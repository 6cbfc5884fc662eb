"""Prompt management in the SDK: fetch with a cache and a fallback, compile, create, relabel.

``get_prompt`` serves from a per-client cache keyed by ``(name, version|label)``:

- a fresh entry is returned with no request;
- an expired entry is returned at once while one background thread per key fetches the
  current version (stale-while-revalidate); a failed refresh keeps serving the entry;
- a miss fetches synchronously (retrying connection errors, 429 and 5xx). When the
  server cannot be reached or fails, a caller-given fallback (a value or a callable) is
  used instead of raising, with one warning per outage; for a short while afterwards
  misses go straight to the fallback, so a down server costs the app one timeout, not
  one per call;
- a 404 evicts the entry and raises :class:`PromptNotFoundError`, unless there is a
  fallback.

Requests go through the client's :class:`~lanterna.sdk.transport.Transport` (auth,
proxy, TLS and retry rules shared with the exporter): a connection per request, so any
thread may fetch, and nothing an instrumentation of httpx or requests would trace.
Nothing here imports the server side.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from ..prompts.compile import compile_chat, compile_text
from ..prompts.compile import variables as _variables
from . import _errors
from .errors import LanternaConnectionError, LanternaError
from .transport import RETRY_STATUSES, SYSTEM_CLOCK, Clock, Transport

DEFAULT_TTL_SECONDS = 60.0
DEFAULT_MAX_RETRIES = 2
MAX_RETRIES = 4
#: The longest a miss goes straight to the fallback after a failed fetch (capped by the
#: TTL): how often a down server is asked again for a key nobody has cached.
COOL_DOWN_SECONDS = 5.0
_PATH = "/api/public/v2/prompts"

Fallback = str | list[dict[str, Any]] | Callable[[], Any] | None


class PromptError(LanternaError):
    """A prompt request that the server refused or could not answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        #: The HTTP status, or None when no answer came.
        self.status = status


class PromptNotFoundError(PromptError, LookupError):
    """No prompt version matches the name and version or label asked for (HTTP 404)."""


class PromptUnavailableError(PromptError):
    """The server could not be reached, or answered 5xx/429, on every attempt."""


class Prompt:
    """One prompt version as the server returned it, or a fallback.

    ``prompt`` is the text (``type == "text"``) or the list of chat messages
    (``{"role", "content"}`` and ``{"type": "placeholder", "name"}``); ``config`` is
    whatever JSON was stored with the version. A fallback has ``is_fallback=True`` and
    version 0 (unless a version was asked for), and generations using it are not linked.
    """

    def __init__(
        self,
        *,
        name: str,
        version: int,
        type: str,
        prompt: Any,
        config: Any = None,
        labels: list[str] | None = None,
        tags: list[str] | None = None,
        commit_message: str | None = None,
        is_fallback: bool = False,
        id: str | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.type = type
        self.prompt = prompt
        self.config = config if config is not None else {}
        self.labels = list(labels or [])
        self.tags = list(tags or [])
        self.commit_message = commit_message
        self.is_fallback = is_fallback
        #: The server's id of this version (None for a fallback).
        self.id = id

    @classmethod
    def from_api(cls, data: Any) -> Prompt:
        """A prompt from a ``GET/POST /api/public/v2/prompts`` answer."""
        if not isinstance(data, dict):
            raise PromptError("the server's answer is not a prompt")
        kind = data.get("type") or ("chat" if isinstance(data.get("prompt"), list) else "text")
        body = data.get("prompt")
        version = data.get("version")
        if not isinstance(data.get("name"), str) or not isinstance(version, int):
            raise PromptError("the server's answer is not a prompt")
        if isinstance(body, list) and kind == "chat":
            body = [_message(m) for m in body]
        elif not (isinstance(body, str) and kind == "text"):
            raise PromptError("the server's answer is not a prompt")
        return cls(
            name=data["name"],
            version=version,
            type=kind,
            prompt=body,
            config=data.get("config"),
            labels=data.get("labels") or [],
            tags=data.get("tags") or [],
            commit_message=data.get("commitMessage"),
            id=data.get("id"),
        )

    def compile(
        self, values: Mapping[str, Any] | None = None, /, *, strict: bool = False, **kwargs: Any
    ) -> Any:
        """Fill ``{{variables}}`` (and, in a chat prompt, placeholders with message lists).

        Variables come as keyword arguments and/or a mapping (for names that are not
        identifiers). Unknown variables stay as written, and unfilled placeholders stay
        as placeholder entries, unless ``strict``: then a
        :class:`~lanterna.prompts.compile.MissingVariablesError` names them all. None
        fills as an empty string. Returns the text, or the list of messages.
        """
        given = {**(values or {}), **kwargs}
        filled = {k: ("" if v is None else v) for k, v in given.items()}
        if self.type == "chat":
            return compile_chat(self.prompt, filled, strict=strict)
        return compile_text(self.prompt, filled, strict=strict)

    @property
    def variables(self) -> list[str]:
        """The ``{{variable}}`` names the prompt uses, in order of first use."""
        if self.type != "chat":
            return _variables(self.prompt)
        seen: dict[str, None] = {}
        for message in self.prompt:
            if isinstance(message.get("content"), str):
                seen.update(dict.fromkeys(_variables(message["content"])))
        return list(seen)

    def get_langchain_prompt(self, **kwargs: Any) -> Any:
        """The prompt in LangChain's template syntax (``{var}``), as Langfuse's SDK gives it.

        Keyword arguments are filled in first. Other braces are doubled so LangChain reads
        them as text. A chat prompt becomes ``(role, content)`` tuples, and an unfilled
        placeholder ``("placeholder", "{name}")``, which ``ChatPromptTemplate`` expands.
        """
        compiled = self.compile(**kwargs) if kwargs else self.prompt
        if self.type != "chat":
            return _to_langchain(compiled)
        out: list[tuple[str, str]] = []
        for message in compiled:
            if message.get("type") == "placeholder":
                out.append(("placeholder", "{" + str(message.get("name")) + "}"))
            else:
                out.append((str(message.get("role")), _to_langchain(str(message.get("content")))))
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Prompt):
            return NotImplemented
        return (self.name, self.version, self.type, self.prompt, self.config) == (
            other.name,
            other.version,
            other.type,
            other.prompt,
            other.config,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by content

    def __repr__(self) -> str:
        kind = " fallback" if self.is_fallback else ""
        return f"<Prompt {self.name!r} v{self.version} {self.type}{kind} labels={self.labels}>"


def _message(message: Any) -> dict[str, Any]:
    """A stored chat message as users write them: without the server's type marker."""
    if not isinstance(message, dict):
        raise PromptError("the server's answer is not a prompt")
    if message.get("type") == "placeholder":
        return {"type": "placeholder", "name": message.get("name")}
    return {k: v for k, v in message.items() if not (k == "type" and v == "chatmessage")}


def _to_langchain(text: str) -> str:
    from ..prompts.compile import VARIABLE

    parts = []
    last = 0
    for match in VARIABLE.finditer(text):
        parts.append(text[last : match.start()].replace("{", "{{").replace("}", "}}"))
        parts.append("{" + match.group(1) + "}")
        last = match.end()
    parts.append(text[last:].replace("{", "{{").replace("}", "}}"))
    return "".join(parts)


# --- HTTP ---------------------------------------------------------------------------


def _message_of(status: int, data: Any) -> str:
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"]
    return f"HTTP {status}"


# --- the cache -----------------------------------------------------------------------


class _Entry:
    __slots__ = ("expires", "prompt")

    def __init__(self, prompt: Prompt, expires: float) -> None:
        self.prompt = prompt
        self.expires = expires


def _env_ttl() -> float:
    for name in ("LANTERNA_PROMPT_CACHE_TTL_SECONDS", "LANGFUSE_PROMPT_CACHE_DEFAULT_TTL_SECONDS"):
        raw = os.environ.get(name)
        if raw:
            try:
                return float(raw)
            except ValueError:
                _errors.logger.warning("lanterna: %s=%r is not a number; ignored", name, raw)
    return DEFAULT_TTL_SECONDS


class PromptManager:
    """The prompt API of one client: its cache, fetches, creation and relabelling.

    ``clock`` times cache entries and the waits between fetch retries (tests pass one
    they control, so an entry goes stale without waiting for it).
    """

    def __init__(
        self, transport: Transport, *, fetch_timeout: float = 5.0, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.transport = transport
        self.clock = clock
        self.default_ttl = _env_ttl()
        self.fetch_timeout = fetch_timeout
        self._cache: dict[tuple[str, str], _Entry] = {}
        self._init_runtime()
        _live.add(self)

    def _init_runtime(self) -> None:
        """State a forked child must not share (a lock maybe held, threads not there)."""
        self._lock = threading.Lock()
        self._refreshing: set[tuple[str, str]] = set()
        #: Keys whose last fetch failed, and until when misses skip the server.
        self._down: dict[tuple[str, str], float] = {}
        #: Keys a warning was logged for in the current outage.
        self._warned: set[tuple[str, str]] = set()
        #: Bumped by every invalidation, so a fetch begun before it stores nothing.
        self._epoch = 0

    # --- get ---------------------------------------------------------------------------

    def get(
        self,
        name: str,
        version: int | None = None,
        label: str | None = None,
        *,
        type: str = "text",
        cache_ttl_seconds: float | None = None,
        fallback: Fallback = None,
        max_retries: int | None = None,
        fetch_timeout_seconds: float | None = None,
    ) -> Prompt:
        """See :meth:`lanterna.Lanterna.get_prompt`."""
        if not name:
            raise ValueError("a prompt name is required")
        if version is not None and label is not None:
            raise ValueError("give either version or label, not both")
        which = f"version:{version}" if version is not None else f"label:{label or 'production'}"
        key = (name, which)
        ttl = self.default_ttl if cache_ttl_seconds is None else float(cache_ttl_seconds)
        retries = DEFAULT_MAX_RETRIES
        if max_retries is not None:
            retries = min(max(int(max_retries), 0), MAX_RETRIES)
        timeout = self.fetch_timeout if fetch_timeout_seconds is None else fetch_timeout_seconds
        fetch = (name, version, label, retries, timeout)
        now = self.clock.monotonic()
        with self._lock:
            entry = self._cache.get(key) if ttl > 0 else None
            if entry is not None and entry.expires <= now and key not in self._refreshing:
                self._refreshing.add(key)
                refresh = True
            else:
                refresh = False
            skip = fallback is not None and self._down.get(key, 0.0) > now
        if entry is not None:
            if refresh:
                self._start_refresh(key, fetch, ttl)
            return entry.prompt
        if skip:
            return _fallback(name, version, label, type, fallback)
        epoch = self._epoch
        try:
            prompt = self._fetch(*fetch)
        except PromptError as exc:
            if isinstance(exc, PromptNotFoundError):
                self._evict(key)
            else:
                with self._lock:
                    self._down[key] = self.clock.monotonic() + min(max(ttl, 0.0), COOL_DOWN_SECONDS)
            if fallback is None:
                raise
            self._warn(key, f"prompt {_describe(key)}: {exc}; using the fallback")
            return _fallback(name, version, label, type, fallback)
        self._store(key, prompt, ttl, epoch)
        return prompt

    def _start_refresh(self, key: tuple[str, str], fetch: tuple[Any, ...], ttl: float) -> None:
        thread = threading.Thread(
            target=self._refresh,
            args=(key, fetch, ttl, self._epoch),
            name="lanterna-prompt-refresh",
            daemon=True,
        )
        try:
            thread.start()
        except RuntimeError:  # at interpreter shutdown: keep serving the cached entry
            with self._lock:
                self._refreshing.discard(key)

    def _refresh(
        self, key: tuple[str, str], fetch: tuple[Any, ...], ttl: float, epoch: int
    ) -> None:
        try:
            prompt = self._fetch(*fetch)
        except PromptNotFoundError as exc:
            self._evict(key)
            self._warn(key, f"prompt {_describe(key)}: {exc}; removed from the cache")
        except PromptError as exc:
            with self._lock:
                entry = self._cache.get(key)
                if entry is not None:  # ask again after a pause, not on every call
                    entry.expires = self.clock.monotonic() + min(ttl, COOL_DOWN_SECONDS)
            self._warn(key, f"prompt {_describe(key)}: {exc}; serving the cached version")
        except Exception as exc:
            _errors.report("prompts.refresh", exc)
        else:
            self._store(key, prompt, ttl, epoch)
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def _fetch(
        self, name: str, version: int | None, label: str | None, retries: int, timeout: float
    ) -> Prompt:
        path = f"{_PATH}/{urllib.parse.quote(name, safe='')}"
        if version is not None:
            path += f"?version={int(version)}"
        elif label is not None:
            path += "?" + urllib.parse.urlencode({"label": label})
        try:
            reply = self.transport.request(
                "GET", path, timeout=timeout, retries=retries, clock=self.clock
            )
        except LanternaConnectionError as exc:
            raise PromptUnavailableError(f"server unreachable ({exc})") from exc
        status, data = reply.status_code, reply.data()
        if status == 200:
            return Prompt.from_api(data)
        message = _message_of(status, data)
        if status == 404:
            hint = ""
            if version is None and label is None:
                hint = (
                    " (no version has the label 'production': give one that label,"
                    " or ask for label='latest' or a version)"
                )
            raise PromptNotFoundError(message + hint, 404)
        if status in RETRY_STATUSES:
            raise PromptUnavailableError(f"HTTP {status}: {message}", status)
        raise PromptError(f"HTTP {status}: {message}", status)

    def _store(self, key: tuple[str, str], prompt: Prompt, ttl: float, epoch: int) -> None:
        with self._lock:
            self._down.pop(key, None)
            self._warned.discard(key)
            if ttl > 0 and epoch == self._epoch:
                self._cache[key] = _Entry(prompt, self.clock.monotonic() + ttl)

    def _evict(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._cache.pop(key, None)

    def _warn(self, key: tuple[str, str], message: str) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        _errors.logger.warning("lanterna: %s", message)

    # --- invalidation ------------------------------------------------------------------

    def invalidate(self, name: str) -> None:
        """Forget every cached version and label of ``name``."""
        with self._lock:
            self._epoch += 1
            for key in [k for k in self._cache if k[0] == name]:
                del self._cache[key]

    def clear(self) -> None:
        """Forget every cached prompt (and every remembered failure)."""
        with self._lock:
            self._epoch += 1
            self._cache.clear()
            self._down.clear()
            self._warned.clear()

    # --- create and relabel ------------------------------------------------------------

    def create(
        self,
        *,
        name: str,
        prompt: str | list[dict[str, Any]],
        labels: list[str] | None = None,
        tags: list[str] | None = None,
        type: str | None = None,
        config: Any = None,
        commit_message: str | None = None,
    ) -> Prompt:
        """See :meth:`lanterna.Lanterna.create_prompt`."""
        kind = type or ("chat" if isinstance(prompt, list) else "text")
        if kind == "chat" and not isinstance(prompt, list):
            raise ValueError("a chat prompt is a list of messages")
        if kind == "text" and not isinstance(prompt, str):
            raise ValueError("a text prompt is a string")
        body: dict[str, Any] = {
            "name": name,
            "type": kind,
            "prompt": prompt,
            "labels": list(labels or []),
            "config": config if config is not None else {},
        }
        if tags is not None:
            body["tags"] = list(tags)
        if commit_message is not None:
            body["commitMessage"] = commit_message
        created = self._call("POST", _PATH, body)
        self.invalidate(name)
        return created

    def update_labels(self, name: str, version: int, new_labels: list[str]) -> Prompt:
        """See :meth:`lanterna.Lanterna.update_prompt_labels`."""
        path = f"{_PATH}/{urllib.parse.quote(name, safe='')}/versions/{int(version)}"
        updated = self._call("PATCH", path, {"newLabels": list(new_labels)})
        self.invalidate(name)
        return updated

    def _call(self, method: str, path: str, body: Any) -> Prompt:
        # Not retried: a creation whose answer was lost would be made twice.
        try:
            reply = self.transport.send(method, path, body, timeout=self.fetch_timeout)
        except LanternaConnectionError as exc:
            raise PromptUnavailableError(f"server unreachable ({exc})") from exc
        status, data = reply.status_code, reply.data()
        if status == 404:
            raise PromptNotFoundError(_message_of(status, data), 404)
        if not 200 <= status < 300:
            raise PromptError(f"HTTP {status}: {_message_of(status, data)}", status)
        return Prompt.from_api(data)


def _describe(key: tuple[str, str]) -> str:
    kind, _, value = key[1].partition(":")
    return f"{key[0]!r} ({kind} {value})"


def _fallback(
    name: str, version: int | None, label: str | None, kind: str, fallback: Fallback
) -> Prompt:
    value = fallback() if callable(fallback) else fallback
    if isinstance(value, Prompt):
        value.is_fallback = True
        return value
    return Prompt(
        name=name,
        version=version or 0,
        type="chat" if isinstance(value, list) else ("text" if isinstance(value, str) else kind),
        prompt=value,
        labels=[label] if label else [],
        is_fallback=True,
    )


# A forked child gets fresh locks and no refreshes believed in flight (their threads
# stayed in the parent); the cached prompts themselves are still good.
_live: weakref.WeakSet[PromptManager] = weakref.WeakSet()


def _after_fork() -> None:
    for manager in list(_live):
        manager._init_runtime()


os.register_at_fork(after_in_child=_after_fork)
