"""Datasets (contract 4.4): datasets, their items with every version of each item (so a
read can ask for the items as they were at a time), dataset runs and run items."""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """Create the dataset tables.

    ``dataset_item_versions`` keeps one row per write of an item (``deleted`` marks a
    delete), so ``GET /api/public/dataset-items?version=T`` reads each item's last
    version at or before ``T``; ``dataset_items`` holds the current state.
    """
    ddl(
        conn,
        """
        CREATE TABLE datasets (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            description TEXT,
            metadata {JSON},
            input_schema {JSON},
            expected_output_schema {JSON},
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE UNIQUE INDEX datasets_name ON datasets (project_id, name);
        CREATE TABLE dataset_items (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            dataset_id TEXT NOT NULL,
            status TEXT NOT NULL,
            input {JSON},
            expected_output {JSON},
            metadata {JSON},
            source_trace_id TEXT,
            source_observation_id TEXT,
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE INDEX dataset_items_dataset ON dataset_items (project_id, dataset_id, created_at);
        CREATE INDEX dataset_items_source ON dataset_items (project_id, source_trace_id);
        CREATE TABLE dataset_item_versions (
            project_id TEXT NOT NULL,
            item_id TEXT NOT NULL,
            valid_from {TS} NOT NULL,
            dataset_id TEXT NOT NULL,
            deleted {BOOL} NOT NULL,
            status TEXT NOT NULL,
            input {JSON},
            expected_output {JSON},
            metadata {JSON},
            source_trace_id TEXT,
            source_observation_id TEXT,
            created_at {TS} NOT NULL,
            PRIMARY KEY (project_id, item_id, valid_from)
        );
        CREATE INDEX dataset_item_versions_dataset
            ON dataset_item_versions (project_id, dataset_id, valid_from);
        CREATE TABLE dataset_runs (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            dataset_id TEXT NOT NULL,
            name TEXT NOT NULL,
            description TEXT,
            metadata {JSON},
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE UNIQUE INDEX dataset_runs_name ON dataset_runs (project_id, dataset_id, name);
        CREATE TABLE dataset_run_items (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            run_id TEXT NOT NULL,
            dataset_item_id TEXT NOT NULL,
            trace_id TEXT NOT NULL,
            observation_id TEXT,
            dataset_version {TS},
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE INDEX dataset_run_items_run ON dataset_run_items (project_id, run_id, created_at);
        CREATE INDEX dataset_run_items_item ON dataset_run_items (project_id, dataset_item_id)
        """,
    )
