"""Building the rollups (:mod:`lanterna.store.rollups`) from what is stored: for a
migration that adds rollup tables, in Python exactly as the write path computes them."""

from __future__ import annotations

from collections import defaultdict

from .db import Conn
from .rollup_write import add
from .rollups import (
    _OBS_COLS,
    _TIMES,
    NUMERIC_SCORES,
    OBSERVATION_TIMED,
    TABLES,
    Contribution,
    contribution,
)


def existing(conn: Conn) -> list[str]:
    """The rollup tables (of :data:`TABLES`) the database has: a migration that builds
    the rollups before a later one adds a table writes the ones there are."""
    if conn.dialect.name == "postgresql":
        sql = "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    have = {r["name"] for r in conn.all(sql)}
    return [t for t in TABLES if t in have]


def backfill(conn: Conn) -> None:
    """Build the rollups of every stored trace in the rollup tables there are
    (:func:`existing`); they and ``trace_totals`` must be empty. In Python, as the
    write path computes them (migration 0012; 0018 builds its tables in SQL)."""
    tables = [t for t in existing(conn) if t != "rollup_score_hours"]
    projects = [
        r["project_id"] for r in conn.all("SELECT DISTINCT project_id FROM traces ORDER BY 1")
    ]
    for project_id in projects:
        ids = [
            r["id"]
            for r in conn.all(
                "SELECT id FROM traces WHERE project_id = ? ORDER BY id", [project_id]
            )
        ]
        total = Contribution()
        for start in range(0, len(ids), 5000):
            part = contribution(conn, project_id, ids[start : start + 5000])
            only = Contribution()  # per-trace rows now; the hourly sums once, below
            only.totals = part.totals
            add(conn, project_id, only, tables=())
            total.update(part)
        add(conn, project_id, total, tables=tables)
    loose = conn.all(  # observations without a stored trace count where timed by them
        f"SELECT o.project_id, {', '.join('o.' + c.strip() for c in _OBS_COLS.split(','))}"
        " FROM observations o WHERE NOT EXISTS (SELECT 1 FROM traces t"
        " WHERE t.project_id = o.project_id AND t.id = o.trace_id)"
    )
    by_project: dict[str, Contribution] = defaultdict(Contribution)
    for o in loose:
        for col in _TIMES:
            o[col] = conn.dialect.ts_parse(o[col])
        by_project[o["project_id"]].add_loose(o)
    timed = [t for t in tables if t in OBSERVATION_TIMED]
    for project_id, part in sorted(by_project.items()):
        add(conn, project_id, part, tables=timed)
    hour = conn.dialect.utc_hour("timestamp")
    conn.run(
        "INSERT INTO rollup_score_hours (project_id, hour, environment, name, data_type,"
        f" scores, value_sum) SELECT project_id, {hour}, environment, name, data_type,"
        " COUNT(*), SUM(value) FROM scores WHERE value IS NOT NULL"
        f" AND data_type IN ({', '.join(repr(t) for t in NUMERIC_SCORES)})"
        f" GROUP BY project_id, {hour}, environment, name, data_type"
    )
