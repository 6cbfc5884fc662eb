"""Datasets, their items (with every version), runs and run items (contract 4.4).

Bodies are checked above the store (``ingest/datasets.py``); these functions store and
read rows. Every write of an item also records a version row, so the items of a
dataset can be read as they were at a time (``version``); a delete records a version
that hides the item from then on.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..ingest.otlp_experiments import ExperimentLink
from . import event_rows
from .db import Conn

_DATASET = (
    "project_id, id, name, description, metadata, input_schema, expected_output_schema,"
    " created_at, updated_at"
)
_ITEM_FIELDS = (
    "status",
    "input",
    "expected_output",
    "metadata",
    "source_trace_id",
    "source_observation_id",
)
_JSON = ("input", "expected_output", "metadata")
_RUN = "project_id, id, dataset_id, name, description, metadata, created_at, updated_at"
_RUN_ITEM = (
    "project_id, id, run_id, dataset_item_id, trace_id, observation_id, dataset_version,"
    " created_at, updated_at"
)

Row = dict[str, Any]


def _decode(conn: Conn, row: Row | None, columns: Sequence[str]) -> Row | None:
    if row is None:
        return None
    row = dict(row)
    for column in columns:
        if column in row:
            row[column] = conn.dialect.json_out(row[column])
    return row


def _decoded(conn: Conn, rows: list[Row], columns: Sequence[str]) -> list[Row]:
    return [r for r in (_decode(conn, row, columns) for row in rows) if r is not None]


_DATASET_JSON = ("metadata", "input_schema", "expected_output_schema")


def _paged(
    conn: Conn,
    select: str,
    table: str,
    where: tuple[str, str],
    params: tuple[Any, ...],
    order: str,
    limit: int,
    offset: int,
) -> tuple[list[Row], int]:
    """Rows of ``select`` matching ``where`` (its form with the select's alias, and on
    ``table`` alone for the count), in ``order``, and how many match."""
    rows = conn.all(
        f"{select} WHERE {where[0]} ORDER BY {order} LIMIT ? OFFSET ?", (*params, limit, offset)
    )
    total = conn.scalar(f"SELECT COUNT(*) FROM {table} WHERE {where[1]}", params)
    return rows, int(total or 0)


# --- datasets --------------------------------------------------------------------------


def get_dataset(conn: Conn, project_id: str, dataset_id: str) -> Row | None:
    """One dataset by id, or None."""
    row = conn.one(
        f"SELECT {_DATASET} FROM datasets WHERE project_id = ? AND id = ?", (project_id, dataset_id)
    )
    return _decode(conn, row, _DATASET_JSON)


def dataset_by_name(conn: Conn, project_id: str, name: str) -> Row | None:
    """One dataset by name, or None."""
    row = conn.one(
        f"SELECT {_DATASET} FROM datasets WHERE project_id = ? AND name = ?", (project_id, name)
    )
    return _decode(conn, row, _DATASET_JSON)


def upsert_dataset(conn: Conn, project_id: str, fields: dict[str, Any], at: datetime) -> Row:
    """Create the dataset named ``fields["name"]`` or update the fields given; the row."""
    d = conn.dialect
    stored = dataset_by_name(conn, project_id, fields["name"])
    merged = {**(stored or {}), **fields}
    values = (
        merged.get("description"),
        d.json(merged.get("metadata")),
        d.json(merged.get("input_schema")),
        d.json(merged.get("expected_output_schema")),
    )
    if stored is None:
        conn.run(
            f"INSERT INTO datasets ({_DATASET}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (project_id, str(uuid.uuid4()), fields["name"], *values, d.ts(at), d.ts(at)),
        )
    else:
        conn.run(
            "UPDATE datasets SET description = ?, metadata = ?, input_schema = ?,"
            " expected_output_schema = ?, updated_at = ? WHERE project_id = ? AND id = ?",
            (*values, d.ts(at), project_id, stored["id"]),
        )
    row = dataset_by_name(conn, project_id, fields["name"])
    assert row is not None
    return row


def page_datasets(conn: Conn, project_id: str, limit: int, offset: int) -> tuple[list[Row], int]:
    """A page of the project's datasets, newest first, and how many there are."""
    where = ("project_id = ?", "project_id = ?")
    order = "created_at DESC, id DESC"
    rows, total = _paged(
        conn,
        f"SELECT {_DATASET} FROM datasets",
        "datasets",
        where,
        (project_id,),
        order,
        limit,
        offset,
    )
    return _decoded(conn, rows, _DATASET_JSON), total


def dataset_counts(
    conn: Conn, project_id: str, dataset_ids: Sequence[str]
) -> dict[str, tuple[int, int]]:
    """``dataset id -> (active items, runs)`` for these datasets."""
    if not dataset_ids:
        return {}
    marks = ", ".join("?" for _ in dataset_ids)
    out = {i: (0, 0) for i in dataset_ids}
    for row in conn.all(
        f"SELECT dataset_id, COUNT(*) AS n FROM dataset_items WHERE project_id = ?"
        f" AND status = 'ACTIVE' AND dataset_id IN ({marks}) GROUP BY dataset_id",
        (project_id, *dataset_ids),
    ):
        out[row["dataset_id"]] = (int(row["n"]), 0)
    for row in conn.all(
        f"SELECT dataset_id, COUNT(*) AS n FROM dataset_runs WHERE project_id = ?"
        f" AND dataset_id IN ({marks}) GROUP BY dataset_id",
        (project_id, *dataset_ids),
    ):
        out[row["dataset_id"]] = (out[row["dataset_id"]][0], int(row["n"]))
    return out


# --- items -----------------------------------------------------------------------------

_ITEM_SELECT = (
    "SELECT i.project_id, i.id, i.dataset_id, d.name AS dataset_name, i.status, i.input,"
    " i.expected_output, i.metadata, i.source_trace_id, i.source_observation_id,"
    " i.created_at, i.updated_at FROM dataset_items i JOIN datasets d"
    " ON d.project_id = i.project_id AND d.id = i.dataset_id"
)


def get_item(conn: Conn, project_id: str, item_id: str) -> Row | None:
    """One item (with its dataset's name), or None."""
    row = conn.one(f"{_ITEM_SELECT} WHERE i.project_id = ? AND i.id = ?", (project_id, item_id))
    return _decode(conn, row, _JSON)


def put_item(conn: Conn, project_id: str, item: Row, at: datetime) -> Row:
    """Store an item's full state (insert or overwrite ``item["id"]``) and record it as
    a version valid from ``at``; the stored row."""
    d = conn.dialect
    values = [
        item["status"],
        d.json(item.get("input")),
        d.json(item.get("expected_output")),
        d.json(item.get("metadata")),
        item.get("source_trace_id"),
        item.get("source_observation_id"),
    ]
    created = item.get("created_at") or d.ts(at)
    conn.run(
        "INSERT INTO dataset_items (project_id, id, dataset_id, status, input, expected_output,"
        " metadata, source_trace_id, source_observation_id, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project_id, id) DO UPDATE SET"
        + ", ".join(f" {c} = excluded.{c}" for c in (*_ITEM_FIELDS, "updated_at")),
        (project_id, item["id"], item["dataset_id"], *values, created, d.ts(at)),
    )
    _version(conn, project_id, item["id"], item["dataset_id"], values, created, at, False)
    row = get_item(conn, project_id, item["id"])
    assert row is not None
    return row


def _version(
    conn: Conn,
    project_id: str,
    item_id: str,
    dataset_id: str,
    values: list[Any],
    created: Any,
    at: datetime,
    deleted: bool,
) -> None:
    d = conn.dialect
    conn.run(
        "INSERT INTO dataset_item_versions (project_id, item_id, valid_from, dataset_id,"
        " deleted, status, input, expected_output, metadata, source_trace_id,"
        " source_observation_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (project_id, item_id, valid_from) DO UPDATE SET deleted = excluded.deleted,"
        + ", ".join(f" {c} = excluded.{c}" for c in _ITEM_FIELDS),
        (project_id, item_id, d.ts(at), dataset_id, deleted, *values, created),
    )


def items_of_dataset(conn: Conn, project_id: str, dataset_id: str) -> list[Row]:
    """Every item of a dataset (any status), oldest first."""
    rows = conn.all(
        f"{_ITEM_SELECT} WHERE i.project_id = ? AND i.dataset_id = ? ORDER BY i.created_at, i.id",
        (project_id, dataset_id),
    )
    return _decoded(conn, rows, _JSON)


def page_items(
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
) -> tuple[list[Row], int]:
    """A page of items, newest first, and the total. With ``version`` (and a
    ``dataset_id``), the items as they were at that time."""
    d = conn.dialect
    if version is not None:
        assert dataset_id is not None
        base = (
            "SELECT v.project_id, v.item_id AS id, v.dataset_id, ds.name AS dataset_name,"
            " v.status, v.input, v.expected_output, v.metadata, v.source_trace_id,"
            " v.source_observation_id, v.created_at, v.valid_from AS updated_at"
            " FROM dataset_item_versions v JOIN datasets ds"
            " ON ds.project_id = v.project_id AND ds.id = v.dataset_id"
            " WHERE v.project_id = ? AND v.dataset_id = ? AND v.valid_from = ("
            " SELECT MAX(w.valid_from) FROM dataset_item_versions w WHERE"
            " w.project_id = v.project_id AND w.item_id = v.item_id AND w.valid_from <= ?)"
            " AND NOT v.deleted"
        )
        params: list[Any] = [project_id, dataset_id, d.ts(version)]
        alias, key = "v", "v.item_id"
    else:
        base = f"{_ITEM_SELECT} WHERE i.project_id = ?"
        params = [project_id]
        alias, key = "i", "i.id"
        if dataset_id is not None:
            base += " AND i.dataset_id = ?"
            params.append(dataset_id)
    for column, value in (
        ("source_trace_id", source_trace_id),
        ("source_observation_id", source_observation_id),
    ):
        if value is not None:
            base += f" AND {alias}.{column} = ?"
            params.append(value)
    if active_only:
        base += f" AND {alias}.status = 'ACTIVE'"
    total = conn.scalar(f"SELECT COUNT(*) FROM ({base}) c", params)
    rows = conn.all(
        f"{base} ORDER BY {alias}.created_at DESC, {key} DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return _decoded(conn, rows, _JSON), int(total or 0)


def delete_item(conn: Conn, project_id: str, item_id: str, at: datetime) -> bool:
    """Delete an item and its run items (recorded as a version); False when missing."""
    item = get_item(conn, project_id, item_id)
    if item is None:
        return False
    conn.run(
        "DELETE FROM dataset_run_items WHERE project_id = ? AND dataset_item_id = ?",
        (project_id, item_id),
    )
    conn.run("DELETE FROM dataset_items WHERE project_id = ? AND id = ?", (project_id, item_id))
    values = [item["status"], None, None, None, None, None]
    _version(conn, project_id, item_id, item["dataset_id"], values, item["created_at"], at, True)
    return True


# --- runs ------------------------------------------------------------------------------

_RUN_SELECT = (
    "SELECT r.project_id, r.id, r.dataset_id, d.name AS dataset_name, r.name, r.description,"
    " r.metadata, r.created_at, r.updated_at FROM dataset_runs r JOIN datasets d"
    " ON d.project_id = r.project_id AND d.id = r.dataset_id"
)


def get_run(conn: Conn, project_id: str, dataset_id: str, name: str) -> Row | None:
    """A dataset's run by name, or None."""
    row = conn.one(
        f"{_RUN_SELECT} WHERE r.project_id = ? AND r.dataset_id = ? AND r.name = ?",
        (project_id, dataset_id, name),
    )
    return _decode(conn, row, ("metadata",))


def run_by_id(conn: Conn, project_id: str, run_id: str) -> Row | None:
    """A run by id, or None."""
    row = conn.one(f"{_RUN_SELECT} WHERE r.project_id = ? AND r.id = ?", (project_id, run_id))
    return _decode(conn, row, ("metadata",))


def ensure_run(
    conn: Conn,
    project_id: str,
    dataset_id: str,
    name: str,
    *,
    description: str | None,
    metadata: Any,
    at: datetime,
    run_id: str | None = None,
) -> Row:
    """The dataset's run ``name``, created now if new; a description or metadata given
    replaces the stored one."""
    d = conn.dialect
    stored = get_run(conn, project_id, dataset_id, name)
    if stored is None:
        conn.run(
            f"INSERT INTO dataset_runs ({_RUN}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                project_id,
                run_id or str(uuid.uuid4()),
                dataset_id,
                name,
                description,
                d.json(metadata),
                d.ts(at),
                d.ts(at),
            ),
        )
    elif description is not None or metadata is not None:
        conn.run(
            "UPDATE dataset_runs SET description = ?, metadata = ?, updated_at = ?"
            " WHERE project_id = ? AND id = ?",
            (
                stored["description"] if description is None else description,
                d.json(stored["metadata"] if metadata is None else metadata),
                d.ts(at),
                project_id,
                stored["id"],
            ),
        )
    row = get_run(conn, project_id, dataset_id, name)
    assert row is not None
    return row


def page_runs(
    conn: Conn, project_id: str, dataset_id: str, limit: int, offset: int
) -> tuple[list[Row], int]:
    """A page of a dataset's runs, newest first, and the total."""
    where = ("r.project_id = ? AND r.dataset_id = ?", "project_id = ? AND dataset_id = ?")
    rows, total = _paged(
        conn,
        _RUN_SELECT,
        "dataset_runs",
        where,
        (project_id, dataset_id),
        "r.created_at DESC, r.id DESC",
        limit,
        offset,
    )
    return _decoded(conn, rows, ("metadata",)), total


def delete_run(conn: Conn, project_id: str, run_id: str) -> bool:
    """Delete a run and its run items; False when missing."""
    conn.run(
        "DELETE FROM dataset_run_items WHERE project_id = ? AND run_id = ?", (project_id, run_id)
    )
    return (
        conn.run("DELETE FROM dataset_runs WHERE project_id = ? AND id = ?", (project_id, run_id))
        > 0
    )


_RUN_ITEM_SELECT = (
    "SELECT ri.project_id, ri.id, ri.run_id, r.name AS run_name, r.dataset_id,"
    " ri.dataset_item_id, ri.trace_id, ri.observation_id, ri.dataset_version,"
    " ri.created_at, ri.updated_at FROM dataset_run_items ri JOIN dataset_runs r"
    " ON r.project_id = ri.project_id AND r.id = ri.run_id"
)


def add_run_item(
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
) -> Row:
    """Link a trace (or an observation of it) to an item in a run; linking the same
    trace and observation again returns the stored link."""
    d = conn.dialect
    where = (
        " WHERE ri.project_id = ? AND ri.run_id = ? AND ri.dataset_item_id = ?"
        " AND ri.trace_id = ? AND ri.observation_id "
    )
    params: list[Any] = [project_id, run_id, item_id, trace_id]
    if observation_id is None:
        where += "IS NULL"
    else:
        where += "= ?"
        params.append(observation_id)
    stored = conn.one(_RUN_ITEM_SELECT + where, params)
    if stored is not None:
        return stored
    new_id = str(uuid.uuid4())
    conn.run(
        f"INSERT INTO dataset_run_items ({_RUN_ITEM}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            project_id,
            new_id,
            run_id,
            item_id,
            trace_id,
            observation_id,
            d.ts(dataset_version),
            d.ts(created_at),
            d.ts(at),
        ),
    )
    row = conn.one(
        f"{_RUN_ITEM_SELECT} WHERE ri.project_id = ? AND ri.id = ?", (project_id, new_id)
    )
    assert row is not None
    return row


def page_run_items(
    conn: Conn, project_id: str, run_id: str, limit: int, offset: int
) -> tuple[list[Row], int]:
    """A page of a run's items, oldest first, and the total."""
    where = ("ri.project_id = ? AND ri.run_id = ?", "project_id = ? AND run_id = ?")
    order = "ri.created_at, ri.id"
    return _paged(
        conn,
        _RUN_ITEM_SELECT,
        "dataset_run_items",
        where,
        (project_id, run_id),
        order,
        limit,
        offset,
    )


def run_items_of(
    conn: Conn, project_id: str, run_ids: Sequence[str], *, events: Conn | None = None
) -> list[Row]:
    """Every item of these runs, with the linked trace's output and name and the linked
    observation's output (read on ``events``, the store's ``events_conn``; ``conn`` by
    default), oldest first."""
    if not run_ids:
        return []
    marks = ", ".join("?" for _ in run_ids)
    rows = conn.all(
        "SELECT ri.id, ri.run_id, ri.dataset_item_id, ri.trace_id, ri.observation_id,"
        " ri.created_at FROM dataset_run_items ri"
        f" WHERE ri.project_id = ? AND ri.run_id IN ({marks}) ORDER BY ri.created_at, ri.id",
        (project_id, *run_ids),
    )
    ev = events or conn
    traces = event_rows.by_id(ev, "traces", project_id, (r["trace_id"] for r in rows), _TRACE)
    spans = event_rows.by_id(
        ev, "observations", project_id, (r["observation_id"] for r in rows), ("output",)
    )
    for r in rows:
        trace = traces.get(r["trace_id"]) or {}
        r["trace_output"], r["trace_name"] = trace.get("output"), trace.get("name")
        r["observation_output"] = (spans.get(r["observation_id"]) or {}).get("output")
    return _decoded(conn, rows, ("trace_output", "observation_output"))


_TRACE = ("output", "name")


def scores_of_runs(
    conn: Conn, project_id: str, run_ids: Sequence[str], *, events: Conn | None = None
) -> list[Row]:
    """The scores on the runs' traces and observations, and those on the runs
    themselves (``dataset_run_id``): plain score rows (read on ``events``)."""
    if not run_ids:
        return []
    marks = ", ".join("?" for _ in run_ids)
    traces = conn.all(
        f"SELECT DISTINCT ri.trace_id FROM dataset_run_items ri"
        f" WHERE ri.project_id = ? AND ri.run_id IN ({marks})",
        (project_id, *run_ids),
    )
    return event_rows.scores_on(
        events or conn, project_id, trace_ids=(r["trace_id"] for r in traces), run_ids=run_ids
    )


def record_experiment_items(
    conn: Conn, project_id: str, links: Sequence[ExperimentLink], at: datetime
) -> int:
    """Store the run items experiment spans record (``ingest/otlp_experiments.py``):
    each run created on first use (its id the experiment id); a link whose dataset or
    item is not the project's is skipped. How many were linked."""
    linked = 0
    for link in links:
        item = get_item(conn, project_id, link.item_id)
        if item is None or item["dataset_id"] != link.dataset_id:
            continue
        run = ensure_run(
            conn,
            project_id,
            link.dataset_id,
            link.run_name,
            description=link.description,
            metadata=link.metadata,
            at=at,
            run_id=link.run_id,
        )
        add_run_item(
            conn,
            project_id,
            run["id"],
            link.item_id,
            link.trace_id,
            link.observation_id,
            dataset_version=link.item_version,
            created_at=link.start,
            at=at,
        )
        linked += 1
    return linked
