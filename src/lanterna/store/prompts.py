"""Prompt versions: create, fetch by version or label, list, relabel, delete, metrics.

Writes run inside the writer, so two creations of the same name are serialised and get
consecutive versions; the UNIQUE (project_id, name, version) constraint guards the rest.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..prompts import references
from ..prompts.validate import LATEST, PRODUCTION, NewPrompt, PromptError
from ..timeutil import now
from .db import Conn

_COLUMNS = (
    "id, project_id, name, version, type, prompt, config, labels, tags, commit_message,"
    " created_by, created_at, updated_at"
)


def _decode(conn: Conn, row: dict[str, Any]) -> dict[str, Any]:
    d = conn.dialect
    for key in ("prompt", "config", "labels", "tags"):
        row[key] = d.json_out(row[key])
    return row


def _versions(conn: Conn, project_id: str, name: str) -> list[dict[str, Any]]:
    rows = conn.all(
        f"SELECT {_COLUMNS} FROM prompts WHERE project_id = ? AND name = ? ORDER BY version",
        (project_id, name),
    )
    return [_decode(conn, r) for r in rows]


def _take_labels(conn: Conn, versions: list[dict[str, Any]], labels: set[str], keep: int) -> None:
    """Remove ``labels`` from every version but ``keep`` (labels are unique per name)."""
    stamp = conn.dialect.ts(now())
    for row in versions:
        if row["version"] == keep:
            continue
        remaining = [x for x in row["labels"] if x not in labels]
        if remaining != row["labels"]:
            conn.run(
                "UPDATE prompts SET labels = ?, updated_at = ? WHERE id = ?",
                (conn.dialect.json(remaining), stamp, row["id"]),
            )
            row["labels"] = remaining


def create(conn: Conn, project_id: str, new: NewPrompt, created_by: str = "API") -> dict[str, Any]:
    """Store ``new`` as the next version of its name; return the stored row."""
    versions = _versions(conn, project_id, new.name)
    if versions and versions[-1]["type"] != new.type:
        raise PromptError(
            f"prompt {new.name!r} is a {versions[-1]['type']} prompt; a new version"
            f" cannot be {new.type}"
        )
    version = versions[-1]["version"] + 1 if versions else 1
    # The first version of a new name, sent with no labels, is served by default: the
    # seed guide's create_prompt(...) then get_prompt(name) works as written. Later
    # versions never take production unless asked to.
    initial = [PRODUCTION] if not versions and not new.labels else new.labels
    labels = list(dict.fromkeys([*initial, LATEST]))
    tags = new.tags if new.tags is not None else (versions[-1]["tags"] if versions else [])
    d = conn.dialect
    stamp = now()
    row = {
        "id": str(uuid.uuid4()),
        "project_id": project_id,
        "name": new.name,
        "version": version,
        "type": new.type,
        "prompt": new.prompt,
        "config": new.config,
        "labels": labels,
        "tags": tags,
        "commit_message": new.commit_message,
        "created_by": created_by,
        "created_at": stamp,
        "updated_at": stamp,
    }
    _take_labels(conn, versions, set(labels), keep=version)
    if new.tags is not None:
        conn.run(
            "UPDATE prompts SET tags = ? WHERE project_id = ? AND name = ?",
            (d.json(tags), project_id, new.name),
        )
    conn.run(
        f"INSERT INTO prompts ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row["id"],
            project_id,
            new.name,
            version,
            new.type,
            d.json(new.prompt),
            d.json(new.config),
            d.json(labels),
            d.json(tags),
            new.commit_message,
            created_by,
            d.ts(stamp),
            d.ts(stamp),
        ),
    )
    _check_resolvable(conn, project_id, new.name, version, new.prompt)
    return row


def _check_resolvable(conn: Conn, project_id: str, name: str, version: int, prompt: Any) -> None:
    """Refuse (PromptError, a 400 or the UI's form error; the caller's write rolls back)
    a version whose references, as the labels now stand, lead back to its own name, to
    a chat prompt, or nest too deep: it could never be served resolved. A reference to
    a prompt not made yet is taken (it may be made later). Any cycle that a new version
    or a moved label makes passes through that version, so checking it is enough."""
    try:
        references.resolve(
            prompt,
            lambda n, v, lbl: get(conn, project_id, n, version=v, label=lbl),
            root=(name, version),
            missing_ok=True,
        )
    except references.PromptReferenceError as exc:
        raise PromptError(str(exc)) from None


def get(
    conn: Conn, project_id: str, name: str, *, version: int | None = None, label: str | None = None
) -> dict[str, Any] | None:
    """One version by number, or the version holding ``label`` (default ``production``)."""
    if version is not None:
        row = conn.one(
            f"SELECT {_COLUMNS} FROM prompts WHERE project_id = ? AND name = ? AND version = ?",
            (project_id, name, version),
        )
    else:
        row = conn.one(
            f"SELECT {_COLUMNS} FROM prompts WHERE project_id = ? AND name = ? AND "
            + conn.dialect.json_array_contains("labels")
            + " ORDER BY version DESC LIMIT 1",
            (project_id, name, label or "production"),
        )
    return None if row is None else _decode(conn, row)


def add_labels(
    conn: Conn, project_id: str, name: str, version: int, labels: list[str]
) -> dict[str, Any] | None:
    """Add ``labels`` to one version and take them off every other; None if no version."""
    versions = _versions(conn, project_id, name)
    target = next((v for v in versions if v["version"] == version), None)
    if target is None:
        return None
    merged = list(dict.fromkeys([*target["labels"], *labels]))
    _take_labels(conn, versions, set(labels), keep=version)
    stamp = now()
    conn.run(
        "UPDATE prompts SET labels = ?, updated_at = ? WHERE id = ?",
        (conn.dialect.json(merged), conn.dialect.ts(stamp), target["id"]),
    )
    target["labels"] = merged
    target["updated_at"] = stamp
    _check_resolvable(conn, project_id, name, version, target["prompt"])
    return target


def delete(
    conn: Conn, project_id: str, name: str, *, version: int | None = None, label: str | None = None
) -> int:
    """Delete all versions of ``name``, or the one with ``version`` / ``label``."""
    if version is None and label is None:
        return conn.run("DELETE FROM prompts WHERE project_id = ? AND name = ?", (project_id, name))
    row = get(conn, project_id, name, version=version, label=label)
    if row is None:
        return 0
    deleted = conn.run("DELETE FROM prompts WHERE id = ?", (row["id"],))
    if LATEST in row["labels"]:
        # The newest remaining version becomes "latest" again.
        newest = conn.one(
            "SELECT id, labels FROM prompts WHERE project_id = ? AND name = ?"
            " ORDER BY version DESC LIMIT 1",
            (project_id, name),
        )
        if newest is not None:
            labels = conn.dialect.json_out(newest["labels"]) or []
            if LATEST not in labels:
                conn.run(
                    "UPDATE prompts SET labels = ? WHERE id = ?",
                    (conn.dialect.json([*labels, LATEST]), newest["id"]),
                )
    return deleted


def list_names(
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
) -> tuple[list[list[dict[str, Any]]], int]:
    """The page of prompt names (most recently updated first), each as its version rows
    (oldest first), and the total number of names."""
    where = ["project_id = ?"]
    params: list[Any] = [project_id]
    d = conn.dialect
    if name is not None:
        where.append("name = ?")
        params.append(name)
    if label is not None:
        where.append(d.json_array_contains("labels"))
        params.append(label)
    if tag is not None:
        where.append(d.json_array_contains("tags"))
        params.append(tag)
    if from_updated is not None:
        where.append("updated_at >= ?")
        params.append(d.ts(from_updated))
    if to_updated is not None:
        where.append("updated_at < ?")
        params.append(d.ts(to_updated))
    clause = " AND ".join(where)
    total = int(conn.scalar(f"SELECT COUNT(DISTINCT name) FROM prompts WHERE {clause}", params))
    names = [
        r["name"]
        for r in conn.all(
            f"SELECT name, MAX(updated_at) AS last FROM prompts WHERE {clause}"
            " GROUP BY name ORDER BY last DESC, name LIMIT ? OFFSET ?",
            [*params, limit, (page - 1) * limit],
        )
    ]
    if not names:
        return [], total
    marks = ", ".join("?" * len(names))
    rows = conn.all(
        f"SELECT {_COLUMNS} FROM prompts WHERE {clause} AND name IN ({marks}) ORDER BY version",
        [*params, *names],
    )
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["name"]].append(_decode(conn, row))
    return [grouped[prompt_name] for prompt_name in names], total


@dataclass(slots=True)
class VersionStats:
    """What the generations linked to one prompt version add up to."""

    version: int
    labels: list[str]
    generations: int = 0
    traces: int = 0
    avg_latency: float | None = None
    avg_cost: float | None = None
    total_cost: float = 0.0
    usage: dict[str, float] = field(default_factory=dict)
    #: Score name -> (average, count), names in order.
    scores: dict[str, tuple[float | None, int]] = field(default_factory=dict)


def version_metrics(
    conn: Conn,
    project_id: str,
    name: str,
    *,
    from_ts: datetime | None = None,
    to_ts: datetime | None = None,
    events: Conn | None = None,
) -> list[VersionStats]:
    """Per version of ``name``: generations, latency, cost, tokens and average scores
    (observations and scores read on ``events``, the store's ``events_conn``; ``conn``
    by default)."""
    d = conn.dialect
    ev = events or conn
    where = ["o.project_id = ?", "o.prompt_name = ?"]
    params: list[Any] = [project_id, name]
    if from_ts is not None:
        where.append("o.start_time >= ?")
        params.append(ev.dialect.ts(from_ts))
    if to_ts is not None:
        where.append("o.start_time < ?")
        params.append(ev.dialect.ts(to_ts))
    clause = " AND ".join(where)
    rows = ev.all(
        "SELECT o.prompt_version AS version, o.trace_id, o.id, o.start_time, o.end_time,"
        f" o.total_cost, o.usage_details FROM observations o WHERE {clause}",
        params,
    )
    stats: dict[int, dict[str, Any]] = {}
    for row in rows:
        s = stats.setdefault(
            row["version"],
            {"n": 0, "lat": [], "cost": [], "usage": defaultdict(int), "traces": set()},
        )
        s["n"] += 1
        s["traces"].add(row["trace_id"])
        start, end = d.ts_parse(row["start_time"]), d.ts_parse(row["end_time"])
        if start is not None and end is not None:
            s["lat"].append((end - start).total_seconds())
        if row["total_cost"] is not None:
            s["cost"].append(float(row["total_cost"]))
        for key, value in (d.json_out(row["usage_details"]) or {}).items():
            if isinstance(value, (int, float)):
                s["usage"][key] += value
    scores: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    if rows:
        score_rows = ev.all(
            "SELECT o.prompt_version AS version, s.id, s.name, s.value"
            " FROM scores s JOIN observations o ON o.project_id = s.project_id"
            " AND o.trace_id = s.trace_id"
            f" WHERE {clause} AND s.data_type IN ('NUMERIC', 'BOOLEAN')"
            " AND (s.observation_id IS NULL OR s.observation_id = o.id)",
            params,
        )
        seen: set[tuple[Any, ...]] = set()
        for row in score_rows:
            # A trace-level score counts once per version even if the trace holds
            # several generations of that version.
            key = (row["version"], row["id"])
            if key in seen:
                continue
            seen.add(key)
            scores[row["version"]][row["name"]].append(float(row["value"]))
    labels = {v["version"]: v["labels"] for v in _versions(conn, project_id, name)}
    out = []
    for version in sorted(set(stats) | set(labels)):
        st = stats.get(version)
        n = st["n"] if st else 0
        out.append(
            VersionStats(
                version,
                labels.get(version, []),
                generations=n,
                traces=len(st["traces"]) if st else 0,
                avg_latency=_mean(st["lat"]) if st else None,
                avg_cost=_mean(st["cost"]) if st else None,
                total_cost=sum(st["cost"]) if st else 0.0,
                usage=dict(st["usage"]) if st else {},
                scores={
                    score_name: (_mean(values), len(values))
                    for score_name, values in sorted(scores.get(version, {}).items())
                },
            )
        )
    return out


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


class PromptLinker:
    """Finds the prompt id for an observation's (prompt name, version); one lookup each."""

    def __init__(self, conn: Conn, project_id: str) -> None:
        self.conn = conn
        self.project_id = project_id
        self._ids: dict[tuple[str, int], str | None] = {}

    def link(self, record: dict[str, Any]) -> None:
        """Set ``record["prompt_id"]`` from its prompt name and version (None if unknown)."""
        name, version = record.get("prompt_name"), record.get("prompt_version")
        if name is None or version is None:
            return
        key = (name, int(version))
        if key not in self._ids:
            self._ids[key] = self.conn.scalar(
                "SELECT id FROM prompts WHERE project_id = ? AND name = ? AND version = ?",
                (self.project_id, name, int(version)),
            )
        record["prompt_id"] = self._ids[key]
