"""The migrations of releases up to 0017, in one module (later ones each have their own).

Never edit a released migration: add a new module ``mNNNN_name.py`` beside this one.
"""

from __future__ import annotations

from collections.abc import Callable

from ..db import Conn
from ..rollup_build import backfill
from .sql import ddl, pg_trgm


def m0001_core(conn: Conn) -> None:
    """Organisations, projects, API keys, traces, observations, scores, sessions."""
    ddl(
        conn,
        """
        CREATE TABLE organizations (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            created_at {TS} NOT NULL
        );
        CREATE TABLE projects (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL REFERENCES organizations(id),
            name TEXT NOT NULL,
            retention_days INTEGER,
            metadata {JSON},
            created_at {TS} NOT NULL
        );
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id),
            public_key TEXT NOT NULL UNIQUE,
            secret_salt TEXT NOT NULL,
            secret_hash TEXT NOT NULL,
            display_secret TEXT NOT NULL,
            note TEXT,
            created_at {TS} NOT NULL,
            last_used_at {TS},
            revoked_at {TS}
        );
        CREATE INDEX api_keys_project ON api_keys (project_id);
        CREATE TABLE traces (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            timestamp {TS} NOT NULL,
            name TEXT,
            user_id TEXT,
            session_id TEXT,
            release TEXT,
            version TEXT,
            environment TEXT NOT NULL,
            input {JSON},
            output {JSON},
            metadata {JSON},
            tags {JSON} NOT NULL,
            public {BOOL} NOT NULL,
            bookmarked {BOOL} NOT NULL,
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE INDEX traces_time ON traces (project_id, timestamp);
        CREATE INDEX traces_user ON traces (project_id, user_id, timestamp);
        CREATE INDEX traces_session ON traces (project_id, session_id, timestamp);
        CREATE INDEX traces_name ON traces (project_id, name, timestamp);
        CREATE TABLE observations (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            trace_id TEXT NOT NULL,
            parent_observation_id TEXT,
            type TEXT NOT NULL,
            name TEXT,
            start_time {TS} NOT NULL,
            end_time {TS},
            completion_start_time {TS},
            level TEXT NOT NULL,
            status_message TEXT,
            version TEXT,
            environment TEXT NOT NULL,
            input {JSON},
            output {JSON},
            metadata {JSON},
            model TEXT,
            model_parameters {JSON},
            usage_details {JSON},
            provided_usage_details {JSON},
            cost_details {JSON},
            provided_cost_details {JSON},
            total_cost {FLOAT},
            model_id TEXT,
            prompt_id TEXT,
            prompt_name TEXT,
            prompt_version INTEGER,
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE INDEX observations_trace ON observations (project_id, trace_id);
        CREATE INDEX observations_time ON observations (project_id, start_time);
        CREATE INDEX observations_type ON observations (project_id, type, start_time);
        CREATE TABLE scores (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            timestamp {TS} NOT NULL,
            trace_id TEXT,
            observation_id TEXT,
            session_id TEXT,
            dataset_run_id TEXT,
            name TEXT NOT NULL,
            value {FLOAT},
            string_value TEXT,
            data_type TEXT NOT NULL,
            source TEXT NOT NULL,
            comment TEXT,
            metadata {JSON},
            config_id TEXT,
            queue_id TEXT,
            author_user_id TEXT,
            environment TEXT NOT NULL,
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE INDEX scores_trace ON scores (project_id, trace_id);
        CREATE INDEX scores_session ON scores (project_id, session_id);
        CREATE INDEX scores_time ON scores (project_id, timestamp);
        CREATE INDEX scores_name ON scores (project_id, name, timestamp);
        CREATE TABLE sessions (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            environment TEXT NOT NULL,
            created_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE INDEX sessions_time ON sessions (project_id, created_at)
        """,
    )


def m0002_read_indexes(conn: Conn) -> None:
    """Indexes for the filters of the trace and observation lists."""
    ddl(
        conn,
        """
        CREATE INDEX traces_environment ON traces (project_id, environment, timestamp);
        CREATE INDEX observations_name ON observations (project_id, name, start_time);
        CREATE INDEX observations_environment ON observations (project_id, environment, start_time);
        CREATE INDEX observations_parent ON observations (project_id, parent_observation_id)
        """,
    )
    # Tag filters ("all of", "any of") become JSON array containment; PostgreSQL
    # answers it from a GIN index, SQLite has no index over JSON array elements.
    tags = conn.dialect.json_array_index("traces_tags", "traces", "tags")
    if tags is not None:
        ddl(conn, tags)


def m0003_prompts(conn: Conn) -> None:
    """Prompt versions with labels and tags."""
    ddl(
        conn,
        """
        CREATE TABLE prompts (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL,
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            type TEXT NOT NULL,
            prompt {JSON} NOT NULL,
            config {JSON} NOT NULL,
            labels {JSON} NOT NULL,
            tags {JSON} NOT NULL,
            commit_message TEXT,
            created_by TEXT NOT NULL,
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            UNIQUE (project_id, name, version)
        );
        CREATE INDEX prompts_updated ON prompts (project_id, updated_at);
        CREATE INDEX observations_prompt ON observations (project_id, prompt_id)
        """,
    )


def m0004_models(conn: Conn) -> None:
    """Custom model prices per project; what priced each observation, and its tokens."""
    ddl(
        conn,
        """
        CREATE TABLE models (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL,
            model_name TEXT NOT NULL,
            match_pattern TEXT NOT NULL,
            start_date {TS},
            unit TEXT,
            tokenizer_id TEXT,
            tokenizer_config {JSON},
            pricing_tiers {JSON} NOT NULL,
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL
        );
        CREATE INDEX models_project ON models (project_id, created_at);
        ALTER TABLE observations ADD COLUMN cost_info {JSON};
        ALTER TABLE observations ADD COLUMN usage_input BIGINT;
        ALTER TABLE observations ADD COLUMN usage_output BIGINT;
        ALTER TABLE observations ADD COLUMN usage_total BIGINT
        """,
    )


def m0005_accounts(conn: Conn) -> None:
    """Dashboard accounts: users (argon2 hashes), roles per project, login sessions."""
    ddl(
        conn,
        """
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            name TEXT,
            password_hash TEXT NOT NULL,
            is_admin {BOOL} NOT NULL,
            must_change_password {BOOL} NOT NULL,
            created_at {TS} NOT NULL,
            last_login_at {TS}
        );
        CREATE TABLE memberships (
            user_id TEXT NOT NULL REFERENCES users(id),
            project_id TEXT NOT NULL REFERENCES projects(id),
            role TEXT NOT NULL,
            created_at {TS} NOT NULL,
            PRIMARY KEY (user_id, project_id)
        );
        CREATE INDEX memberships_project ON memberships (project_id);
        CREATE TABLE ui_sessions (
            token_hash TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id),
            csrf_token TEXT NOT NULL,
            created_at {TS} NOT NULL,
            expires_at {TS} NOT NULL
        );
        CREATE INDEX ui_sessions_user ON ui_sessions (user_id)
        """,
    )


def m0006_rollups(conn: Conn) -> None:
    """Hourly rollups for the metrics (``lanterna.store.rollups``). They are built
    from the traces already stored by 0007 (which adds the columns the build writes)."""
    ddl(
        conn,
        """
        CREATE TABLE rollup_traces (
            project_id TEXT NOT NULL,
            hour TEXT NOT NULL,
            environment TEXT NOT NULL,
            latency_bucket INTEGER NOT NULL,
            traces BIGINT NOT NULL,
            errors BIGINT NOT NULL,
            latency_sum {FLOAT} NOT NULL,
            PRIMARY KEY (project_id, hour, environment, latency_bucket)
        );
        CREATE TABLE rollup_models (
            project_id TEXT NOT NULL,
            hour TEXT NOT NULL,
            environment TEXT NOT NULL,
            model TEXT NOT NULL,
            observations BIGINT NOT NULL,
            cost {FLOAT} NOT NULL,
            input_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            total_tokens BIGINT NOT NULL,
            PRIMARY KEY (project_id, hour, environment, model)
        );
        CREATE TABLE trace_totals (
            project_id TEXT NOT NULL,
            trace_id TEXT NOT NULL,
            timestamp {TS} NOT NULL,
            environment TEXT NOT NULL,
            user_id TEXT,
            session_id TEXT,
            observations BIGINT NOT NULL,
            cost {FLOAT} NOT NULL,
            tokens BIGINT NOT NULL,
            PRIMARY KEY (project_id, trace_id)
        );
        CREATE INDEX trace_totals_time ON trace_totals
            (project_id, timestamp, environment, user_id, session_id, observations, cost, tokens);
        CREATE INDEX trace_totals_user ON trace_totals
            (project_id, user_id, timestamp, environment, observations, cost, tokens);
        CREATE INDEX trace_totals_session ON trace_totals
            (project_id, session_id, timestamp, environment, observations, cost, tokens)
        """,
    )


def m0007_trace_totals_latency(conn: Conn) -> None:
    """Each trace's latency and error flag in ``trace_totals``. Clears the rollups:
    0012, which replaced their tables, builds them again (this step used to)."""
    ddl(
        conn,
        """
        ALTER TABLE trace_totals ADD COLUMN latency {FLOAT};
        ALTER TABLE trace_totals ADD COLUMN error INTEGER NOT NULL DEFAULT 0;
        DELETE FROM trace_totals;
        DELETE FROM rollup_traces;
        DELETE FROM rollup_models
        """,
    )


def m0008_write_light_indexes(conn: Conn) -> None:
    """Drop the two ``trace_totals`` indexes with random keys (user, session), whose
    upkeep cost about 0.6 WAL pages per ingested observation: top users and sessions
    read ``trace_totals_time``.

    ``observations_prompt`` (by prompt id, which no query filters on) becomes a partial
    index by prompt name, the column the prompt metrics and the ``promptName`` filter
    use: observations without a prompt are not in it at all.
    """
    ddl(
        conn,
        """
        DROP INDEX trace_totals_user;
        DROP INDEX trace_totals_session;
        DROP INDEX observations_prompt;
        CREATE INDEX observations_prompt_name ON observations
            (project_id, prompt_name, start_time) WHERE prompt_name IS NOT NULL
        """,
    )


def m0009_score_configs(conn: Conn) -> None:
    """Score configs per project (data type, range, categories), listed newest first."""
    ddl(
        conn,
        """
        CREATE TABLE score_configs (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            data_type TEXT NOT NULL,
            is_archived {BOOL} NOT NULL,
            min_value {FLOAT},
            max_value {FLOAT},
            categories {JSON},
            description TEXT,
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE INDEX score_configs_created ON score_configs (project_id, created_at, id)
        """,
    )


def m0010_login_throttle(conn: Conn) -> None:
    """Login throttling shared by every server process: failure counters per client
    address, per (account, address) and per account; devices that logged in before;
    lockout events shown to the account's owner."""
    ddl(
        conn,
        """
        CREATE TABLE login_failures (
            key TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            first_at {TS} NOT NULL,
            last_at {TS} NOT NULL
        );
        CREATE TABLE login_devices (
            token_hash TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id),
            created_at {TS} NOT NULL
        );
        CREATE INDEX login_devices_user ON login_devices (user_id);
        CREATE TABLE login_events (
            id TEXT PRIMARY KEY,
            at {TS} NOT NULL,
            email TEXT NOT NULL,
            client TEXT NOT NULL,
            scope TEXT NOT NULL,
            failures INTEGER NOT NULL,
            until_at {TS} NOT NULL
        );
        CREATE INDEX login_events_email ON login_events (email, at)
        """,
    )


def m0011_dashboards(conn: Conn) -> None:
    """Custom dashboards and their widgets, per project; which dashboard is a project's
    default (recorded once, so a deleted default dashboard is not created again)."""
    ddl(
        conn,
        """
        CREATE TABLE dashboard_widgets (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            description TEXT NOT NULL,
            view TEXT NOT NULL,
            dimensions {JSON} NOT NULL,
            metrics {JSON} NOT NULL,
            filters {JSON} NOT NULL,
            chart_type TEXT NOT NULL,
            chart_config {JSON} NOT NULL,
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE INDEX dashboard_widgets_updated ON dashboard_widgets (project_id, updated_at);
        CREATE TABLE dashboards (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            description TEXT NOT NULL,
            definition {JSON} NOT NULL,
            filters {JSON} NOT NULL,
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE INDEX dashboards_updated ON dashboards (project_id, updated_at);
        CREATE TABLE default_dashboards (
            project_id TEXT PRIMARY KEY,
            dashboard_id TEXT NOT NULL,
            created_at {TS} NOT NULL
        )
        """,
    )


def m0012_wide_rollups(conn: Conn) -> None:
    """The rollups widened to what dashboards and metrics queries group by: trace name,
    observation name, model, user, latency and time-to-first-token histograms, numeric
    scores per name (``lanterna.store.rollups``). Replaces ``rollup_traces`` and ``rollup_models``
    and builds every rollup from the stored traces."""
    ddl(
        conn,
        """
        DROP TABLE rollup_traces;
        DROP TABLE rollup_models;
        DELETE FROM trace_totals;
        ALTER TABLE trace_totals ADD COLUMN name TEXT;
        CREATE TABLE rollup_trace_hours (
            project_id TEXT NOT NULL,
            hour TEXT NOT NULL,
            environment TEXT NOT NULL,
            trace_name TEXT NOT NULL,
            latency_bucket INTEGER NOT NULL,
            traces BIGINT NOT NULL,
            errors BIGINT NOT NULL,
            latency_sum {FLOAT} NOT NULL,
            PRIMARY KEY (project_id, hour, environment, trace_name, latency_bucket)
        ) {CLUSTERED};
        CREATE TABLE rollup_observation_hours (
            project_id TEXT NOT NULL,
            hour TEXT NOT NULL,
            environment TEXT NOT NULL,
            trace_name TEXT NOT NULL,
            name TEXT NOT NULL,
            model TEXT NOT NULL,
            observations BIGINT NOT NULL,
            errors BIGINT NOT NULL,
            cost {FLOAT} NOT NULL,
            input_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            total_tokens BIGINT NOT NULL,
            PRIMARY KEY (project_id, hour, environment, trace_name, name, model)
        ) {CLUSTERED};
        CREATE TABLE rollup_observation_buckets (
            project_id TEXT NOT NULL,
            hour TEXT NOT NULL,
            environment TEXT NOT NULL,
            trace_name TEXT NOT NULL,
            name TEXT NOT NULL,
            model TEXT NOT NULL,
            measure TEXT NOT NULL,
            bucket INTEGER NOT NULL,
            observations BIGINT NOT NULL,
            seconds {FLOAT} NOT NULL,
            PRIMARY KEY (project_id, hour, environment, trace_name, name, model, measure, bucket)
        ) {CLUSTERED};
        CREATE TABLE rollup_user_hours (
            project_id TEXT NOT NULL,
            hour TEXT NOT NULL,
            environment TEXT NOT NULL,
            user_id TEXT NOT NULL,
            traces BIGINT NOT NULL,
            observed_traces BIGINT NOT NULL,
            errors BIGINT NOT NULL,
            observations BIGINT NOT NULL,
            cost {FLOAT} NOT NULL,
            input_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            total_tokens BIGINT NOT NULL,
            PRIMARY KEY (project_id, hour, environment, user_id)
        ) {CLUSTERED};
        CREATE TABLE rollup_model_traces (
            project_id TEXT NOT NULL,
            hour TEXT NOT NULL,
            environment TEXT NOT NULL,
            trace_name TEXT NOT NULL,
            model TEXT NOT NULL,
            traces BIGINT NOT NULL,
            PRIMARY KEY (project_id, hour, environment, trace_name, model)
        ) {CLUSTERED};
        CREATE TABLE rollup_score_hours (
            project_id TEXT NOT NULL,
            hour TEXT NOT NULL,
            environment TEXT NOT NULL,
            name TEXT NOT NULL,
            data_type TEXT NOT NULL,
            scores BIGINT NOT NULL,
            value_sum {FLOAT} NOT NULL,
            PRIMARY KEY (project_id, hour, environment, name, data_type)
        ) {CLUSTERED}
        """,
    )
    backfill(conn)


def m0013_budgets(conn: Conn) -> None:
    """Cost budgets per project (for the project, a user, a session or a tag) and the
    crossings of their soft threshold and hard limit, one per budget, period and level
    (the key keeps a crossing from being recorded, and notified, twice)."""
    ddl(
        conn,
        """
        CREATE TABLE budgets (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            scope TEXT NOT NULL,
            scope_value TEXT,
            period TEXT NOT NULL,
            limit_usd {FLOAT} NOT NULL,
            soft_percent {FLOAT},
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE TABLE budget_events (
            project_id TEXT NOT NULL,
            budget_id TEXT NOT NULL,
            period_start TEXT NOT NULL,
            level TEXT NOT NULL,
            spent_usd {FLOAT} NOT NULL,
            limit_usd {FLOAT} NOT NULL,
            at {TS} NOT NULL,
            PRIMARY KEY (project_id, budget_id, period_start, level)
        )
        """,
    )


def m0014_trace_search(conn: Conn) -> None:
    """An index for the trace list's text search (a substring of the input or output,
    any case): ``Dialect.search_index`` (SQLite FTS5 trigrams, PostgreSQL pg_trgm),
    built from the traces already stored. Without it (PostgreSQL without pg_trgm) the
    search reads every trace, as before."""
    if conn.dialect.name == "postgresql" and not pg_trgm(conn):
        return
    for statement in conn.dialect.search_index():
        conn.raw.execute(statement)


def m0015_alert_channels(conn: Conn) -> None:
    """Alert channels per project: kind (webhook, slack, email), settings as JSON, and
    their secrets sealed by the server (``alerts/secretbox.py``), with the names of the
    secret fields that are set (to show them masked without decrypting)."""
    ddl(
        conn,
        """
        CREATE TABLE alert_channels (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            config {JSON} NOT NULL,
            secrets TEXT NOT NULL,
            secret_names {JSON} NOT NULL,
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        )
        """,
    )


def m0016_alert_rules(conn: Conn) -> None:
    """Alert rules with their evaluation state and lease (``store/alerts.py``), and the
    alert history."""
    ddl(
        conn,
        """
        CREATE TABLE alert_rules (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            description TEXT NOT NULL,
            metric TEXT NOT NULL,
            score_name TEXT,
            filters {JSON} NOT NULL,
            comparator TEXT NOT NULL,
            threshold {FLOAT},
            mode TEXT NOT NULL,
            baseline TEXT,
            factor {FLOAT},
            window_s INTEGER NOT NULL,
            interval_s INTEGER NOT NULL,
            min_samples INTEGER NOT NULL,
            cooldown_s INTEGER NOT NULL,
            renotify_s INTEGER NOT NULL,
            notify_resolved {BOOL} NOT NULL,
            channel_ids {JSON} NOT NULL,
            enabled {BOOL} NOT NULL,
            status TEXT NOT NULL,
            last_value {FLOAT},
            last_threshold {FLOAT},
            last_samples INTEGER,
            last_eval_at {TS},
            firing_since {TS},
            notified_at {TS},
            next_eval_at {TS},
            lease_owner TEXT,
            lease_until {TS},
            created_at {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE INDEX alert_rules_due ON alert_rules (next_eval_at);
        CREATE TABLE alert_events (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            rule_id TEXT NOT NULL,
            at {TS} NOT NULL,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            value {FLOAT},
            threshold {FLOAT},
            channel_id TEXT,
            message TEXT NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE INDEX alert_events_rule ON alert_events (project_id, rule_id, at)
        """,
    )


def m0017_budget_channels(conn: Conn) -> None:
    """The channels a budget notifies (``channel_ids``, a JSON array of channel ids, as a
    rule's), and the source of each alert history entry (``rule`` or ``budget``: a
    budget's entries carry its id as ``rule_id``)."""
    ddl(
        conn,
        """
        ALTER TABLE budgets ADD COLUMN channel_ids {JSON} NOT NULL DEFAULT '[]';
        ALTER TABLE alert_events ADD COLUMN source TEXT NOT NULL DEFAULT 'rule'
        """,
    )


MIGRATIONS: list[tuple[str, Callable[[Conn], None]]] = [
    ("0001_core", m0001_core),
    ("0002_read_indexes", m0002_read_indexes),
    ("0003_prompts", m0003_prompts),
    ("0004_models", m0004_models),
    ("0005_accounts", m0005_accounts),
    ("0006_rollups", m0006_rollups),
    ("0007_trace_totals_latency", m0007_trace_totals_latency),
    ("0008_write_light_indexes", m0008_write_light_indexes),
    ("0009_score_configs", m0009_score_configs),
    ("0010_login_throttle", m0010_login_throttle),
    ("0011_dashboards", m0011_dashboards),
    ("0012_wide_rollups", m0012_wide_rollups),
    ("0013_budgets", m0013_budgets),
    ("0014_trace_search", m0014_trace_search),
    ("0015_alert_channels", m0015_alert_channels),
    ("0016_alert_rules", m0016_alert_rules),
    ("0017_budget_channels", m0017_budget_channels),
]
