"""The dashboard's dataset views: a dataset with its items and runs (each run with its
item count and mean scores), and runs compared side by side (per item the output and
scores of each run; per score name each run's mean and the delta from the first run).

Plain data, read through the :class:`~lanterna.store.interface.Store`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..store.db import Conn
from ..store.interface import Store

#: Items shown on a dataset's page (newest first).
ITEM_LIMIT = 500
#: Runs shown on a dataset's page (newest first).
RUN_LIMIT = 100


@dataclass
class RunSummary:
    """A run, how many items it linked, and the mean of each numeric score on them
    (trace and observation scores) and on the run itself."""

    run: dict[str, Any]
    item_count: int = 0
    means: dict[str, float] = field(default_factory=dict)
    run_scores: dict[str, Any] = field(default_factory=dict)


@dataclass
class ItemRow:
    """One dataset item across the compared runs: per run id, its output and scores
    (absent when the run did not cover the item)."""

    item: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    traces: dict[str, str] = field(default_factory=dict)


@dataclass
class Comparison:
    """Runs side by side: the rows, the score names, per name each run's mean and the
    delta of each later run from the first."""

    runs: list[RunSummary]
    rows: list[ItemRow]
    names: list[str]
    deltas: dict[str, dict[str, float | None]]


def _value(score: dict[str, Any]) -> Any:
    if score["data_type"] in ("NUMERIC", "BOOLEAN"):
        return score["value"]
    return score["string_value"]


def _mean(values: list[Any]) -> float | None:
    numbers = [float(v) for v in values if isinstance(v, (int, float))]
    return sum(numbers) / len(numbers) if numbers else None


def _collect(
    store: Store, conn: Conn, project_id: str, runs: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]], dict[str, list[Any]]]:
    """The runs' items, the scores by trace id, and the run-level scores by run id."""
    ids = [r["id"] for r in runs]
    items = store.datasets.run_items_of(conn, project_id, ids)
    by_trace: dict[str, list[dict[str, Any]]] = {}
    by_run: dict[str, list[Any]] = {}
    for score in store.datasets.scores_of_runs(conn, project_id, ids):
        if score["trace_id"] is not None:
            by_trace.setdefault(score["trace_id"], []).append(score)
        elif score["dataset_run_id"] is not None:
            by_run.setdefault(score["dataset_run_id"], []).append(score)
    return items, by_trace, by_run


def _summaries(
    runs: list[dict[str, Any]],
    items: list[dict[str, Any]],
    by_trace: dict[str, list[dict[str, Any]]],
    by_run: dict[str, list[Any]],
) -> list[RunSummary]:
    out = []
    for run in runs:
        mine = [i for i in items if i["run_id"] == run["id"]]
        values: dict[str, list[Any]] = {}
        for item in mine:
            for score in by_trace.get(item["trace_id"], []):
                values.setdefault(score["name"], []).append(_value(score))
        means = {n: m for n, v in sorted(values.items()) if (m := _mean(v)) is not None}
        run_scores = {s["name"]: _value(s) for s in by_run.get(run["id"], [])}
        out.append(RunSummary(run, len(mine), means, run_scores))
    return out


def dataset_view(
    store: Store, conn: Conn, project_id: str, dataset_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]], int, list[RunSummary]] | None:
    """A dataset, its newest items (any status) and how many it has, and its runs'
    summaries; None when the dataset is not the project's."""
    dataset = store.datasets.get_dataset(conn, project_id, dataset_id)
    if dataset is None:
        return None
    items, total = store.datasets.page_items(
        conn, project_id, dataset_id=dataset_id, active_only=False, limit=ITEM_LIMIT, offset=0
    )
    runs, _ = store.datasets.page_runs(conn, project_id, dataset_id, RUN_LIMIT, 0)
    run_items, by_trace, by_run = _collect(store, conn, project_id, runs)
    return dataset, items, total, _summaries(runs, run_items, by_trace, by_run)


def compare_runs(
    store: Store, conn: Conn, project_id: str, dataset_id: str, run_ids: list[str]
) -> Comparison | None:
    """The runs (of this dataset, in the order given) side by side over every item they
    cover; None when a run is not the dataset's."""
    runs = []
    for run_id in run_ids:
        run = store.datasets.run_by_id(conn, project_id, run_id)
        if run is None or run["dataset_id"] != dataset_id:
            return None
        runs.append(run)
    items, by_trace, by_run = _collect(store, conn, project_id, runs)
    rows: dict[str, ItemRow] = {}
    for link in items:
        item_id = link["dataset_item_id"]
        row = rows.get(item_id)
        if row is None:
            stored = store.datasets.get_item(conn, project_id, item_id) or {"id": item_id}
            row = rows[item_id] = ItemRow(stored)
        if link["run_id"] in row.outputs:
            continue  # the first link of an item in a run is the one shown
        output = link["trace_output"]
        row.outputs[link["run_id"]] = output if output is not None else link["observation_output"]
        row.traces[link["run_id"]] = link["trace_id"]
        row.scores[link["run_id"]] = {
            s["name"]: _value(s) for s in by_trace.get(link["trace_id"], [])
        }
    summaries = _summaries(runs, items, by_trace, by_run)
    names = sorted({n for s in summaries for n in s.means})
    deltas: dict[str, dict[str, float | None]] = {}
    base = summaries[0] if summaries else None
    for name in names:
        deltas[name] = {}
        for summary in summaries[1:]:
            a = base.means.get(name) if base else None
            b = summary.means.get(name)
            deltas[name][summary.run["id"]] = None if a is None or b is None else b - a
    ordered = sorted(rows.values(), key=lambda r: str(r.item.get("created_at") or ""))
    return Comparison(summaries, ordered, names, deltas)
