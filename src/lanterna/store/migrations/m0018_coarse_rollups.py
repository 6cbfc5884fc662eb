"""0018: a coarse rollup level and rollups timed by the observation's own hour
(:mod:`lanterna.store.rollups`), built set-based from what is stored.

- ``rollup_days`` (UTC day of the trace, environment, latency bucket):
  ``rollup_trace_hours`` by day, without the trace name; ``rollup_model_days`` (day,
  environment, model): observations, errors, cost, tokens and traces per model,
  without the names. What the dashboard, the daily metrics and the query planner read
  for whole days when a query names no trace or observation name (the hours at either
  end from the hourly tables).
- ``rollup_observation_facets`` (observation hour, observation environment, facet,
  value): observations, errors, cost and tokens (and how many have a cost and a
  total token count, so that a sum over none is null as in SQL) by model, by
  observation name and by trace name (each observation once per facet), and
  ``rollup_observation_facet_days``, the same by UTC day;
  ``rollup_observation_latency`` (observation hour, environment, model, measure,
  bucket): latency and time-to-first-token histograms. They replace
  ``rollup_observation_buckets`` (keyed by the trace's hour and names: about one row
  per observation, and nothing read it).

The coarse tables are summed from the fine ones; the observation-timed ones in one
pass over the observations each (no Python per row), so that the migration of a
10 M observation database takes minutes, not hours.
"""

from __future__ import annotations

from ..db import Conn
from ..rollups import FACETS, MIN_LATENCY, K
from .sql import ddl

_SUMS = (
    "COUNT(*) AS observations,"
    " SUM(CASE WHEN o.level = 'ERROR' THEN 1 ELSE 0 END) AS errors,"
    " COALESCE(SUM(o.total_cost), 0) AS cost, COALESCE(SUM(o.usage_input), 0) AS input_tokens,"
    " COALESCE(SUM(o.usage_output), 0) AS output_tokens,"
    " COALESCE(SUM(o.usage_total), 0) AS total_tokens, COUNT(o.total_cost) AS costed,"
    " COUNT(o.usage_total) AS counted"
)
_VALUES = "observations, errors, cost, input_tokens, output_tokens, total_tokens"


def up(conn: Conn) -> None:
    """Create the tables and build them from the stored rows."""
    ddl(
        conn,
        """
        DROP TABLE IF EXISTS rollup_observation_buckets;
        CREATE TABLE rollup_days (
            project_id TEXT NOT NULL,
            day TEXT NOT NULL,
            environment TEXT NOT NULL,
            latency_bucket INTEGER NOT NULL,
            traces BIGINT NOT NULL,
            errors BIGINT NOT NULL,
            latency_sum {FLOAT} NOT NULL,
            PRIMARY KEY (project_id, day, environment, latency_bucket)
        ) {CLUSTERED};
        CREATE TABLE rollup_model_days (
            project_id TEXT NOT NULL,
            day TEXT NOT NULL,
            environment TEXT NOT NULL,
            model TEXT NOT NULL,
            traces BIGINT NOT NULL,
            observations BIGINT NOT NULL,
            errors BIGINT NOT NULL,
            cost {FLOAT} NOT NULL,
            input_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            total_tokens BIGINT NOT NULL,
            PRIMARY KEY (project_id, day, environment, model)
        ) {CLUSTERED};
        CREATE TABLE rollup_observation_facets (
            project_id TEXT NOT NULL,
            hour TEXT NOT NULL,
            environment TEXT NOT NULL,
            facet TEXT NOT NULL,
            value TEXT NOT NULL,
            observations BIGINT NOT NULL,
            errors BIGINT NOT NULL,
            cost {FLOAT} NOT NULL,
            input_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            total_tokens BIGINT NOT NULL,
            costed BIGINT NOT NULL,
            counted BIGINT NOT NULL,
            PRIMARY KEY (project_id, facet, hour, environment, value)
        ) {CLUSTERED};
        CREATE TABLE rollup_observation_facet_days (
            project_id TEXT NOT NULL,
            day TEXT NOT NULL,
            environment TEXT NOT NULL,
            facet TEXT NOT NULL,
            value TEXT NOT NULL,
            observations BIGINT NOT NULL,
            errors BIGINT NOT NULL,
            cost {FLOAT} NOT NULL,
            input_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            total_tokens BIGINT NOT NULL,
            costed BIGINT NOT NULL,
            counted BIGINT NOT NULL,
            PRIMARY KEY (project_id, facet, day, environment, value)
        ) {CLUSTERED};
        CREATE TABLE rollup_observation_latency (
            project_id TEXT NOT NULL,
            hour TEXT NOT NULL,
            environment TEXT NOT NULL,
            model TEXT NOT NULL,
            measure TEXT NOT NULL,
            bucket INTEGER NOT NULL,
            observations BIGINT NOT NULL,
            seconds {FLOAT} NOT NULL,
            PRIMARY KEY (project_id, measure, hour, environment, model, bucket)
        ) {CLUSTERED}
        """,
    )
    build(conn)


def build(conn: Conn) -> None:
    """Fill the five (empty) tables from the fine rollups and the observations."""
    d = conn.dialect
    conn.run(
        "INSERT INTO rollup_days (project_id, day, environment, latency_bucket, traces,"
        " errors, latency_sum) SELECT project_id, substr(hour, 1, 10), environment,"
        " latency_bucket, SUM(traces), SUM(errors), SUM(latency_sum) FROM rollup_trace_hours"
        " GROUP BY project_id, substr(hour, 1, 10), environment, latency_bucket"
    )
    conn.run(
        f"INSERT INTO rollup_model_days (project_id, day, environment, model, traces, {_VALUES})"
        " SELECT project_id, substr(hour, 1, 10), environment, model, SUM(traces),"
        " SUM(observations),"
        " SUM(errors), SUM(cost), SUM(input_tokens), SUM(output_tokens), SUM(total_tokens)"
        " FROM (SELECT project_id, hour, environment, model, 0 AS traces, observations,"
        " errors, cost, input_tokens, output_tokens, total_tokens FROM rollup_observation_hours"
        " UNION ALL SELECT project_id, hour, environment, model, traces, 0, 0, 0.0, 0, 0, 0"
        " FROM rollup_model_traces) parts"
        " GROUP BY project_id, substr(hour, 1, 10), environment, model"
    )
    hour = d.utc_hour("o.start_time")
    # One pass over the observations (with their trace's name) into a temporary table
    # of every (hour, environment, trace name, name, model); the facets sum it.
    conn.run("DROP TABLE IF EXISTS rollup_facet_parts")
    conn.run(
        "CREATE TEMPORARY TABLE rollup_facet_parts AS"
        f" SELECT o.project_id AS project_id, {hour} AS hour, o.environment AS environment,"
        " COALESCE(t.name, '') AS trace_name, COALESCE(o.name, '') AS name,"
        f" COALESCE(o.model, '') AS model, {_SUMS} FROM observations o"
        " LEFT JOIN traces t ON t.project_id = o.project_id AND t.id = o.trace_id"
        f" GROUP BY o.project_id, {hour}, o.environment, COALESCE(t.name, ''),"
        " COALESCE(o.name, ''), COALESCE(o.model, '')"
    )
    for facet in FACETS:
        conn.run(
            "INSERT INTO rollup_observation_facets (project_id, hour, environment, facet,"
            f" value, {_VALUES}, costed, counted) SELECT project_id, hour, environment,"
            f" '{facet}', {facet}, SUM(observations), SUM(errors), SUM(cost),"
            " SUM(input_tokens), SUM(output_tokens), SUM(total_tokens), SUM(costed),"
            " SUM(counted) FROM rollup_facet_parts"
            f" GROUP BY project_id, hour, environment, {facet}"
        )
    conn.run("DROP TABLE rollup_facet_parts")
    conn.run(
        "INSERT INTO rollup_observation_facet_days (project_id, day, environment, facet,"
        f" value, {_VALUES}, costed, counted) SELECT project_id, substr(hour, 1, 10),"
        " environment, facet, value, SUM(observations), SUM(errors), SUM(cost),"
        " SUM(input_tokens), SUM(output_tokens), SUM(total_tokens), SUM(costed),"
        " SUM(counted) FROM rollup_observation_facets"
        " GROUP BY project_id, substr(hour, 1, 10), environment, facet, value"
    )
    durations = " UNION ALL ".join(
        f"SELECT o.project_id AS project_id, {hour} AS hour, o.environment AS environment,"
        f" COALESCE(o.model, '') AS model, '{measure}' AS measure,"
        f" {d.seconds_between(f'o.{column}', 'o.start_time')} AS seconds"
        f" FROM observations o WHERE o.{column} IS NOT NULL"
        for measure, column in (("latency", "end_time"), ("ttft", "completion_start_time"))
    )
    bucket = (
        f"CAST(FLOOR(ln(CASE WHEN seconds > {MIN_LATENCY} THEN seconds ELSE {MIN_LATENCY} END)"
        f" * {K}) AS INTEGER)"
    )
    conn.run(
        "INSERT INTO rollup_observation_latency (project_id, hour, environment, model,"
        " measure, bucket, observations, seconds) SELECT project_id, hour, environment,"
        " model, measure, bucket, COUNT(*), SUM(seconds) FROM (SELECT project_id, hour,"
        f" environment, model, measure, {bucket} AS bucket, seconds FROM ({durations}) d) b"
        " GROUP BY project_id, hour, environment, model, measure, bucket"
    )
