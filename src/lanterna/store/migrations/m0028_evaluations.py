"""Comments, annotation queues, LLM connections, evaluators, evaluation rules and the
record of their runs (issue 15)."""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """Create the tables.

    - ``comments``: free text on a trace, observation, session or prompt;
    - ``annotation_queues``, ``annotation_queue_items`` (PENDING/COMPLETED),
      ``annotation_queue_assignments`` (which dashboard users work a queue);
    - ``llm_connections``: an endpoint and its key, the key (and extra headers)
      sealed with the server key, never stored in clear;
    - ``evaluators``: one row per version of an evaluator (``id`` names the family);
    - ``evaluation_rules``: filter, sampling and evaluator, with the worker's cursor
      (the last trace looked at) and lease;
    - ``evaluation_runs``: each evaluation's outcome (the score written, or the error);
    - ``traces_created``: traces by arrival, so the rules' worker reads only new traces
      (keyed by time: inserts append).
    """
    ddl(
        conn,
        """
        CREATE TABLE comments (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            object_type TEXT NOT NULL,
            object_id TEXT NOT NULL,
            content TEXT NOT NULL,
            author_user_id TEXT,
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE INDEX comments_object ON comments (project_id, object_type, object_id, created_at);
        CREATE TABLE annotation_queues (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            description TEXT,
            score_config_ids {JSON} NOT NULL,
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE TABLE annotation_queue_items (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            queue_id TEXT NOT NULL,
            object_id TEXT NOT NULL,
            object_type TEXT NOT NULL,
            status TEXT NOT NULL,
            completed_at {TS},
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE INDEX annotation_queue_items_queue
            ON annotation_queue_items (project_id, queue_id, status, created_at);
        CREATE TABLE annotation_queue_assignments (
            project_id TEXT NOT NULL,
            queue_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            created_at {TS} NOT NULL,
            PRIMARY KEY (project_id, queue_id, user_id)
        );
        CREATE TABLE llm_connections (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            provider TEXT NOT NULL,
            adapter TEXT NOT NULL,
            secret_sealed TEXT NOT NULL,
            display_secret_key TEXT NOT NULL,
            base_url TEXT,
            custom_models {JSON} NOT NULL,
            with_default_models {BOOL} NOT NULL,
            extra_headers_sealed TEXT,
            extra_header_keys {JSON} NOT NULL,
            config {JSON},
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE UNIQUE INDEX llm_connections_provider ON llm_connections (project_id, provider);
        CREATE TABLE evaluators (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            version INTEGER NOT NULL,
            name TEXT NOT NULL,
            type TEXT NOT NULL,
            prompt TEXT,
            output_definition {JSON},
            model_config {JSON},
            mapping {JSON},
            config {JSON},
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id, version)
        );
        CREATE INDEX evaluators_name ON evaluators (project_id, name, version);
        CREATE TABLE evaluation_rules (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            evaluator_id TEXT NOT NULL,
            target TEXT NOT NULL,
            enabled {BOOL} NOT NULL,
            sampling {FLOAT} NOT NULL,
            filter {JSON} NOT NULL,
            mapping {JSON},
            cursor_at {TS},
            cursor_id TEXT,
            lease_owner TEXT,
            lease_until {TS},
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE TABLE evaluation_runs (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            rule_id TEXT,
            evaluator_id TEXT NOT NULL,
            object_type TEXT NOT NULL,
            object_id TEXT NOT NULL,
            status TEXT NOT NULL,
            score_id TEXT,
            judge_trace_id TEXT,
            error TEXT,
            created_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE INDEX evaluation_runs_rule ON evaluation_runs (project_id, rule_id, created_at);
        CREATE INDEX traces_created ON traces (project_id, created_at)
        """,
    )
