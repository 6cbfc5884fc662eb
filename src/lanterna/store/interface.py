"""The store interface: every read and write the server makes of stored data, as Protocols.

The server reaches stored data through a :class:`Store` (``Runtime.store``): one
attribute per resource, each a Protocol listing the operations that routes, dashboard
pages and the read layer (``lanterna.queries``, whose functions take the store as their
first argument) call. Every operation takes the connection it runs on first: a read
connection from ``Runtime.read`` or the writer's inside ``Runtime.write``, so the
transaction stays the caller's. :class:`SqlStore` is the SQLite/PostgreSQL
implementation: its resources are this package's query modules (a module satisfies a
Protocol when its functions match; mypy checks that in :meth:`SqlStore.__init__`).
Another backend (ClickHouse) implements the same Protocols with its own connection type
and ``Dialect``, is handed to ``create_app(settings, store=...)``, and the routes stay as
they are.

Which of ``lanterna.store``'s modules the layers above may import (the import-linter
contract ``store-interface`` in pyproject.toml holds ``lanterna.server`` and
``lanterna.queries`` to it):

- **this module**: the Protocols (those of the resources beyond the core are written in
  ``protocols.py`` and re-exported here), :class:`Store`, and the types their operations take
  and return (``TraceQuery``, ``ObservationQuery``, ``ScoreQuery``, ``NewPrompt``,
  ``VersionStats``, ``NewKey``, ``PreparedEvents``, ...), re-exported here, and the
  media blob stores (``BlobStore``, ``LocalBlobs``, ``S3Blobs``, ``purge_freed`` from
  ``blobs``);
- **types and parsing**, values without operations on stored data: ``db`` (``Conn``,
  ``Database``, URLs), ``dialect`` (``Dialect``: how a backend spells timestamps and
  JSON, which the JSON shapes read), ``filters`` (``Condition``, ``FilterError``,
  ``parse_filter``, ``parse_time``), ``writer`` (the single write path every write goes
  through), ``files``;
- **operations**, never imported from above but through this module: ``traces``,
  ``observations``, ``scores``, ``sessions``, ``score_configs``, ``prompts``,
  ``models``, ``projects``, ``dashboards``, ``budgets``, ``channels``, ``alerts``,
  ``quotas``, ``lifecycle``, ``audit``, ``blob_exports``, ``masking``, ``backup``, ``datasets``,
  ``experiments``, ``comments``, ``annotation_queues``, ``evaluations``, ``ab_tests``,
  ``media``, ``blobs``, ``write``, ``rollups``, ``recompute``, ``tables``, ``migrations``.
  ``server/runtime.py`` is the one exception: it builds the server's store and migrates
  its database (it picks the backend).

Not here:

- ``analytics`` (the metric definitions, among them the daily metrics and users'
  usage), which composes its own SQL over the rollups and raw rows; a ClickHouse backend
  gives it its own implementation of those queries.
- ``lanterna.accounts`` (dashboard users, their sessions and roles, login throttling):
  a separate concern with its own tables, which stays with the metadata (projects, keys,
  prompts) on SQLite/PostgreSQL when traces move to ClickHouse; the login and settings
  pages call it directly.
- The CLI (``lanterna keys``, ``migrate``, ``costs``) and test set-up, which work on
  the SQLite/PostgreSQL database itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from ..cost.calculate import Pricing
from ..ingest.events import DomainEvent
from . import (
    ab_tests,
    alerts,
    annotation_queues,
    audit,
    blob_exports,
    budgets,
    channels,
    comments,
    dashboards,
    datasets,
    evaluations,
    experiments,
    lifecycle,
    masking,
    media,
    models,
    projects,
    prompts,
    quotas,
    score_configs,
    scores,
    sessions,
    traces,
    write,
)
from . import observations as observations_module
from .blobs import BlobError, BlobStore, LocalBlobs, S3Blobs, purge_freed
from .db import Conn
from .experiments import ExperimentQuery
from .lifecycle import Deleted
from .observations import ObservationQuery
from .projects import NewKey, NewOrgKey
from .prompts import NewPrompt, VersionStats
from .protocols import (
    AbTests,
    AnnotationQueues,
    Audit,
    BlobExports,
    Comments,
    CursorPage,
    Datasets,
    Evaluations,
    Experiments,
    Lifecycle,
    Masking,
    Media,
    Page,
    Row,
)
from .scores import V1_DATA_TYPES, VALUE_OPERATORS, ScoreDistribution, ScoreQuery
from .sessions import SessionStats
from .traces import ORDER_FIELDS as TRACE_ORDER_FIELDS
from .traces import TraceQuery, TraceRollup, TraceTotals
from .write import PreparedEvents
from .writer import Combinable

__all__ = [
    "TRACE_ORDER_FIELDS",
    "V1_DATA_TYPES",
    "VALUE_OPERATORS",
    "AbTests",
    "AlertChannels",
    "AnnotationQueues",
    "Audit",
    "BlobError",
    "BlobExports",
    "BlobStore",
    "Budgets",
    "Comments",
    "CursorPage",
    "Dashboards",
    "Datasets",
    "Deleted",
    "Evaluations",
    "ExperimentQuery",
    "Experiments",
    "Ingest",
    "Lifecycle",
    "LocalBlobs",
    "Masking",
    "Media",
    "Models",
    "NewKey",
    "NewOrgKey",
    "NewPrompt",
    "ObservationQuery",
    "Observations",
    "Page",
    "PreparedEvents",
    "Projects",
    "Prompts",
    "Quotas",
    "Row",
    "S3Blobs",
    "ScoreConfigs",
    "ScoreDistribution",
    "ScoreQuery",
    "Scores",
    "SessionStats",
    "Sessions",
    "SqlStore",
    "Store",
    "TraceQuery",
    "TraceRollup",
    "TraceTotals",
    "Traces",
    "purge_freed",
    "sql_store",
]


class Traces(Protocol):
    """Traces: detail, list, per-trace aggregates, deletion."""

    def get_trace(self, conn: Conn, project_id: str, trace_id: str) -> Row | None: ...

    def list_traces(
        self,
        conn: Conn,
        project_id: str,
        query: TraceQuery,
        *,
        limit: int,
        offset: int,
        with_io: bool = True,
        count_limit: int | None = None,
    ) -> Page: ...

    def trace_totals(
        self, conn: Conn, project_id: str, query: TraceQuery, *, limit: int, scores: bool = True
    ) -> TraceTotals: ...

    def trace_score_averages(
        self, conn: Conn, project_id: str, query: TraceQuery, *, limit: int
    ) -> dict[str, float]: ...

    def observations_of(self, conn: Conn, project_id: str, trace_id: str) -> list[Row]: ...

    def scores_of(self, conn: Conn, project_id: str, trace_id: str) -> list[Row]: ...

    def trace_metrics(
        self, conn: Conn, project_id: str, trace_ids: Sequence[str]
    ) -> dict[str, tuple[float, float]]: ...

    def observation_ids(
        self,
        conn: Conn,
        project_id: str,
        trace_ids: Sequence[str],
        *,
        around: tuple[datetime, datetime] | None = None,
    ) -> dict[str, list[str]]: ...

    def score_ids(
        self, conn: Conn, project_id: str, trace_ids: Sequence[str]
    ) -> dict[str, list[str]]: ...

    def trace_figures(
        self,
        conn: Conn,
        project_id: str,
        trace_ids: Sequence[str],
        *,
        around: tuple[datetime, datetime] | None = None,
    ) -> tuple[dict[str, tuple[float, float]], dict[str, TraceRollup]]: ...

    def delete_traces(self, conn: Conn, project_id: str, trace_ids: Sequence[str]) -> int: ...


class Observations(Protocol):
    """Observations: detail, offset and cursor lists."""

    def get_observation(self, conn: Conn, project_id: str, observation_id: str) -> Row | None: ...

    def list_observations(
        self, conn: Conn, project_id: str, query: ObservationQuery, *, limit: int, offset: int
    ) -> Page: ...

    def observations_after(
        self,
        conn: Conn,
        project_id: str,
        query: ObservationQuery,
        *,
        limit: int,
        after: tuple[datetime, str] | None,
        with_trace: bool,
        with_io: bool,
        with_metadata: bool,
    ) -> CursorPage: ...


class Scores(Protocol):
    """Scores: detail, offset and cursor lists, deletion, distributions per name."""

    def get_score(
        self, conn: Conn, project_id: str, score_id: str, *, traces_only: bool = False
    ) -> Row | None: ...

    def list_scores(
        self, conn: Conn, project_id: str, q: ScoreQuery, *, limit: int, offset: int
    ) -> Page: ...

    def scores_of_traces(
        self, conn: Conn, project_id: str, trace_ids: Sequence[str], *, limit: int
    ) -> list[Row]: ...

    def scores_after(
        self,
        conn: Conn,
        project_id: str,
        q: ScoreQuery,
        *,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> CursorPage: ...

    def delete_score(self, conn: Conn, project_id: str, score_id: str) -> bool: ...

    def score_distributions(
        self,
        conn: Conn,
        project_id: str,
        q: ScoreQuery,
        *,
        max_names: int = 20,
        max_bins: int = 20,
        max_values: int = 20,
    ) -> list[ScoreDistribution]: ...


class Sessions(Protocol):
    """Sessions: views over the traces that share a session id."""

    def get_session(self, conn: Conn, project_id: str, session_id: str) -> Row | None: ...

    def list_sessions(
        self,
        conn: Conn,
        project_id: str,
        *,
        from_timestamp: datetime | None = None,
        to_timestamp: datetime | None = None,
        environments: Sequence[str] = (),
        limit: int,
        offset: int,
    ) -> Page: ...

    def traces_of_session(self, conn: Conn, project_id: str, session_id: str) -> list[Row]: ...

    def session_stats(
        self, conn: Conn, project_id: str, session_ids: Sequence[str]
    ) -> dict[str, SessionStats]: ...

    def sessions_of_user(
        self, conn: Conn, project_id: str, user_id: str, *, limit: int = 50
    ) -> list[str]: ...

    def session_usage(
        self, conn: Conn, project_id: str, session_ids: Sequence[str]
    ) -> dict[str, tuple[float, int]] | None: ...


class ScoreConfigs(Protocol):
    """Score configs: create, read, page, update (archive)."""

    def create(
        self, conn: Conn, project_id: str, fields: dict[str, Any], config_id: str | None = None
    ) -> Row: ...

    def get(self, conn: Conn, project_id: str, config_id: str) -> Row | None: ...

    def get_many(
        self, conn: Conn, project_id: str, config_ids: Iterable[str]
    ) -> dict[str, Row]: ...

    def page(self, conn: Conn, project_id: str, limit: int, offset: int) -> Page: ...

    def update(
        self, conn: Conn, project_id: str, config_id: str, fields: dict[str, Any]
    ) -> Row: ...


class Prompts(Protocol):
    """Prompt versions, labels, and the metrics of each version."""

    def create(
        self, conn: Conn, project_id: str, new: NewPrompt, created_by: str = "API"
    ) -> Row: ...

    def get(
        self,
        conn: Conn,
        project_id: str,
        name: str,
        *,
        version: int | None = None,
        label: str | None = None,
    ) -> Row | None: ...

    def list_names(
        self,
        conn: Conn,
        project_id: str,
        *,
        name: str | None = None,
        label: str | None = None,
        tag: str | None = None,
        from_updated: datetime | None = None,
        to_updated: datetime | None = None,
        page: int = 1,
        limit: int = 10,
    ) -> tuple[list[list[Row]], int]: ...

    def add_labels(
        self, conn: Conn, project_id: str, name: str, version: int, labels: list[str]
    ) -> Row | None: ...

    def delete(
        self,
        conn: Conn,
        project_id: str,
        name: str,
        *,
        version: int | None = None,
        label: str | None = None,
    ) -> int: ...

    def version_metrics(
        self,
        conn: Conn,
        project_id: str,
        name: str,
        *,
        from_ts: datetime | None = None,
        to_ts: datetime | None = None,
        events: Conn | None = None,
    ) -> list[VersionStats]: ...


class Models(Protocol):
    """Custom model prices and the pricing a batch is costed with."""

    def create(self, conn: Conn, project_id: str, fields: dict[str, Any]) -> Row: ...

    def get(self, conn: Conn, project_id: str, model_id: str) -> Row | None: ...

    def list_custom(self, conn: Conn, project_id: str) -> list[Row]: ...

    def delete(self, conn: Conn, project_id: str, model_id: str) -> bool: ...

    def forget(self, project_id: str) -> None:
        """Drop the project's cached prices (after a change is committed)."""

    def pricing(self, conn: Conn, project_id: str) -> Pricing: ...


class Projects(Protocol):
    """Organisations, projects and API keys."""

    def find_key(self, conn: Conn, public_key: str) -> Row | None: ...

    def secret_matches(self, row: Row, secret: str) -> bool: ...

    def get_project(self, conn: Conn, project_id: str) -> Row | None: ...

    def create_organization(self, conn: Conn, name: str) -> str: ...

    def create_project(self, conn: Conn, org_id: str, name: str) -> str: ...

    def update_project(
        self,
        conn: Conn,
        project_id: str,
        name: str,
        retention_days: int | None,
        metadata: dict[str, Any] | None = None,
    ) -> bool: ...

    def create_key(
        self,
        conn: Conn,
        project_id: str,
        note: str | None = None,
        role: str = "admin",
        *,
        public_key: str | None = None,
        secret_key: str | None = None,
    ) -> NewKey: ...

    def public_key_taken(self, conn: Conn, public_key: str) -> bool: ...

    def revoke_project_keys(self, conn: Conn, project_id: str) -> int: ...

    def get_organization(self, conn: Conn, org: str) -> Row | None: ...

    def org_projects(self, conn: Conn, org_id: str) -> list[Row]: ...

    def create_org_key(self, conn: Conn, org_id: str, note: str | None = None) -> NewOrgKey: ...

    def find_org_key(self, conn: Conn, public_key: str) -> Row | None: ...

    def list_org_keys(self, conn: Conn, org_id: str | None = None) -> list[Row]: ...

    def revoke_org_key(self, conn: Conn, key: str, org_id: str | None = None) -> str | None: ...

    def list_keys(self, conn: Conn, project_id: str | None = None) -> list[Row]: ...

    def revoke_key(self, conn: Conn, key: str) -> bool: ...


class Quotas(Protocol):
    """The shared counters of the per-project rate limits (``server/quota.py``)."""

    def add_usage(
        self, conn: Conn, deltas: Iterable[tuple[tuple[str, str, int], int]]
    ) -> dict[tuple[str, str, int], int]: ...

    def forget_before(self, conn: Conn, window: int) -> None: ...


class Ingest(Protocol):
    """The ingestion write path: prepare on a read connection, apply in the writer."""

    def prepare_events(
        self, conn: Conn, project_id: str, events: Iterable[DomainEvent], *, rows: bool = True
    ) -> PreparedEvents: ...

    def apply_events(self, conn: Conn, project_id: str, events: Iterable[DomainEvent]) -> int: ...


class Dashboards(Protocol):
    """Custom dashboards and dashboard widgets (checked above the store, stored as given)."""

    def create_widget(
        self, conn: Conn, project_id: str, fields: dict[str, Any], widget_id: str | None = None
    ) -> Row: ...

    def get_widget(self, conn: Conn, project_id: str, widget_id: str) -> Row | None: ...

    def get_widgets(self, conn: Conn, project_id: str, widget_ids: list[str]) -> dict[str, Row]: ...

    def page_widgets(self, conn: Conn, project_id: str, limit: int, offset: int) -> Page: ...

    def update_widget(
        self, conn: Conn, project_id: str, widget_id: str, fields: dict[str, Any]
    ) -> Row | None: ...

    def delete_widget(self, conn: Conn, project_id: str, widget_id: str) -> bool: ...

    def create_dashboard(
        self, conn: Conn, project_id: str, fields: dict[str, Any], dashboard_id: str | None = None
    ) -> Row: ...

    def get_dashboard(self, conn: Conn, project_id: str, dashboard_id: str) -> Row | None: ...

    def page_dashboards(self, conn: Conn, project_id: str, limit: int, offset: int) -> Page: ...

    def update_dashboard(
        self, conn: Conn, project_id: str, dashboard_id: str, fields: dict[str, Any]
    ) -> Row | None: ...

    def delete_dashboard(self, conn: Conn, project_id: str, dashboard_id: str) -> bool: ...

    def dashboards_placing(self, conn: Conn, project_id: str, widget_id: str) -> list[str]: ...

    def default_dashboard(self, conn: Conn, project_id: str) -> tuple[bool, str | None]: ...

    def record_default(self, conn: Conn, project_id: str, dashboard_id: str) -> bool: ...


class Budgets(Protocol):
    """Cost budgets (checked above the store, stored as given) and their crossings."""

    def create(
        self, conn: Conn, project_id: str, fields: dict[str, Any], budget_id: str | None = None
    ) -> Row: ...

    def get(self, conn: Conn, project_id: str, budget_id: str) -> Row | None: ...

    def list_all(self, conn: Conn, project_id: str) -> list[Row]: ...

    def update(
        self, conn: Conn, project_id: str, budget_id: str, fields: dict[str, Any]
    ) -> Row | None: ...

    def delete(self, conn: Conn, project_id: str, budget_id: str) -> bool: ...

    def projects_with_budgets(self, conn: Conn) -> list[str]: ...

    def record_crossing(
        self,
        conn: Conn,
        project_id: str,
        budget_id: str,
        period_start: str,
        level: str,
        spent_usd: float,
        limit_usd: float,
        at: datetime,
    ) -> bool: ...

    def crossings(
        self, conn: Conn, project_id: str, budget_id: str, *, limit: int = 50
    ) -> list[Row]: ...


class AlertChannels(Protocol):
    """Alert channels of a project (checked above the store; secrets arrive sealed)."""

    def create_channel(
        self, conn: Conn, project_id: str, channel_id: str, fields: dict[str, Any]
    ) -> Row: ...

    def get_channel(self, conn: Conn, project_id: str, channel_id: str) -> Row | None: ...

    def list_channels(self, conn: Conn, project_id: str) -> list[Row]: ...

    def update_channel(
        self, conn: Conn, project_id: str, channel_id: str, fields: dict[str, Any]
    ) -> Row | None: ...

    def delete_channel(self, conn: Conn, project_id: str, channel_id: str) -> bool: ...


class Alerts(Protocol):
    """Alert rules (checked above the store), their evaluation state and lease, and the
    alert history (``store/alerts.py``)."""

    def create_rule(
        self, conn: Conn, project_id: str, fields: dict[str, Any], rule_id: str | None = None
    ) -> Row: ...

    def get_rule(self, conn: Conn, project_id: str, rule_id: str) -> Row | None: ...

    def page_rules(self, conn: Conn, project_id: str, limit: int, offset: int) -> Page: ...

    def update_rule(
        self, conn: Conn, project_id: str, rule_id: str, fields: dict[str, Any]
    ) -> Row | None: ...

    def delete_rule(self, conn: Conn, project_id: str, rule_id: str) -> bool: ...

    def due_rules(self, conn: Conn, at: datetime) -> list[Row]: ...

    def claim(
        self, conn: Conn, project_id: str, rule_id: str, owner: str, at: datetime, until: datetime
    ) -> bool: ...

    def finish(
        self,
        conn: Conn,
        project_id: str,
        rule_id: str,
        owner: str,
        state: dict[str, Any],
        events: list[dict[str, Any]],
    ) -> bool: ...

    def add_events(
        self,
        conn: Conn,
        project_id: str,
        rule_id: str,
        events: list[dict[str, Any]],
        *,
        source: str = "rule",
    ) -> None: ...

    def page_events(
        self, conn: Conn, project_id: str, rule_id: str | None, limit: int, offset: int
    ) -> Page: ...


class Store(Protocol):
    """Everything the server reads and writes, one attribute per resource."""

    #: Where traces, observations and scores live: ``"sql"`` (the SQLite/PostgreSQL
    #: database, with the rollups and totals the analytics read) or ``"clickhouse"``.
    events_backend: str
    traces: Traces
    observations: Observations
    scores: Scores
    sessions: Sessions
    score_configs: ScoreConfigs
    prompts: Prompts
    models: Models
    projects: Projects
    ingest: Ingest
    dashboards: Dashboards
    budgets: Budgets
    channels: AlertChannels
    alerts: Alerts
    quotas: Quotas
    lifecycle: Lifecycle
    audit: Audit
    masking: Masking
    datasets: Datasets
    experiments: Experiments
    comments: Comments
    annotations: AnnotationQueues
    evaluations: Evaluations
    ab_tests: AbTests
    media: Media
    blob_exports: BlobExports

    def events_conn(self, conn: Conn) -> Conn:
        """A ``Conn`` on which portable SQL reads the event tables (``traces``,
        ``observations``, ``scores``): ``conn`` itself when they are in its database."""
        ...


class SqlStore:
    """The SQLite/PostgreSQL store: this package's query modules, checked by mypy
    against the Protocols above (each attribute's annotation is the check)."""

    #: Traces, observations and scores are in the SQLite/PostgreSQL database.
    events_backend = "sql"

    def __init__(self) -> None:
        self.traces: Traces = traces
        self.observations: Observations = observations_module
        self.scores: Scores = scores
        self.sessions: Sessions = sessions
        self.score_configs: ScoreConfigs = score_configs
        self.prompts: Prompts = prompts
        self.models: Models = models
        self.projects: Projects = projects
        self.ingest: Ingest = write
        self.dashboards: Dashboards = dashboards
        self.budgets: Budgets = budgets
        self.channels: AlertChannels = channels
        self.alerts: Alerts = alerts
        self.quotas: Quotas = quotas
        self.lifecycle: Lifecycle = lifecycle
        self.audit: Audit = audit
        self.masking: Masking = masking
        self.datasets: Datasets = datasets
        self.experiments: Experiments = experiments
        self.comments: Comments = comments
        self.annotations: AnnotationQueues = annotation_queues
        self.evaluations: Evaluations = evaluations
        self.ab_tests: AbTests = ab_tests
        self.media: Media = media
        self.blob_exports: BlobExports = blob_exports

    def events_conn(self, conn: Conn) -> Conn:
        """``conn``: the event tables are in its database."""
        return conn


#: The writer combines neighbouring ingestion units (mypy checks the unit's shape).
COMBINABLE_INGEST: type[Combinable] = PreparedEvents


def sql_store() -> Store:
    """The SQLite/PostgreSQL :class:`Store` (mypy checks that it is one)."""
    return SqlStore()
