"""The ``Lanterna`` client: configuration, the explicit trace/span/generation/score API,
flush/shutdown, auth and cost look-ups; and ``get_client()`` for the process-wide one.

Configuration comes from arguments, else ``LANTERNA_*`` environment variables, else the
``LANGFUSE_*`` ones the Langfuse SDKs read, so an app configured for Langfuse works
unchanged.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import __version__
from . import _errors, _state
from .costs import CostReader
from .errors import LanternaAPIError, LanternaError
from .exporter import BatchExporter, HttpSender
from .fields import OBSERVATION_FIELDS, TRACE_FIELDS, timestamp, to_wire
from .handles import StatefulObservation, StatefulTrace, score_body
from .media import MediaUploader
from .records import Envelope, EventOptions, new_span_id, new_trace_id
from .transport import SYSTEM_CLOCK, Transport

if TYPE_CHECKING:
    from .ab_tests import AbTestManager
    from .prompts import Prompt, PromptManager
    from .transport import Clock

DEFAULT_HOST = "http://localhost:3000"
_warned_no_keys = False
_warned_lanterna_host = False
_warned_server_key = False
_lock = threading.Lock()


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


_FALSE_WORDS = ("0", "false", "no", "off", "")
_TRUE_WORDS = ("1", "true", "yes", "on")


def _env_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() not in _FALSE_WORDS


def _flag(raw: str) -> bool:
    """A boolean variable's value; any other word is a ``ValueError`` (see :func:`_pick`)."""
    word = raw.strip().lower()
    if word in _TRUE_WORDS or word in _FALSE_WORDS:
        return word in _TRUE_WORDS
    raise ValueError("one of 1/0, true/false, yes/no, on/off")


def _pick(arg: Any, *names: str, cast: Callable[[str], Any] = str, default: Any = None) -> Any:
    """``arg`` if given, else the first variable of ``names`` that is set, read with
    ``cast``; else ``default``. A value ``cast`` cannot read is logged and the default
    used: a typo in the environment must not raise into the app (or stop its tracing)."""
    if arg is not None:
        return arg
    for name in names:
        raw = os.environ.get(name)
        if raw:
            try:
                return cast(raw)
            except (ValueError, TypeError) as exc:
                expected = {int: "a whole number", float: "a number"}.get(cast, str(exc))  # type: ignore[call-overload]
                _errors.logger.warning(
                    "lanterna: %s=%r is not %s; the default %r is used",
                    name,
                    raw[:40],
                    expected,
                    default,
                )
                return default
    return default


#: Stands for a ``LANTERNA_SECRET_KEY`` holding the server's encryption key.
_SERVER_KEY: Any = object()
_SERVER_KEY_FORM = re.compile(r"[0-9a-fA-F]{64}|[A-Za-z0-9+/_-]{43}=?")


def _api_secret(raw: str) -> Any:
    """``LANTERNA_SECRET_KEY`` is also the server's encryption key (32 bytes, 64 hex
    digits or base64); in a shell that holds that, it is no API secret: ignored (logged
    once), so ``LANGFUSE_SECRET_KEY`` is used. API secrets start with ``sk-lf-``."""
    global _warned_server_key
    value = raw.strip()
    if value.startswith("sk-lf-") or not _SERVER_KEY_FORM.fullmatch(value):
        return raw
    if not _warned_server_key:
        _warned_server_key = True
        _errors.logger.warning(
            "lanterna: LANTERNA_SECRET_KEY holds the server's encryption key, not an API"
            " secret key (sk-lf-...): ignored; LANGFUSE_SECRET_KEY is used if set"
        )
    return _SERVER_KEY


def _tls_verify(raw: str) -> bool | str:
    """``LANTERNA_TLS_VERIFY``: a boolean word, else the path of a CA bundle file."""
    flag = _env_bool(raw)
    word = raw.strip().lower() in ("0", "false", "no", "off", "", "1", "true", "yes", "on")
    return bool(flag) if word else raw


def resolve_base_url(given: str | None = None) -> str:
    """The server URL: ``given``, else the first set of ``LANTERNA_BASE_URL``,
    ``LANGFUSE_BASE_URL``, ``LANGFUSE_HOST``, else ``http://localhost:3000``.

    ``LANTERNA_HOST`` is the interface ``lanterna serve`` binds, not the SDK's URL. For
    older setups that used it for the SDK it is still read last, and only when it holds
    a URL (``http://`` or ``https://``), with a deprecation warning.
    """
    global _warned_lanterna_host
    url = given or _env("LANTERNA_BASE_URL", "LANGFUSE_BASE_URL", "LANGFUSE_HOST")
    if not url:
        legacy = os.environ.get("LANTERNA_HOST", "")
        if legacy.lower().startswith(("http://", "https://")):
            url = legacy
            if not _warned_lanterna_host:
                _warned_lanterna_host = True
                message = (
                    "lanterna: LANTERNA_HOST as the SDK's server URL is deprecated (it is the"
                    " interface `lanterna serve` binds); set LANTERNA_BASE_URL instead"
                )
                warnings.warn(message, DeprecationWarning, stacklevel=3)
                _errors.logger.warning(message)
    return str(url or DEFAULT_HOST).rstrip("/")


class Lanterna:
    """A client for a Lanterna (or Langfuse) server.

    Every argument may be left out and is then read from the environment:
    ``public_key`` (``LANTERNA_PUBLIC_KEY`` / ``LANGFUSE_PUBLIC_KEY``), ``secret_key``
    (``LANTERNA_SECRET_KEY`` / ``LANGFUSE_SECRET_KEY``), ``base_url`` or its Langfuse
    name ``host`` (``LANTERNA_BASE_URL`` / ``LANGFUSE_BASE_URL`` / ``LANGFUSE_HOST``,
    default ``http://localhost:3000``; see :func:`resolve_base_url`), ``enabled``
    (``LANTERNA_ENABLED`` / ``LANGFUSE_TRACING_ENABLED``), ``sample_rate``
    (``LANTERNA_SAMPLE_RATE`` / ``LANGFUSE_SAMPLE_RATE``; the share of traces kept),
    ``environment`` (``LANTERNA_ENVIRONMENT`` / ``LANGFUSE_TRACING_ENVIRONMENT``),
    ``release`` (``LANTERNA_RELEASE`` / ``LANGFUSE_RELEASE``), ``flush_at``,
    ``flush_interval``, ``max_queue_size``, ``max_queue_bytes`` (characters of large
    captured values waiting to be sent; beyond it records are dropped and counted),
    ``max_field_size`` (characters kept of each input/output/metadata value; longer
    values are cut with a marker), ``timeout`` (HTTP, seconds), ``tls_verify`` (False,
    or a CA bundle file), ``max_retry_seconds`` (a per-batch retry limit; none by
    default), ``exit_timeout`` (the flush at interpreter exit), ``flush_timeout`` and
    ``spool_dir`` (where undelivered batches wait for the next client when the process
    ends during an outage; off by default) (``LANTERNA_<NAME>`` each).

    ``mask`` is called with every input, output and metadata value before it leaves the
    process and returns what to send instead. Without keys the client warns once and
    does nothing; ``enabled=False`` turns it off silently. The first client created
    becomes the process-wide one that ``@observe`` and ``context`` use. ``clock`` is
    what the exporter's retries wait on and what times the prompt cache (tests pass one
    they control).
    """

    #: Where requests go (no trailing slash); ``host`` is the same value.
    base_url: str
    public_key: str | None
    secret_key: str | None
    #: Tracing was switched on (keys present and not disabled).
    enabled: bool
    #: Records are taken now: ``enabled`` and not shut down. Read on every observed call.
    active: bool
    #: The share of traces kept (0.0 to 1.0).
    sample_rate: float
    #: Characters kept of each captured input/output/metadata value.
    max_field_size: int
    #: Seconds an HTTP request may take.
    timeout: float
    #: Every request this client makes goes through it (see ``lanterna.sdk.transport``).
    transport: Transport
    #: Queue a record for sending (the exporter's ``submit``): never blocks or raises.
    submit: Callable[[Any], bool]

    def __init__(
        self,
        public_key: str | None = None,
        secret_key: str | None = None,
        host: str | None = None,
        *,
        base_url: str | None = None,
        enabled: bool | None = None,
        sample_rate: float | None = None,
        environment: str | None = None,
        release: str | None = None,
        mask: Callable[[Any], Any] | None = None,
        media_upload: bool | None = None,
        flush_at: int | None = None,
        flush_interval: float | None = None,
        max_queue_size: int | None = None,
        max_queue_bytes: int | None = None,
        max_field_size: int | None = None,
        timeout: float | None = None,
        tls_verify: bool | str | None = None,
        max_retry_seconds: float | None = None,
        exit_timeout: float | None = None,
        flush_timeout: float | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        exporter: Any = None,
        clock: Clock | None = None,
        **langfuse_options: Any,
    ) -> None:
        global _warned_no_keys
        # Options only the Langfuse SDKs have (threads, max_retries, sdk_integration,
        # httpx_client, debug, ...) are accepted so their call sites work, and ignored.
        self.public_key = _pick(public_key, "LANTERNA_PUBLIC_KEY", "LANGFUSE_PUBLIC_KEY")
        self.secret_key = _pick(
            secret_key, "LANTERNA_SECRET_KEY", "LANGFUSE_SECRET_KEY", cast=_api_secret
        )
        if self.secret_key is _SERVER_KEY:
            self.secret_key = _env("LANGFUSE_SECRET_KEY")
        self.base_url = resolve_base_url(base_url or host)
        on = _pick(
            enabled, "LANTERNA_ENABLED", "LANGFUSE_TRACING_ENABLED", cast=_flag, default=True
        )
        self.sample_rate = float(
            _pick(
                sample_rate, "LANTERNA_SAMPLE_RATE", "LANGFUSE_SAMPLE_RATE", cast=float, default=1.0
            )
        )
        self.max_field_size = int(
            _pick(max_field_size, "LANTERNA_MAX_FIELD_SIZE", cast=int, default=1_000_000)
        )
        self.timeout = float(_pick(timeout, "LANTERNA_TIMEOUT", cast=float, default=20.0))
        verify = _pick(tls_verify, "LANTERNA_TLS_VERIFY", cast=_tls_verify, default=True)
        self.transport = Transport(
            self.base_url,
            self.public_key or "",
            self.secret_key or "",
            timeout=self.timeout,
            verify=verify,
            version=__version__,
        )
        # Base64 data URIs in inputs/outputs/metadata go to the media API (on the
        # exporter thread, sdk/media.py); opt out with media_upload=False.
        upload = _pick(
            media_upload,
            "LANTERNA_MEDIA_UPLOAD",
            "LANGFUSE_MEDIA_UPLOAD_ENABLED",
            cast=_flag,
            default=True,
        )
        options = EventOptions(
            environment=_pick(environment, "LANTERNA_ENVIRONMENT", "LANGFUSE_TRACING_ENVIRONMENT"),
            release=_pick(release, "LANTERNA_RELEASE", "LANGFUSE_RELEASE"),
            mask=mask,
            # Not with an exporter of the caller's (the in-memory one of tests).
            media=MediaUploader(self.transport)
            if upload and exporter is None and self.public_key and self.secret_key
            else None,
        )
        if exporter is None and on and not (self.public_key and self.secret_key):
            if not _warned_no_keys:
                _warned_no_keys = True
                _errors.logger.warning(
                    "lanterna: no API keys (set LANTERNA_PUBLIC_KEY and LANTERNA_SECRET_KEY,"
                    " or LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY); tracing is off"
                )
            on = False
        if exporter is None and not on:
            exporter = _Off()
        if exporter is None:
            retry_limit = _pick(max_retry_seconds, "LANTERNA_MAX_RETRY_SECONDS", cast=float)
            spool = None
            spool_to = _pick(spool_dir, "LANTERNA_SPOOL_DIR")
            if spool_to:
                from .spool import Spool

                spool = Spool(spool_to)
            exporter = BatchExporter(
                HttpSender(self.transport),
                options,
                flush_at=int(_pick(flush_at, "LANTERNA_FLUSH_AT", cast=int, default=512)),
                flush_interval=float(
                    _pick(flush_interval, "LANTERNA_FLUSH_INTERVAL", cast=float, default=1.0)
                ),
                max_queue_bytes=int(
                    _pick(max_queue_bytes, "LANTERNA_MAX_QUEUE_BYTES", cast=int, default=64_000_000)
                ),
                max_queue_size=int(
                    _pick(max_queue_size, "LANTERNA_MAX_QUEUE_SIZE", cast=int, default=100_000)
                ),
                max_retry_seconds=None if retry_limit is None else float(retry_limit),
                exit_timeout=float(
                    _pick(exit_timeout, "LANTERNA_EXIT_TIMEOUT", cast=float, default=2.0)
                ),
                flush_timeout=float(
                    _pick(flush_timeout, "LANTERNA_FLUSH_TIMEOUT", cast=float, default=10.0)
                ),
                clock=clock,
                spool=spool,
            )
        elif hasattr(exporter, "bind"):
            exporter.bind(options)
        self.exporter = exporter
        self.enabled = bool(on)
        self._clock = clock or SYSTEM_CLOCK
        self._prompt_manager: PromptManager | None = None  # made on first use
        self._ab_test_manager: AbTestManager | None = None  # made on first use
        self._costs: CostReader | None = None  # made on first use
        self.active = self.enabled
        self.submit = exporter.submit
        with _lock:
            if _state.client is None:
                _state.client = self

    @property
    def host(self) -> str:
        """Langfuse's name for :attr:`base_url`."""
        return self.base_url

    # --- sending ----------------------------------------------------------------------

    def send_event(self, event_type: str, body: dict[str, Any]) -> None:
        """Queue one ingestion event (``trace-create``, ``span-update``, ...) as is."""
        if self.active:
            self.submit(Envelope(event_type, body))

    def trace_wire(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Trace keywords (snake_case) as wire fields, values cut to ``max_field_size``."""
        return to_wire(fields, TRACE_FIELDS, self.max_field_size)

    def observation_wire(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Observation keywords as wire fields, values cut to ``max_field_size``."""
        return to_wire(fields, OBSERVATION_FIELDS, self.max_field_size)

    def trace(self, *, id: str | None = None, **fields: Any) -> StatefulTrace:
        """Create (or update, with an existing ``id``) a trace.

        Keywords: name, user_id, session_id, version, release, input, output, metadata,
        tags, public, timestamp. Returns a handle with ``update``, ``span``,
        ``generation``, ``event`` and ``score``.
        """
        trace_id = id or new_trace_id()
        wire = self.trace_wire(fields)
        wire.setdefault("timestamp", timestamp(_now()))
        self.send_event("trace-create", {"id": trace_id, **wire})
        return StatefulTrace(self, trace_id, None, "trace")

    def _observation(
        self,
        kind: str,
        trace_id: str | None,
        parent_observation_id: str | None,
        id: str | None,
        fields: dict[str, Any],
    ) -> StatefulObservation:
        if trace_id is None:
            trace_id = new_trace_id()
            name = fields.get("name")
            self.send_event(
                "trace-create",
                {
                    "id": trace_id,
                    "timestamp": timestamp(_now()),
                    **({"name": name} if name else {}),
                },
            )
        obs_id = id or new_span_id()
        wire = self.observation_wire(fields)
        wire.setdefault("startTime", timestamp(_now()))
        body = {"id": obs_id, "traceId": trace_id, **wire}
        if parent_observation_id:
            body["parentObservationId"] = parent_observation_id
        self.send_event(f"{kind}-create", body)
        return StatefulObservation(self, trace_id, obs_id, kind)

    def span(
        self,
        *,
        trace_id: str | None = None,
        parent_observation_id: str | None = None,
        id: str | None = None,
        **fields: Any,
    ) -> StatefulObservation:
        """Start a span (keywords: name, input, output, metadata, level, status_message,
        version, start_time, end_time). Without ``trace_id`` a new trace is created."""
        return self._observation("span", trace_id, parent_observation_id, id, fields)

    def generation(
        self,
        *,
        trace_id: str | None = None,
        parent_observation_id: str | None = None,
        id: str | None = None,
        **fields: Any,
    ) -> StatefulObservation:
        """Start a generation: the span keywords plus model, model_parameters, usage,
        usage_details, cost_details, completion_start_time and prompt (a prompt object
        or ``{name, version}``; links the generation to that prompt version)."""
        return self._observation("generation", trace_id, parent_observation_id, id, fields)

    def event(
        self,
        *,
        trace_id: str | None = None,
        parent_observation_id: str | None = None,
        id: str | None = None,
        **fields: Any,
    ) -> StatefulObservation:
        """Record a point-in-time event (span keywords)."""
        return self._observation("event", trace_id, parent_observation_id, id, fields)

    def score(
        self,
        *,
        name: str,
        value: float | str | bool,
        trace_id: str | None = None,
        observation_id: str | None = None,
        session_id: str | None = None,
        id: str | None = None,
        comment: str | None = None,
        data_type: str | None = None,
        config_id: str | None = None,
        metadata: Any = None,
    ) -> None:
        """Score a trace (optionally one observation of it) or a session."""
        try:
            body = score_body(
                self,
                name=name,
                value=value,
                trace_id=trace_id,
                observation_id=observation_id,
                session_id=session_id,
                id=id,
                comment=comment,
                data_type=data_type,
                config_id=config_id,
                metadata=metadata,
            )
            self.send_event("score-create", body)
        except Exception as exc:
            _errors.report("client.score", exc)

    # --- lifecycle --------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until queued events are delivered; False if ``timeout`` passed first."""
        return bool(self.exporter.flush(timeout))

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush (bounded by ``timeout``) and stop the exporter thread."""
        self.active = False
        return bool(self.exporter.shutdown(timeout))

    def stats(self) -> dict[str, int]:
        """Exporter counters: sent, failed, dropped, retried, batches, spooled, pending,
        queued."""
        return dict(self.exporter.stats())

    # --- REST -------------------------------------------------------------------------

    def _get(
        self, path: str, params: dict[str, Any] | None = None, *, clock: Clock | None = None
    ) -> Any:
        """GET a JSON answer (connection errors and 429/5xx retried twice; the waits
        between tries on ``clock``, default the real one).

        Raises :class:`LanternaAPIError` for a status that is not 2xx or an answer that
        is not JSON, :class:`~lanterna.sdk.errors.LanternaConnectionError` when none came.
        """
        from urllib.parse import urlencode

        if params:
            path += "?" + urlencode(params)
        reply = self.transport.request("GET", path, retries=2, clock=clock or SYSTEM_CLOCK)
        data = reply.data()
        if not 200 <= reply.status_code < 300:
            raise LanternaAPIError(reply.status_code, data)
        if data is None:
            raise LanternaAPIError(reply.status_code, None, "the server's answer is not JSON")
        return data

    def auth_check(self) -> bool:
        """True when the server accepts the keys (``GET /api/public/projects``).

        Unlike tracing, this is an explicit blocking call; it logs why it failed.
        """
        try:
            data = self._get("/api/public/projects").get("data")
        except Exception as exc:
            _errors.logger.warning("lanterna: auth check against %s failed: %s", self.base_url, exc)
            return False
        return bool(data)

    def get_session_cost(self, session_id: str, *, max_age: float | None = None) -> float | None:
        """The total cost (USD) of a session's traces, as the server computed it; 0.0 for
        an unknown session.

        Reads ``totalCost`` of ``GET /api/public/sessions/{id}`` (a server that does not
        report it there is asked for the session's traces instead). The answer is reused
        for ``max_age`` seconds (default 5, on the client's clock; 0: always ask). Never
        raises: returns None (and logs a warning) when the server is unreachable, answers
        with an error, or the keys are refused.
        """
        return self._cost_reader().session_cost(session_id, max_age)

    def get_user_cost(
        self,
        user_id: str,
        period: str = "total",
        *,
        since: _dt.datetime | None = None,
        max_age: float | None = None,
    ) -> float | None:
        """The total cost (USD) of a user's traces in the current UTC calendar ``period``:
        ``day``, ``week`` (from Monday), ``month`` or ``total`` (the default); ``since``
        (a datetime) counts from that instant instead.

        Uses ``GET /api/public/metrics/daily?userId=...&fromTimestamp=...``. Cached and
        never raising as :meth:`get_session_cost` (None for an unknown period too).
        """
        return self._cost_reader().user_cost(user_id, period, since, max_age)

    def get_budget_status(self, budget_id: str, at: _dt.datetime | None = None) -> dict[str, Any]:
        """A server-side budget's status (``GET /api/public/budgets/{id}/status``):
        ``spentUsd``, ``limitUsd``, ``remainingUsd``, ``percent``, ``softPercent``,
        ``state`` (``ok``, ``soft``, ``exceeded``), ``periodStart``, ``periodEnd``; for the
        period containing ``at`` (default now). An explicit call: raises
        :class:`~lanterna.sdk.errors.LanternaError` when the server cannot answer
        (:class:`LanternaAPIError` with status 404 for an unknown budget).
        """
        from urllib.parse import quote

        params = None if at is None else {"at": timestamp(at)}
        body = self._get(
            f"/api/public/budgets/{quote(budget_id, safe='')}/status", params, clock=self._clock
        )
        if not isinstance(body, dict):
            raise LanternaAPIError(200, body, "unexpected answer from the budget status route")
        return body

    def _cost_reader(self) -> CostReader:
        reader = self._costs
        if reader is None:
            with _lock:
                reader = self._costs
                if reader is None:
                    reader = self._costs = CostReader(self, self._clock)
        return reader

    # --- prompts (see lanterna.sdk.prompts) -------------------------------------------

    def _prompts(self) -> PromptManager:
        manager = self._prompt_manager
        if manager is None:
            from .prompts import PromptManager

            with _lock:
                manager = self._prompt_manager
                if manager is None:
                    manager = PromptManager(
                        self.transport, fetch_timeout=min(self.timeout, 5.0), clock=self._clock
                    )
                    self._prompt_manager = manager
        return manager

    def get_prompt(
        self,
        name: str,
        version: int | None = None,
        *,
        label: str | None = None,
        type: str = "text",
        cache_ttl_seconds: float | None = None,
        fallback: Any = None,
        max_retries: int | None = None,
        fetch_timeout_seconds: float | None = None,
        ab_test: str | None = None,
        unit_id: str | None = None,
        experiment: str | None = None,
    ) -> Prompt:
        """A prompt version: by ``version``, by ``label``, else the one labelled ``production``.

        With ``ab_test`` (or its alias ``experiment``: an A/B test's name) and ``unit_id``
        (a user or session id), the version or label is the unit's variant's, assigned
        locally and recorded on the current trace (see :meth:`assign`); when the test
        cannot be fetched the production version is served and nothing is recorded.

        Served from the client's cache while younger than ``cache_ttl_seconds`` (default
        60, or ``LANTERNA_PROMPT_CACHE_TTL_SECONDS``, else
        ``LANGFUSE_PROMPT_CACHE_DEFAULT_TTL_SECONDS``; 0 disables the cache); an older
        entry is returned at once and refreshed in the background. ``fallback`` (a text,
        a list of chat messages, or a callable returning one) is returned, marked
        ``is_fallback``, when the server cannot be reached, fails or has no such prompt;
        without it those raise ``PromptUnavailableError``, ``PromptError`` or
        ``PromptNotFoundError`` (``lanterna.sdk.prompts``). ``type`` is the fallback's
        type. Fetches are retried ``max_retries`` times (default 2, at most 4) and each
        waits at most ``fetch_timeout_seconds`` (default 5).
        """
        test = ab_test or experiment
        if test is not None:
            if version is not None or label is not None:
                raise ValueError("give an A/B test or a version/label, not both")
            try:
                _, entry = self._ab_tests().assign(test, str(unit_id or ""))
                version, label = entry.get("promptVersion"), entry.get("promptLabel")
            except LanternaError as exc:
                _errors.logger.warning("lanterna: A/B test %r: %s; using production", test, exc)
        return self._prompts().get(
            name,
            version,
            label,
            type=type,
            cache_ttl_seconds=cache_ttl_seconds,
            fallback=fallback,
            max_retries=max_retries,
            fetch_timeout_seconds=fetch_timeout_seconds,
        )

    # --- A/B tests (see lanterna.sdk.ab_tests) ----------------------------------------

    def _ab_tests(self) -> AbTestManager:
        manager = self._ab_test_manager
        if manager is None:
            from .ab_tests import AbTestManager

            with _lock:
                manager = self._ab_test_manager
                if manager is None:
                    manager = AbTestManager(
                        self.transport, fetch_timeout=min(self.timeout, 5.0), clock=self._clock
                    )
                    self._ab_test_manager = manager
        return manager

    def assign(self, ab_test: str, unit_id: str, *, default: str | None = None) -> str:
        """The variant of A/B test ``ab_test`` (its name) that unit ``unit_id`` (a user or
        session id) sees: the same in every process (a hash of the test's id, salt and
        the unit id, weighted), computed locally once the test's definition is cached.
        Inside an observed call a running test's assignment is recorded on the trace
        (metadata ``experiment`` and ``variant``, tag ``ab-test:<name>:<variant>``).
        When the test cannot be fetched, ``default`` is returned (unrecorded); without
        it ``AbTestError`` (``lanterna.sdk.ab_tests``) is raised."""
        try:
            return self._ab_tests().assign(ab_test, unit_id)[0]
        except LanternaError:
            if default is None:
                raise
            return default

    def create_prompt(
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
        """Create the next version of prompt ``name`` and return it.

        A text prompt is a string; a chat prompt (``type="chat"``, the default for a list)
        is a list of ``{role, content}`` messages and ``{type: "placeholder", name}``
        entries. ``labels`` (e.g. ``["production"]``) move to this version; ``latest``
        always does. Raises :class:`PromptError` with the server's message when refused.
        """
        return self._prompts().create(
            name=name,
            prompt=prompt,
            labels=labels,
            tags=tags,
            type=type,
            config=config,
            commit_message=commit_message,
        )

    def update_prompt_labels(self, name: str, version: int, new_labels: list[str]) -> Prompt:
        """Add ``new_labels`` to one version (they move off every other version)."""
        return self._prompts().update_labels(name, version, new_labels)

    def update_prompt(self, *, name: str, version: int, new_labels: list[str]) -> Prompt:
        """Langfuse's name for :meth:`update_prompt_labels`."""
        return self.update_prompt_labels(name, version, new_labels)

    def clear_prompt_cache(self) -> None:
        """Forget every cached prompt, so the next ``get_prompt`` asks the server."""
        self._prompts().clear()


class _Off:
    """The exporter of a client that is off: takes nothing, sends nothing, imports nothing."""

    def submit(self, item: Any) -> bool:
        return False

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        return True

    def pending(self) -> int:
        return 0

    def stats(self) -> dict[str, int]:
        return dict.fromkeys(
            ("sent", "failed", "dropped", "retried", "batches", "spooled", "pending", "queued"), 0
        )


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def get_client() -> Lanterna:
    """The process-wide client: the first one created, else one made from the environment."""
    client = _state.client
    if client is None:
        with _lock:
            client = _state.client
        if client is None:
            client = Lanterna()  # registers itself
    return client


def set_client(client: Lanterna | None) -> Lanterna | None:
    """Make ``client`` the process-wide client (None: the next call builds one from the
    environment); returns the previous one. Mostly for tests and multi-project apps."""
    with _lock:
        previous = _state.client
        _state.client = client
    return previous
