"""One settings object, read from ``LANTERNA_*`` environment variables and CLI flags."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..alerts.outbound import OutboundPolicy
from ..alerts.secretbox import SecretKeyError, load_key
from ..store.db import default_sqlite_url


def _default_data_dir() -> str:
    return os.environ.get("LANTERNA_DATA_DIR") or str(Path.home() / ".lanterna")


_CLI_ONLY = frozenset({"no_auth"})
#: What the SDKs' API secret keys start with (``LANTERNA_SECRET_KEY`` is the SDK's API
#: secret as well as the server's encryption key; a shell may hold the former).
_API_SECRET_PREFIX = "sk-lf-"


def _server_key(secret: str | None) -> str | None:
    """The server's encryption key from the environment: ``LANTERNA_ENCRYPTION_KEY``,
    else ``LANTERNA_SECRET_KEY`` unless that holds an SDK's API secret (``sk-lf-...``:
    then ignored, with a warning, so ``lanterna serve`` starts in a shell set up for the
    SDK)."""
    preferred = os.environ.get("LANTERNA_ENCRYPTION_KEY")
    if preferred:
        return preferred
    if secret and secret.strip().startswith(_API_SECRET_PREFIX):
        logging.getLogger("lanterna").warning(
            "lanterna: LANTERNA_SECRET_KEY holds an API secret key (sk-lf-..., what the SDK"
            " reads), not the server's encryption key: ignored here (the server's key is"
            " LANTERNA_ENCRYPTION_KEY, else the data directory's secret.key)"
        )
        return None
    return secret


class SettingsError(ValueError):
    """A setting holds a value the server cannot use; the message says which and why."""


def _parsed(name: str, kind: object, raw: str) -> object:
    """An environment variable's text as the setting's type."""
    if kind in ("int", int):
        return int(raw)
    if kind in ("bool", bool):
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"LANTERNA_{name.upper()} is {raw!r}; it takes true or false")
    return raw


@dataclass
class Settings:
    """Server settings. Every field has an environment variable ``LANTERNA_<NAME>``."""

    host: str = "127.0.0.1"
    port: int = 3000
    data_dir: str = field(default_factory=_default_data_dir)
    #: ``postgresql://user:pass@host/db``; empty means the SQLite file in ``data_dir``.
    database_url: str = ""
    #: ``clickhouse://user:pass@host:8123/db`` (or ``chdb:///folder`` in-process): keep
    #: traces, observations and scores in ClickHouse (docs/scale-out.md); empty: in the
    #: database above.
    events_url: str = ""
    #: URL clients use to reach this server (printed as LANGFUSE_HOST); default from host/port.
    public_url: str = ""
    #: Largest request body accepted, in bytes (413 above it).
    max_request_bytes: int = 20 * 1024 * 1024
    #: Largest single ingestion event, in bytes (a per-event 413 above it).
    max_event_bytes: int = 5 * 1024 * 1024
    #: Longest wait, in milliseconds, for the next part of a request body; a client
    #: slower than that gets a 408 and its connection is closed (so slow or stalled
    #: uploads cannot hold the server's resources). 0: no limit.
    body_timeout_ms: int = 30000
    #: Read connections kept open.
    read_pool_size: int = 8
    #: Ingestion batches (JSON and OTLP) parsed and pre-merged at once by the HTTP
    #: server (the OTLP gRPC receiver, on its own event loop, has as many again). That
    #: work is Python, so two at once take no less time than one after the other; more
    #: only make the writer wait longer for the interpreter lock between its
    #: statements. Others wait their turn without holding a thread; an OTLP export's
    #: media uploads run after its turn.
    ingest_prepare_at_once: int = 1
    #: ``lanterna serve`` and ``lanterna worker`` set the interpreter's thread switch
    #: interval to this many microseconds (Python's default is 5,000). The writer thread
    #: gives up the interpreter lock for every SQL statement and then waits up to this
    #: long to get it back from a thread that is parsing; 100 lets it resume sooner.
    #: 0: keep Python's default.
    switch_interval_us: int = 100
    #: SQLite only: the memory SQLite may hold in the server process, in MiB (its page
    #: caches, sorts, statements; ``PRAGMA soft_heap_limit``). Each connection caches
    #: up to 64 MiB of pages on its own, so without a cap the process grows with the
    #: database towards 64 MiB x (read_pool_size + 1); at the cap SQLite reuses its
    #: cache pages instead of taking more. 0: no cap.
    sqlite_memory_mib: int = 128
    #: Email of the owner account made at first start (default admin@localhost).
    admin_email: str = ""
    #: Password of that owner; empty means generate one and print it once.
    admin_password: str = ""
    #: Days a dashboard login lasts.
    session_days: int = 14
    #: Failed logins allowed per client address in 15 minutes, and per account before
    #: unknown clients back off (see docs/security.md).
    login_attempts: int = 10
    #: Events (Langfuse JSON) and spans (OTLP) each project may ingest per minute, summed
    #: over every process sharing the database; over it, 429 with ``Retry-After``. 0 (the
    #: default): no limit.
    ingest_rate_limit: int = 0
    #: ``GET /api/public/...`` requests each project's keys may make per minute, summed
    #: over every process; over it, 429 with ``Retry-After``. 0 (the default): no limit.
    read_rate_limit: int = 0
    #: Proxies whose ``X-Forwarded-For``/``-Proto`` headers are believed: comma-separated
    #: addresses or networks (``127.0.0.1``, ``10.0.0.0/8``), ``*`` for any. Empty (the
    #: default): forwarded headers are ignored and the peer address is the client.
    forwarded_allow_ips: str = ""
    #: Longest a metrics query (``/api/public/metrics``, ``/api/public/v2/metrics``) may
    #: run, in milliseconds, before it is cancelled and answered 422; 0: no limit.
    query_timeout_ms: int = 30000
    #: Alert channels may send to these non-public destinations anyway: comma-separated
    #: host names and addresses or networks (``hooks.internal``, ``10.1.2.0/24``,
    #: ``127.0.0.1``). Empty (the default): webhooks and Slack URLs that resolve to
    #: private, loopback, link-local or metadata addresses are refused (docs/alerts.md).
    outbound_allow: str = ""
    #: Key that encrypts alert channels' secrets at rest: 32 bytes as 64 hex digits or
    #: base64. Empty: ``secret.key`` in ``data_dir``, made on first use. Give every
    #: process sharing a database the same key.
    secret_key: str = field(default="", repr=False)
    #: Seconds between the alert evaluator's looks for due rules inside ``lanterna serve``;
    #: 0 turns the evaluator off there (run ``lanterna worker`` instead, which takes 0 as
    #: the default: a worker runs every background job).
    alert_tick_seconds: int = 15
    #: Seconds between runs of the retention job (deletes what is older than each
    #: project's retention) inside ``lanterna serve``; 0 turns it off there
    #: (``lanterna worker`` runs it too, 0 meaning the default). One process runs it at a
    #: time (a lease).
    retention_interval_seconds: int = 3600
    #: Seconds between the evaluation worker's looks for new traces to evaluate (online
    #: evaluation rules) inside ``lanterna serve``; 0 turns it off there (a worker takes
    #: 0 as the default).
    evaluation_tick_seconds: int = 15
    #: Longest wait for an LLM connection's answer (LLM-as-a-judge, the playground), in
    #: seconds; past it the evaluation is recorded as an error.
    llm_timeout_seconds: int = 60
    #: Where media bytes (images, audio, files uploaded through ``/api/public/media``)
    #: live: ``local`` (a content-addressed folder, ``media_dir``) or ``s3`` (an
    #: S3-compatible bucket, ``media_s3_*``; needs ``lanterna[s3]``). docs/media.md.
    media_storage: str = "local"
    #: The local media folder; empty: ``media`` in ``data_dir``.
    media_dir: str = ""
    #: Largest media object accepted, in bytes (413 above it).
    media_max_bytes: int = 50 * 1024 * 1024
    #: Content types media may have: comma-separated, ``type/*`` for a whole family.
    #: Empty (the default): the types the Langfuse SDKs send (images, audio, video,
    #: text, PDF, office files, JSON, archives, ``application/octet-stream``).
    media_content_types: str = ""
    #: Seconds a signed media upload or download URL stays valid.
    media_url_seconds: int = 3600
    #: S3 storage: the bucket, a key prefix, the endpoint (empty: AWS), the region and
    #: the credentials (empty: boto3's usual sources: environment, profile, instance role).
    media_s3_bucket: str = ""
    media_s3_prefix: str = "media/"
    media_s3_endpoint_url: str = ""
    media_s3_region: str = ""
    media_s3_access_key_id: str = ""
    media_s3_secret_access_key: str = field(default="", repr=False)
    #: Port of the OTLP/gRPC trace receiver (``--otlp-grpc-port``; 4317 is the usual
    #: one); 0 (the default): off. It listens on ``host``.
    otlp_grpc_port: int = 0
    #: OpenID Connect single sign-on for the web UI (docs/administration.md): the
    #: provider's issuer URL (its ``/.well-known/openid-configuration`` is read); empty
    #: (the default): off.
    oidc_issuer: str = ""
    #: The client id and secret registered at the provider.
    oidc_client_id: str = ""
    oidc_client_secret: str = field(default="", repr=False)
    #: Scopes asked for (``openid`` and ``email`` are needed).
    oidc_scopes: str = "openid email profile"
    #: The provider's name on the login button ("Log in with ...").
    oidc_display_name: str = "single sign-on"
    #: Comma-separated email domains allowed to sign in (``example.com``); empty: any.
    oidc_allowed_domains: str = ""
    #: Organization id a person signing in for the first time joins with the
    #: organization-wide role ``oidc_default_role``; empty: none (an owner adds them).
    oidc_auto_join_org: str = ""
    #: Role of those auto-joined members: owner, admin, member or viewer.
    oidc_default_role: str = "viewer"
    #: Email and password login on the login page; false leaves single sign-on only.
    password_login: bool = True
    #: Seconds between the scheduled exports' looks for due blob-storage integrations
    #: inside ``lanterna serve`` (``lanterna worker`` runs them too, 0 meaning the
    #: default); 0 turns it off in serve. One process runs an integration at a time.
    export_tick_seconds: int = 60
    #: Testing only: a file holding an ISO 8601 UTC time (``2024-05-08T12:00:00Z``) that
    #: the alert evaluator takes as "now", read again at every tick, instead of the
    #: system clock; lets end-to-end tests drive the evaluators of real server
    #: processes through time without waiting. Empty (the default): the system clock.
    alert_clock_file: str = ""
    #: ``--no-auth``: no login, for one local user on loopback. CLI only: never read
    #: from the environment, so auth cannot be turned off by a stray variable.
    no_auth: bool = False

    def __post_init__(self) -> None:
        if "://" in self.host:
            raise SettingsError(
                f"the bind interface (LANTERNA_HOST or --host) is {self.host!r}, which is a URL;"
                " it takes an interface such as 127.0.0.1 or 0.0.0.0. The SDK's server URL is"
                " LANTERNA_BASE_URL (or LANGFUSE_BASE_URL / LANGFUSE_HOST)."
            )
        try:
            OutboundPolicy.parse(self.outbound_allow)
        except ValueError as exc:
            raise SettingsError(f"LANTERNA_OUTBOUND_ALLOW: {exc}") from None
        if self.media_storage not in ("local", "s3"):
            raise SettingsError(
                f"LANTERNA_MEDIA_STORAGE is {self.media_storage!r}; it takes local or s3"
            )
        for name in ("media_max_bytes", "media_url_seconds"):
            if getattr(self, name) < 1:
                raise SettingsError(f"LANTERNA_{name.upper()} must be at least 1")
        if not 0 <= self.otlp_grpc_port < 65536:
            raise SettingsError("LANTERNA_OTLP_GRPC_PORT must be a port number (0: off)")
        if self.media_storage == "s3" and not self.media_s3_bucket:
            raise SettingsError("LANTERNA_MEDIA_STORAGE=s3 needs LANTERNA_MEDIA_S3_BUCKET")
        if self.oidc_issuer and not (self.oidc_client_id and self.oidc_client_secret):
            raise SettingsError(
                "LANTERNA_OIDC_ISSUER needs LANTERNA_OIDC_CLIENT_ID and LANTERNA_OIDC_CLIENT_SECRET"
            )
        if self.oidc_default_role not in ("owner", "admin", "member", "viewer"):
            raise SettingsError(
                f"LANTERNA_OIDC_DEFAULT_ROLE is {self.oidc_default_role!r};"
                " it takes owner, admin, member or viewer"
            )
        if not self.password_login and not self.oidc_issuer:
            raise SettingsError(
                "LANTERNA_PASSWORD_LOGIN=false needs single sign-on (LANTERNA_OIDC_ISSUER):"
                " nobody could log in"
            )
        if self.secret_key:
            try:
                load_key(self.secret_key, self.data_dir)
            except SecretKeyError as exc:  # the message never holds the key
                raise SettingsError(exc.message) from None

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from ``LANTERNA_*`` variables, then ``overrides`` (None is ignored)."""
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name in _CLI_ONLY:
                continue
            raw = os.environ.get(f"LANTERNA_{f.name.upper()}")
            if f.name == "secret_key":
                raw = _server_key(raw)
            if raw is not None and raw != "":
                values[f.name] = _parsed(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def db_url(self) -> str:
        """The database to open: ``database_url`` or the SQLite file in ``data_dir``."""
        return self.database_url or default_sqlite_url(self.data_dir)

    @property
    def media_folder(self) -> str:
        """The local media folder: ``media_dir`` or ``media`` in ``data_dir``."""
        return self.media_dir or str(Path(self.data_dir).expanduser() / "media")

    @property
    def base_url(self) -> str:
        """Where clients reach the server."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::", "") else self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 address, bracketed in a URL
        return f"http://{host}:{self.port}"
