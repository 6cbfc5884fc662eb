"""LLM connections, evaluators (versioned), evaluation rules with the worker's cursor
and lease, and the record of evaluation runs.

Secrets arrive here sealed (``server`` seals them with the server key): this module
never sees an LLM key in clear. A rule's lease works like an alert rule's
(``store.alerts``): :func:`claim_rule` takes it in one conditional ``UPDATE``, so of
several workers exactly one evaluates a rule at a time; :func:`advance_rule` moves the
cursor on only for the lease's holder.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..timeutil import now
from . import event_rows
from .db import Conn
from .filters import Column, Condition, compile_conditions
from .observations import TRACE_JOIN, observation_columns
from .traces import trace_columns

_CONNECTION = (
    "project_id, id, provider, adapter, secret_sealed, display_secret_key, base_url,"
    " custom_models, with_default_models, extra_headers_sealed, extra_header_keys, config,"
    " created_at, updated_at"
)
_EVALUATOR = (
    "project_id, id, version, name, type, prompt, output_definition, model_config, mapping,"
    " config, created_at, updated_at"
)
_RULE = (
    "project_id, id, name, evaluator_id, target, enabled, sampling, filter, mapping,"
    " cursor_at, cursor_id, lease_owner, lease_until, created_at, updated_at"
)
_RUN = (
    "project_id, id, rule_id, evaluator_id, object_type, object_id, status, score_id,"
    " judge_trace_id, error, created_at"
)


def _decode(
    conn: Conn, row: dict[str, Any] | None, json_cols: Sequence[str]
) -> dict[str, Any] | None:
    if row is None:
        return None
    out = dict(row)
    for col in json_cols:
        out[col] = conn.dialect.json_out(out[col])
    return out


# --- LLM connections -------------------------------------------------------------------

_CONNECTION_JSON = ("custom_models", "extra_header_keys", "config")


def connection_by_provider(conn: Conn, project_id: str, provider: str) -> dict[str, Any] | None:
    """The project's connection named ``provider`` (sealed secrets included), or None."""
    row = conn.one(
        f"SELECT {_CONNECTION} FROM llm_connections WHERE project_id = ? AND provider = ?",
        (project_id, provider),
    )
    out = _decode(conn, row, _CONNECTION_JSON)
    if out is not None:
        out["with_default_models"] = bool(out["with_default_models"])
    return out


def upsert_connection(
    conn: Conn, project_id: str, connection_id: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """Create the connection ``fields["provider"]`` or overwrite it (keeping its id:
    ``connection_id`` is used only when it is new); return the row."""
    d = conn.dialect
    stamp = d.ts(now())
    existing = connection_by_provider(conn, project_id, fields["provider"])
    values = (
        fields["adapter"], fields["secret_sealed"], fields["display_secret_key"],
        fields["base_url"], d.json(fields["custom_models"]), fields["with_default_models"],
        fields["extra_headers_sealed"], d.json(fields["extra_header_keys"]),
        d.json(fields["config"]),
    )  # fmt: skip
    if existing is None:
        conn.run(
            f"INSERT INTO llm_connections ({_CONNECTION})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (project_id, connection_id, fields["provider"], *values, stamp, stamp),
        )
    else:
        conn.run(
            "UPDATE llm_connections SET adapter = ?, secret_sealed = ?, display_secret_key = ?,"
            " base_url = ?, custom_models = ?, with_default_models = ?,"
            " extra_headers_sealed = ?, extra_header_keys = ?, config = ?, updated_at = ?"
            " WHERE project_id = ? AND id = ?",
            (*values, stamp, project_id, existing["id"]),
        )
    row = connection_by_provider(conn, project_id, fields["provider"])
    assert row is not None
    return row


def page_connections(
    conn: Conn, project_id: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the project's connections (by provider) and how many there are."""
    rows = conn.all(
        f"SELECT {_CONNECTION} FROM llm_connections WHERE project_id = ?"
        " ORDER BY provider LIMIT ? OFFSET ?",
        (project_id, limit, offset),
    )
    total = conn.scalar("SELECT COUNT(*) FROM llm_connections WHERE project_id = ?", (project_id,))
    out = []
    for r in rows:
        row = _decode(conn, r, _CONNECTION_JSON)
        assert row is not None
        row["with_default_models"] = bool(row["with_default_models"])
        out.append(row)
    return out, int(total or 0)


def delete_connection(conn: Conn, project_id: str, connection_id: str) -> bool:
    """Delete a connection by id; False when there was none."""
    return (
        conn.run(
            "DELETE FROM llm_connections WHERE project_id = ? AND id = ?",
            (project_id, connection_id),
        )
        > 0
    )


# --- evaluators ------------------------------------------------------------------------

_EVALUATOR_JSON = ("output_definition", "model_config", "mapping", "config")
_LATEST = (
    "version = (SELECT MAX(e2.version) FROM evaluators e2"
    " WHERE e2.project_id = evaluators.project_id AND e2.id = evaluators.id)"
)


def create_evaluator(conn: Conn, project_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Store an evaluator (fields already checked): a new family, or the next version of
    the family of that name (same id). Return the stored version."""
    d = conn.dialect
    last = conn.one(
        "SELECT id, version FROM evaluators WHERE project_id = ? AND name = ?"
        " ORDER BY version DESC LIMIT 1",
        (project_id, fields["name"]),
    )
    evaluator_id = str(uuid.uuid4()) if last is None else last["id"]
    version = 1 if last is None else int(last["version"]) + 1
    stamp = d.ts(now())
    conn.run(
        f"INSERT INTO evaluators ({_EVALUATOR}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            project_id, evaluator_id, version, fields["name"], fields["type"], fields["prompt"],
            d.json(fields["output_definition"]), d.json(fields["model_config"]),
            d.json(fields["mapping"]), d.json(fields["config"]), stamp, stamp,
        ),
    )  # fmt: skip
    row = get_evaluator(conn, project_id, evaluator_id)
    assert row is not None
    return row


def get_evaluator(conn: Conn, project_id: str, evaluator_id: str) -> dict[str, Any] | None:
    """The latest version of an evaluator family, or None."""
    row = conn.one(
        f"SELECT {_EVALUATOR} FROM evaluators WHERE project_id = ? AND id = ? AND {_LATEST}",
        (project_id, evaluator_id),
    )
    return _decode(conn, row, _EVALUATOR_JSON)


def evaluator_by_name(conn: Conn, project_id: str, name: str) -> dict[str, Any] | None:
    """The latest version of the evaluator named ``name``, or None."""
    row = conn.one(
        f"SELECT {_EVALUATOR} FROM evaluators WHERE project_id = ? AND name = ?"
        " ORDER BY version DESC LIMIT 1",
        (project_id, name),
    )
    return _decode(conn, row, _EVALUATOR_JSON)


def page_evaluators(
    conn: Conn, project_id: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the latest version of each evaluator (by name) and how many there are."""
    rows = conn.all(
        f"SELECT {_EVALUATOR} FROM evaluators WHERE project_id = ? AND {_LATEST}"
        " ORDER BY name LIMIT ? OFFSET ?",
        (project_id, limit, offset),
    )
    total = conn.scalar(
        "SELECT COUNT(DISTINCT id) FROM evaluators WHERE project_id = ?", (project_id,)
    )
    return [r for row in rows if (r := _decode(conn, row, _EVALUATOR_JSON))], int(total or 0)


def rule_counts(conn: Conn, project_id: str) -> dict[str, int]:
    """How many rules use each evaluator id."""
    rows = conn.all(
        "SELECT evaluator_id, COUNT(*) AS n FROM evaluation_rules WHERE project_id = ?"
        " GROUP BY evaluator_id",
        (project_id,),
    )
    return {r["evaluator_id"]: int(r["n"]) for r in rows}


def delete_evaluator(conn: Conn, project_id: str, evaluator_id: str) -> bool:
    """Delete every version of an evaluator; False when there was none."""
    removed = conn.run(
        "DELETE FROM evaluators WHERE project_id = ? AND id = ?", (project_id, evaluator_id)
    )
    return removed > 0


# --- rules -----------------------------------------------------------------------------

_RULE_JSON = ("filter", "mapping")


def _rule(conn: Conn, row: dict[str, Any] | None) -> dict[str, Any] | None:
    out = _decode(conn, row, _RULE_JSON)
    if out is not None:
        out["enabled"] = bool(out["enabled"])
        out["sampling"] = float(out["sampling"])
    return out


def check_trace_filter(conn: Conn, conditions: Sequence[Condition]) -> None:
    """Raise :class:`~lanterna.store.filters.FilterError` when ``conditions`` are not a
    valid trace-list filter."""
    compile_conditions(conditions, trace_columns(conn.dialect), conn.dialect, resource="traces")


#: The observation columns an ``observation`` rule's filter may name (Langfuse's list
#: for that target, plus ``model``); the tool-call columns are evaluated in Python.
OBSERVATION_RULE_COLUMNS = (
    "type", "name", "environment", "level", "version", "model", "traceName", "userId",
    "sessionId", "tags", "metadata", "isRootObservation", "parentObservationId",
)  # fmt: skip


def observation_rule_columns(conn: Conn) -> dict[str, Column]:
    """The whitelist an ``observation`` rule's filter compiles against."""
    every = observation_columns(conn.dialect)
    return {name: every[name] for name in OBSERVATION_RULE_COLUMNS}


def check_observation_filter(conn: Conn, conditions: Sequence[Condition]) -> None:
    """Raise :class:`~lanterna.store.filters.FilterError` when ``conditions`` are not a
    valid ``observation`` rule filter (the SQL columns of it)."""
    compile_conditions(
        conditions, observation_rule_columns(conn), conn.dialect, resource="observation rules"
    )


def create_rule(conn: Conn, project_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Store a rule (fields checked); it looks at traces that arrive from now on."""
    d = conn.dialect
    rule_id = str(uuid.uuid4())
    at = now()
    stamp = d.ts(at)
    conn.run(
        f"INSERT INTO evaluation_rules ({_RULE})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            project_id, rule_id, fields["name"], fields["evaluator_id"], fields["target"],
            fields["enabled"], fields["sampling"], d.json(fields["filter"]),
            d.json(fields["mapping"]), stamp, "", None, None, stamp, stamp,
        ),
    )  # fmt: skip
    row = get_rule(conn, project_id, rule_id)
    assert row is not None
    return row


def get_rule(conn: Conn, project_id: str, rule_id: str) -> dict[str, Any] | None:
    """One rule of the project, or None."""
    row = conn.one(
        f"SELECT {_RULE} FROM evaluation_rules WHERE project_id = ? AND id = ?",
        (project_id, rule_id),
    )
    return _rule(conn, row)


def page_rules(
    conn: Conn, project_id: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the project's rules (newest first) and how many there are."""
    rows = conn.all(
        f"SELECT {_RULE} FROM evaluation_rules WHERE project_id = ?"
        " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        (project_id, limit, offset),
    )
    total = conn.scalar("SELECT COUNT(*) FROM evaluation_rules WHERE project_id = ?", (project_id,))
    return [r for row in rows if (r := _rule(conn, row))], int(total or 0)


def update_rule(
    conn: Conn, project_id: str, rule_id: str, fields: dict[str, Any]
) -> dict[str, Any] | None:
    """Overwrite the named fields of a rule (``name``, ``evaluator_id``, ``enabled``,
    ``sampling``, ``filter``, ``mapping``); the row, or None when there is none."""
    d = conn.dialect
    sets, values = [], []
    for name, value in fields.items():
        sets.append(f"{name} = ?")
        values.append(d.json(value) if name in _RULE_JSON else value)
    sets.append("updated_at = ?")
    values.append(d.ts(now()))
    changed = conn.run(
        f"UPDATE evaluation_rules SET {', '.join(sets)} WHERE project_id = ? AND id = ?",
        (*values, project_id, rule_id),
    )
    return get_rule(conn, project_id, rule_id) if changed else None


def delete_rule(conn: Conn, project_id: str, rule_id: str) -> bool:
    """Delete a rule; False when there was none."""
    return (
        conn.run(
            "DELETE FROM evaluation_rules WHERE project_id = ? AND id = ?", (project_id, rule_id)
        )
        > 0
    )


def enabled_rules(conn: Conn, at: datetime) -> list[dict[str, Any]]:
    """Every project's enabled rules not leased past ``at``."""
    rows = conn.all(
        f"SELECT {_RULE} FROM evaluation_rules WHERE enabled = ?"
        " AND (lease_until IS NULL OR lease_until <= ?) ORDER BY project_id, created_at, id",
        (True, conn.dialect.ts(at)),
    )
    return [r for row in rows if (r := _rule(conn, row))]


def claim_rule(
    conn: Conn, project_id: str, rule_id: str, owner: str, at: datetime, until: datetime
) -> bool:
    """Take the rule's lease for ``owner`` until ``until`` unless another holds it; True
    when taken (one conditional update: one winner)."""
    d = conn.dialect
    return bool(
        conn.run(
            "UPDATE evaluation_rules SET lease_owner = ?, lease_until = ?"
            " WHERE project_id = ? AND id = ? AND enabled = ?"
            " AND (lease_until IS NULL OR lease_until <= ?)",
            (owner, d.ts(until), project_id, rule_id, True, d.ts(at)),
        )
    )


def advance_rule(
    conn: Conn,
    project_id: str,
    rule_id: str,
    owner: str,
    cursor: tuple[datetime, str] | None,
    runs: Sequence[dict[str, Any]],
) -> bool:
    """For the lease's ``owner``: move the rule's cursor to ``cursor`` (the last trace
    looked at; None: unchanged), record ``runs`` and release the lease. False (nothing
    written) when ``owner`` no longer holds it."""
    d = conn.dialect
    if cursor is None:
        held = conn.run(
            "UPDATE evaluation_rules SET lease_owner = NULL, lease_until = NULL"
            " WHERE project_id = ? AND id = ? AND lease_owner = ?",
            (project_id, rule_id, owner),
        )
    else:
        held = conn.run(
            "UPDATE evaluation_rules SET cursor_at = ?, cursor_id = ?, lease_owner = NULL,"
            " lease_until = NULL WHERE project_id = ? AND id = ? AND lease_owner = ?",
            (d.ts(cursor[0]), cursor[1], project_id, rule_id, owner),
        )
    if not held:
        return False
    add_runs(conn, project_id, runs)
    return True


def new_traces(
    conn: Conn,
    project_id: str,
    conditions: Sequence[Condition],
    after: tuple[datetime, str],
    *,
    until: datetime,
    limit: int,
    events: Conn | None = None,
) -> tuple[list[dict[str, Any]], tuple[datetime, str] | None]:
    """Traces that arrived after ``after`` (``(created_at, id)``) and by ``until``,
    oldest first, at most ``limit`` looked at: those matching ``conditions`` (with
    input, output, metadata), and the cursor past the last one looked at (None when
    none arrived). ``until`` lies a little in the past, so that a batch stamped before
    it commits is not skipped. ``events``: where the traces are (the store's
    ``events_conn``; ``conn`` by default)."""
    d = conn.dialect
    conn = events or conn
    ids, cursor = _arrived(conn, "traces", "created_at", project_id, after, until, limit)
    if cursor is None:
        return [], None
    compiled = compile_conditions(
        conditions, trace_columns(conn.dialect), conn.dialect, resource="traces"
    )
    marks = ", ".join("?" for _ in ids)
    rows = conn.all(
        "SELECT t.id, t.name, t.environment, t.timestamp, t.input, t.output, t.metadata,"
        f" t.created_at FROM traces t WHERE t.project_id = ? AND t.id IN ({marks})"
        f" AND {compiled.where()} ORDER BY t.created_at, t.id",
        [project_id, *ids, *compiled.params],
    )
    for row in rows:
        for col in ("input", "output", "metadata"):
            row[col] = d.json_out(row[col])
    return rows, cursor


def new_observations(
    conn: Conn,
    project_id: str,
    conditions: Sequence[Condition],
    after: tuple[datetime, str],
    *,
    until: datetime,
    limit: int,
    events: Conn | None = None,
) -> tuple[list[dict[str, Any]], tuple[datetime, str] | None]:
    """Observations that arrived after ``after`` (``(created_at, id)``: when the server
    first stored them) and by ``until``, oldest first, at most ``limit`` looked at:
    those matching ``conditions`` (over :func:`observation_rule_columns`), with what an
    evaluator reads (input, output, metadata, type, name, model, environment), and the
    cursor past the last one looked at (None when none arrived). ``events``: where the
    observations are (``conn`` by default)."""
    d = conn.dialect
    conn = events or conn
    ids, cursor = _arrived(conn, "observations", "created_at", project_id, after, until, limit)
    if cursor is None:
        return [], None
    compiled = compile_conditions(
        conditions, observation_rule_columns(conn), conn.dialect, resource="observation rules"
    )
    join = TRACE_JOIN if "trace" in compiled.joins else ""
    marks = ", ".join("?" for _ in ids)
    rows = conn.all(
        "SELECT o.id, o.trace_id, o.type, o.name, o.model, o.level, o.environment,"
        f" o.input, o.output, o.metadata, o.created_at FROM observations o {join}"
        f" WHERE o.project_id = ? AND o.id IN ({marks}) AND {compiled.where()}"
        " ORDER BY o.created_at, o.id",
        [project_id, *ids, *compiled.params],
    )
    for row in rows:
        for col in ("input", "output", "metadata"):
            row[col] = d.json_out(row[col])
        row["environment"] = row["environment"] or "default"
    return rows, cursor


def _arrived(
    conn: Conn,
    table: str,
    column: str,
    project_id: str,
    after: tuple[datetime, str],
    until: datetime,
    limit: int,
) -> tuple[list[str], tuple[datetime, str] | None]:
    """Ids of ``table``'s rows whose arrival ``column`` lies after ``after`` (``(time,
    id)``) and by ``until``, oldest first, at most ``limit``, and the cursor past the
    last (None when none arrived)."""
    d = conn.dialect
    seen = conn.all(
        f"SELECT id, {column} AS at FROM {table} WHERE project_id = ?"
        f" AND ({column} > ? OR ({column} = ? AND id > ?)) AND {column} <= ?"
        f" ORDER BY {column}, id LIMIT ?",
        (project_id, d.ts(after[0]), d.ts(after[0]), after[1], d.ts(until), limit),
    )
    if not seen:
        return [], None
    cursor_at = d.ts_parse(seen[-1]["at"])
    assert cursor_at is not None
    return [r["id"] for r in seen], (cursor_at, seen[-1]["id"])


def new_run_items(
    conn: Conn,
    project_id: str,
    datasets: tuple[str, Sequence[str]] | None,
    after: tuple[datetime, str],
    *,
    until: datetime,
    limit: int,
    events: Conn | None = None,
) -> tuple[list[dict[str, Any]], tuple[datetime, str] | None]:
    """Dataset run items that arrived after ``after`` (``(updated_at, id)``: when the
    server stored them) and by ``until``, oldest first, at most ``limit`` looked at:
    those of the datasets ``datasets`` allows (``("any of", ids)`` or ``("none of",
    ids)``; None: every dataset), each with what an evaluator reads (the linked
    observation's input, output and metadata, else the trace's; the trace's
    environment; the item's expected output and metadata; traces and observations read
    on ``events``, ``conn`` by default), and the cursor past the last one looked at (None
    when none arrived)."""
    d = conn.dialect
    ids, cursor = _arrived(conn, "dataset_run_items", "updated_at", project_id, after, until, limit)
    if cursor is None:
        return [], None
    where = f"ri.project_id = ? AND ri.id IN ({', '.join('?' for _ in ids)})"
    params: list[Any] = [project_id, *ids]
    if datasets is not None:
        operator, wanted = datasets
        negate = "NOT " if operator == "none of" else ""
        if wanted:
            where += f" AND r.dataset_id {negate}IN ({', '.join('?' for _ in wanted)})"
            params.extend(wanted)
        elif not negate:
            where += " AND 1 = 0"
    rows = conn.all(
        "SELECT ri.id, ri.trace_id, ri.observation_id, ri.run_id, r.dataset_id,"
        " ri.dataset_item_id, i.expected_output, i.metadata AS item_metadata"
        " FROM dataset_run_items ri"
        " JOIN dataset_runs r ON r.project_id = ri.project_id AND r.id = ri.run_id"
        " LEFT JOIN dataset_items i ON i.project_id = ri.project_id AND i.id = ri.dataset_item_id"
        f" WHERE {where} ORDER BY ri.updated_at, ri.id",
        params,
    )
    ev = events or conn
    read = ("input", "output", "metadata")
    traces = event_rows.by_id(
        ev, "traces", project_id, (r["trace_id"] for r in rows), (*read, "environment")
    )
    spans = event_rows.by_id(
        ev, "observations", project_id, (r["observation_id"] for r in rows), read
    )
    for row in rows:
        trace = traces.get(row["trace_id"]) or {}
        span = spans.get(row["observation_id"]) or {}
        row["environment"] = trace.get("environment")
        for col in read:
            row[f"trace_{col}"], row[f"obs_{col}"] = trace.get(col), span.get(col)
    out = []
    for row in rows:
        own = "obs" if row["observation_id"] else "trace"
        out.append({
            "id": row["id"], "trace_id": row["trace_id"],
            "observation_id": row["observation_id"], "run_id": row["run_id"],
            "dataset_id": row["dataset_id"], "dataset_item_id": row["dataset_item_id"],
            "environment": row["environment"] or "default",
            **{col: d.json_out(row[f"{own}_{col}"]) for col in ("input", "output", "metadata")},
            "expected_output": d.json_out(row["expected_output"]),
            "experiment_item_metadata": d.json_out(row["item_metadata"]),
        })  # fmt: skip
    return out, cursor


# --- runs ------------------------------------------------------------------------------


def add_runs(conn: Conn, project_id: str, runs: Sequence[dict[str, Any]]) -> None:
    """Record evaluation outcomes: dicts with ``rule_id``, ``evaluator_id``,
    ``object_type``, ``object_id``, ``status`` (``ok``/``error``), ``score_id``,
    ``judge_trace_id``, ``error``."""
    stamp = conn.dialect.ts(now())
    for run in runs:
        conn.run(
            f"INSERT INTO evaluation_runs ({_RUN}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                project_id, str(uuid.uuid4()), run["rule_id"], run["evaluator_id"],
                run["object_type"], run["object_id"], run["status"], run.get("score_id"),
                run.get("judge_trace_id"), run.get("error"), stamp,
            ),
        )  # fmt: skip


def recent_runs(
    conn: Conn, project_id: str, *, rule_id: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The latest runs of the project (or of one rule), newest first."""
    where, params = "project_id = ?", [project_id]
    if rule_id is not None:
        where += " AND rule_id = ?"
        params.append(rule_id)
    return conn.all(
        f"SELECT {_RUN} FROM evaluation_runs WHERE {where} ORDER BY created_at DESC, id DESC"
        " LIMIT ?",
        [*params, limit],
    )


def run_counts(conn: Conn, project_id: str) -> dict[str, dict[str, int]]:
    """Per rule id: how many runs ended ``ok`` and ``error``."""
    rows = conn.all(
        "SELECT rule_id, status, COUNT(*) AS n FROM evaluation_runs WHERE project_id = ?"
        " GROUP BY rule_id, status",
        (project_id,),
    )
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r["rule_id"] or "", {"ok": 0, "error": 0})[r["status"]] = int(r["n"])
    return out
