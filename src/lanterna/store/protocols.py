"""The store's Protocols for the resources beyond the core (lifecycle, audit log, masking,
datasets and experiments, comments, annotation queues, evaluations, A/B tests), and the row and
page types every Protocol uses. ``interface.py`` gathers them into ``Store`` and
re-exports them: import them from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from ..ingest.otlp_experiments import ExperimentLink
from .db import Conn
from .experiments import ExperimentQuery
from .filters import Condition
from .lifecycle import Deleted
from .traces import TraceQuery

Row = dict[str, Any]
#: A page of rows and the total number of matches.
Page = tuple[list[Row], int]
#: A page of rows and whether more follow (cursor pagination).
CursorPage = tuple[list[Row], bool]


class Lifecycle(Protocol):
    """Deleting a user's or a session's data, retention, an export's walk, and the lease
    of background jobs (``store/lifecycle.py``). Deletes run in the writer, a batch of
    trace ids per call, and keep the rollups exact."""

    def user_trace_ids(
        self, conn: Conn, project_id: str, user_id: str, *, limit: int = ...
    ) -> list[str]: ...

    def session_trace_ids(
        self, conn: Conn, project_id: str, session_id: str, *, limit: int = ...
    ) -> list[str]: ...

    def project_trace_ids(self, conn: Conn, project_id: str, *, limit: int = ...) -> list[str]: ...

    def delete_project_rows(self, conn: Conn, project_id: str) -> int: ...

    def delete_trace_data(
        self, conn: Conn, project_id: str, trace_ids: Sequence[str], *, empty_sessions: bool = ...
    ) -> Deleted: ...

    def delete_empty_session(self, conn: Conn, project_id: str, session_id: str) -> Deleted: ...

    def delete_scores(self, conn: Conn, project_id: str, score_ids: Sequence[str]) -> int: ...

    def projects_with_retention(self, conn: Conn) -> list[tuple[str, int]]: ...

    def expired_trace_ids(
        self, conn: Conn, project_id: str, cutoff: datetime, *, limit: int = ...
    ) -> list[str]: ...

    def expired_score_ids(
        self, conn: Conn, project_id: str, cutoff: datetime, *, limit: int = ...
    ) -> list[str]: ...

    def orphan_session_ids(self, conn: Conn, project_id: str, *, limit: int = ...) -> list[str]: ...

    def export_trace_ids(
        self,
        conn: Conn,
        project_id: str,
        query: TraceQuery,
        *,
        after: tuple[datetime, str] | None,
        limit: int = ...,
    ) -> list[tuple[datetime, str]]: ...

    def session_scores(
        self, conn: Conn, project_id: str, session_ids: Sequence[str]
    ) -> list[Row]: ...

    def claim_job(
        self, conn: Conn, name: str, owner: str, at: datetime, until: datetime
    ) -> bool: ...

    def finish_job(self, conn: Conn, name: str, owner: str, next_run_at: datetime) -> bool: ...


class Audit(Protocol):
    """The audit log (``store/audit.py``): append an entry, page them newest first."""

    def record(
        self,
        conn: Conn,
        project_id: str,
        actor: str,
        action: str,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> None: ...

    def record_feedback(
        self, conn: Conn, project_id: str, actor: str, fields: dict[str, str | None]
    ) -> str: ...

    def page_entries(
        self, conn: Conn, project_id: str, *, limit: int, offset: int, action: str | None = None
    ) -> Page: ...


class BlobExports(Protocol):
    """Blob-storage integrations (``store/blob_exports.py``): scheduled exports to an
    S3-compatible bucket, their sync state and lease."""

    def get(self, conn: Conn, integration_id: str) -> Row | None: ...

    def of_project(self, conn: Conn, project_id: str) -> Row | None: ...

    def of_projects(self, conn: Conn, project_ids: list[str]) -> list[Row]: ...

    def upsert(self, conn: Conn, project_id: str, fields: dict[str, Any], at: datetime) -> Row: ...

    def delete(self, conn: Conn, integration_id: str) -> bool: ...

    def due_ids(self, conn: Conn, at: datetime) -> list[str]: ...

    def claim(
        self, conn: Conn, integration_id: str, owner: str, at: datetime, until: datetime
    ) -> bool: ...

    def finish(
        self,
        conn: Conn,
        integration_id: str,
        owner: str,
        *,
        next_sync_at: datetime,
        synced_to: datetime | None,
        error: str | None,
        at: datetime,
    ) -> bool: ...


class Masking(Protocol):
    """A project's masking rules (``store/masking.py``; checked above the store, applied
    to every ingested batch by the write path)."""

    def get_rules(self, conn: Conn, project_id: str) -> list[dict[str, Any]]: ...

    def set_rules(self, conn: Conn, project_id: str, rules: list[dict[str, Any]]) -> None: ...

    def forget(self, project_id: str) -> None:
        """Drop the project's cached rules (after a change is committed)."""


class Datasets(Protocol):
    """Datasets, their items (with versions), runs and run items (bodies checked above
    the store, by ``ingest/datasets.py``)."""

    def get_dataset(self, conn: Conn, project_id: str, dataset_id: str) -> Row | None: ...

    def dataset_by_name(self, conn: Conn, project_id: str, name: str) -> Row | None: ...

    def upsert_dataset(
        self, conn: Conn, project_id: str, fields: dict[str, Any], at: datetime
    ) -> Row: ...

    def page_datasets(self, conn: Conn, project_id: str, limit: int, offset: int) -> Page: ...

    def dataset_counts(
        self, conn: Conn, project_id: str, dataset_ids: Sequence[str]
    ) -> dict[str, tuple[int, int]]: ...

    def get_item(self, conn: Conn, project_id: str, item_id: str) -> Row | None: ...

    def put_item(self, conn: Conn, project_id: str, item: Row, at: datetime) -> Row: ...

    def items_of_dataset(self, conn: Conn, project_id: str, dataset_id: str) -> list[Row]: ...

    def page_items(
        self,
        conn: Conn,
        project_id: str,
        *,
        dataset_id: str | None = None,
        source_trace_id: str | None = None,
        source_observation_id: str | None = None,
        version: datetime | None = None,
        active_only: bool = True,
        limit: int,
        offset: int,
    ) -> Page: ...

    def delete_item(self, conn: Conn, project_id: str, item_id: str, at: datetime) -> bool: ...

    def get_run(self, conn: Conn, project_id: str, dataset_id: str, name: str) -> Row | None: ...

    def run_by_id(self, conn: Conn, project_id: str, run_id: str) -> Row | None: ...

    def ensure_run(
        self,
        conn: Conn,
        project_id: str,
        dataset_id: str,
        name: str,
        *,
        description: str | None,
        metadata: Any,
        at: datetime,
        run_id: str | None = None,
    ) -> Row: ...

    def page_runs(
        self, conn: Conn, project_id: str, dataset_id: str, limit: int, offset: int
    ) -> Page: ...

    def delete_run(self, conn: Conn, project_id: str, run_id: str) -> bool: ...

    def add_run_item(
        self,
        conn: Conn,
        project_id: str,
        run_id: str,
        item_id: str,
        trace_id: str,
        observation_id: str | None,
        *,
        dataset_version: datetime | None,
        created_at: datetime,
        at: datetime,
    ) -> Row: ...

    def page_run_items(
        self, conn: Conn, project_id: str, run_id: str, limit: int, offset: int
    ) -> Page: ...

    def run_items_of(self, conn: Conn, project_id: str, run_ids: Sequence[str]) -> list[Row]: ...

    def scores_of_runs(self, conn: Conn, project_id: str, run_ids: Sequence[str]) -> list[Row]: ...

    def record_experiment_items(
        self, conn: Conn, project_id: str, links: Sequence[ExperimentLink], at: datetime
    ) -> int: ...


class Experiments(Protocol):
    """Dataset runs and run items as Langfuse's experiments and experiment items."""

    def experiments_after(
        self,
        conn: Conn,
        project_id: str,
        q: ExperimentQuery,
        *,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> CursorPage: ...

    def experiment_items_after(
        self,
        conn: Conn,
        project_id: str,
        q: ExperimentQuery,
        *,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> CursorPage: ...

    def scores_on(
        self,
        conn: Conn,
        project_id: str,
        *,
        trace_ids: Sequence[str] = (),
        run_ids: Sequence[str] = (),
    ) -> list[Row]: ...


class Comments(Protocol):
    """Comments on traces, observations, sessions and prompts."""

    def create(
        self,
        conn: Conn,
        project_id: str,
        object_type: str,
        object_id: str,
        content: str,
        author_user_id: str | None,
    ) -> Row: ...

    def get(self, conn: Conn, project_id: str, comment_id: str) -> Row | None: ...

    def page(
        self,
        conn: Conn,
        project_id: str,
        *,
        object_type: str | None,
        object_id: str | None,
        author_user_id: str | None,
        limit: int,
        offset: int,
    ) -> Page: ...

    def of_object(
        self, conn: Conn, project_id: str, object_type: str, object_id: str
    ) -> list[Row]: ...


class AnnotationQueues(Protocol):
    """Annotation queues, their items and assignments."""

    def create_queue(
        self,
        conn: Conn,
        project_id: str,
        name: str,
        description: str | None,
        score_config_ids: list[str],
    ) -> Row: ...

    def get_queue(self, conn: Conn, project_id: str, queue_id: str) -> Row | None: ...

    def page_queues(self, conn: Conn, project_id: str, limit: int, offset: int) -> Page: ...

    def queue_counts(self, conn: Conn, project_id: str) -> dict[str, dict[str, int]]: ...

    def create_item(
        self,
        conn: Conn,
        project_id: str,
        queue_id: str,
        object_id: str,
        object_type: str,
        status: str,
    ) -> Row: ...

    def get_item(self, conn: Conn, project_id: str, queue_id: str, item_id: str) -> Row | None: ...

    def page_items(
        self,
        conn: Conn,
        project_id: str,
        queue_id: str,
        status: str | None,
        limit: int,
        offset: int,
    ) -> Page: ...

    def set_item_status(
        self, conn: Conn, project_id: str, queue_id: str, item_id: str, status: str
    ) -> Row | None: ...

    def delete_item(self, conn: Conn, project_id: str, queue_id: str, item_id: str) -> bool: ...

    def assign(self, conn: Conn, project_id: str, queue_id: str, user_id: str) -> None: ...

    def unassign(self, conn: Conn, project_id: str, queue_id: str, user_id: str) -> bool: ...

    def assignees(self, conn: Conn, project_id: str, queue_id: str) -> list[str]: ...


class Evaluations(Protocol):
    """LLM connections, evaluators, evaluation rules (cursor and lease) and runs."""

    def connection_by_provider(self, conn: Conn, project_id: str, provider: str) -> Row | None: ...

    def upsert_connection(
        self, conn: Conn, project_id: str, connection_id: str, fields: dict[str, Any]
    ) -> Row: ...

    def page_connections(self, conn: Conn, project_id: str, limit: int, offset: int) -> Page: ...

    def delete_connection(self, conn: Conn, project_id: str, connection_id: str) -> bool: ...

    def create_evaluator(self, conn: Conn, project_id: str, fields: dict[str, Any]) -> Row: ...

    def get_evaluator(self, conn: Conn, project_id: str, evaluator_id: str) -> Row | None: ...

    def evaluator_by_name(self, conn: Conn, project_id: str, name: str) -> Row | None: ...

    def page_evaluators(self, conn: Conn, project_id: str, limit: int, offset: int) -> Page: ...

    def rule_counts(self, conn: Conn, project_id: str) -> dict[str, int]: ...

    def delete_evaluator(self, conn: Conn, project_id: str, evaluator_id: str) -> bool: ...

    def check_trace_filter(self, conn: Conn, conditions: Sequence[Condition]) -> None: ...

    def check_observation_filter(self, conn: Conn, conditions: Sequence[Condition]) -> None: ...

    def create_rule(self, conn: Conn, project_id: str, fields: dict[str, Any]) -> Row: ...

    def get_rule(self, conn: Conn, project_id: str, rule_id: str) -> Row | None: ...

    def page_rules(self, conn: Conn, project_id: str, limit: int, offset: int) -> Page: ...

    def update_rule(
        self, conn: Conn, project_id: str, rule_id: str, fields: dict[str, Any]
    ) -> Row | None: ...

    def delete_rule(self, conn: Conn, project_id: str, rule_id: str) -> bool: ...

    def enabled_rules(self, conn: Conn, at: datetime) -> list[Row]: ...

    def claim_rule(
        self, conn: Conn, project_id: str, rule_id: str, owner: str, at: datetime, until: datetime
    ) -> bool: ...

    def advance_rule(
        self,
        conn: Conn,
        project_id: str,
        rule_id: str,
        owner: str,
        cursor: tuple[datetime, str] | None,
        runs: Sequence[dict[str, Any]],
    ) -> bool: ...

    def new_traces(
        self,
        conn: Conn,
        project_id: str,
        conditions: Sequence[Condition],
        after: tuple[datetime, str],
        *,
        until: datetime,
        limit: int,
    ) -> tuple[list[Row], tuple[datetime, str] | None]: ...

    def new_observations(
        self,
        conn: Conn,
        project_id: str,
        conditions: Sequence[Condition],
        after: tuple[datetime, str],
        *,
        until: datetime,
        limit: int,
    ) -> tuple[list[Row], tuple[datetime, str] | None]: ...

    def new_run_items(
        self,
        conn: Conn,
        project_id: str,
        datasets: tuple[str, Sequence[str]] | None,
        after: tuple[datetime, str],
        *,
        until: datetime,
        limit: int,
    ) -> tuple[list[Row], tuple[datetime, str] | None]: ...

    def add_runs(self, conn: Conn, project_id: str, runs: Sequence[dict[str, Any]]) -> None: ...

    def recent_runs(
        self, conn: Conn, project_id: str, *, rule_id: str | None = None, limit: int = 50
    ) -> list[Row]: ...

    def run_counts(self, conn: Conn, project_id: str) -> dict[str, dict[str, int]]: ...


class AbTests(Protocol):
    """A/B tests (checked above the store by ``lanterna.abtests.rules``), by name
    (``store/ab_tests.py``)."""

    def create(self, conn: Conn, project_id: str, fields: dict[str, Any]) -> Row: ...

    def get(self, conn: Conn, project_id: str, name: str) -> Row | None: ...

    def list_all(self, conn: Conn, project_id: str, state: str | None = None) -> list[Row]: ...

    def update(
        self, conn: Conn, project_id: str, name: str, fields: dict[str, Any]
    ) -> Row | None: ...

    def set_state(
        self,
        conn: Conn,
        project_id: str,
        name: str,
        state: str,
        at: datetime,
        winner: str | None = None,
    ) -> Row | None: ...

    def delete(self, conn: Conn, project_id: str, name: str) -> bool: ...

    def score_exists(
        self, conn: Conn, project_id: str, name: str, *, events: Conn | None = None
    ) -> bool: ...


class Media(Protocol):
    """Media records (uploaded images, audio, files) and what refers to them
    (``store/media.py``); the bytes are in the blob store (``store/blobs.py``), keyed by
    the record's ``sha256``."""

    def get_media(self, conn: Conn, project_id: str, media_id: str) -> Row | None: ...

    def get_many(self, conn: Conn, project_id: str, media_ids: Sequence[str]) -> dict[str, Row]: ...

    def register(
        self,
        conn: Conn,
        project_id: str,
        media_id: str,
        sha256: str,
        content_type: str,
        content_length: int,
    ) -> Row: ...

    def mark_uploaded(
        self,
        conn: Conn,
        project_id: str,
        media_id: str,
        at: datetime,
        status: int | None,
        error: str | None = None,
        time_ms: int | None = None,
    ) -> bool: ...

    def add_reference(
        self,
        conn: Conn,
        project_id: str,
        media_id: str,
        object_kind: str,
        object_id: str,
        observation_id: str | None = None,
        field: str | None = None,
    ) -> None: ...

    def media_of_trace(self, conn: Conn, project_id: str, trace_id: str) -> list[Row]: ...

    def release_traces(self, conn: Conn, project_id: str, trace_ids: Sequence[str]) -> int: ...

    def delete_unreferenced(self, conn: Conn, created_before: datetime) -> int: ...

    def freed_blobs(self, conn: Conn, limit: int = 1000) -> list[str]: ...

    def forget_freed(self, conn: Conn, keys: Sequence[str]) -> list[str]: ...
