"""What each kind of index costs SQLite per ingested observation (no server, no Python
ingestion code): raw multi-row inserts into an observations-shaped table in WAL mode
with ``synchronous=FULL``, committed in groups of 320 rows like the writer's.

    .venv/bin/python bench/sqlite_indexes.py

Prints insert and commit time per row for: the primary key only; plus the trace index
(random keys); plus the time, type, name, environment and prompt indexes (keys that
append); and each one's ratio to the primary-key-only table. Rows carry ~1.7 KB of
input/output, five per trace, ids are random uuids and start times increase, as in
``bench/ingest.py``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
import uuid

ONE = "(" + ", ".join("?" * 11) + ")"
_TRACE = "CREATE INDEX o_trace ON o (project_id, trace_id)"
_APPENDING = [
    "CREATE INDEX o_time ON o (project_id, start_time)",
    "CREATE INDEX o_type ON o (project_id, type, start_time)",
    "CREATE INDEX o_name ON o (project_id, name, start_time)",
    "CREATE INDEX o_env ON o (project_id, environment, start_time)",
    "CREATE INDEX o_prompt ON o (project_id, prompt_id) WHERE prompt_id IS NOT NULL",
]
SETS = {
    "primary key only": [],
    "+ trace index": [_TRACE],
    "+ time, type, name, environment, prompt": [_TRACE, *_APPENDING],
    "+ parent index (lanterna's set)": [
        _TRACE,
        *_APPENDING,
        "CREATE INDEX o_parent ON o (project_id, parent_id)",
    ],
}


def _stamp(k: int, j: int) -> str:
    """Second ``k`` of November 2026 (increasing, like spans sent as they end)."""
    day, hour, minute, second = 1 + k // 86400, k // 3600 % 24, k // 60 % 60, k % 60
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{j:06d}Z"


def _rows(project: str, n: int, t0: int) -> list[tuple[object, ...]]:
    out = []
    names = ("agent", "retrieve", "llm-call", "rerank", "llm-call-2")
    for i in range(n // 5):
        trace, root = str(uuid.uuid4()), str(uuid.uuid4())
        for j in range(5):
            stamp = _stamp(t0 + i, j)
            out.append(
                (project, root if j == 0 else str(uuid.uuid4()), trace, None if j == 0 else root,
                 "SPAN", names[j], stamp, "default", None, "x" * 1000, "y" * 700)
            )  # fmt: skip
    return out


def measure(indexes: list[str], prefill: int, measured: int) -> tuple[float, float]:
    """Insert and commit microseconds per row over ``measured`` groups of 320 rows."""
    path = os.path.join(tempfile.mkdtemp(prefix="lanterna-idx-"), "bench.db")
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "cache_size=-65536"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # lanterna checkpoints in another thread
    conn.execute(
        "CREATE TABLE o (project_id TEXT NOT NULL, id TEXT NOT NULL, trace_id TEXT NOT NULL,"
        " parent_id TEXT, type TEXT, name TEXT, start_time TEXT, environment TEXT,"
        " prompt_id TEXT, input TEXT, output TEXT, PRIMARY KEY (project_id, id))"
    )
    for sql in indexes:
        conn.execute(sql)
    project = uuid.uuid4().hex[:12]
    many = "INSERT INTO o VALUES " + ", ".join([ONE] * 64)

    def group(rows: list[tuple[object, ...]]) -> tuple[float, float]:
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        for k in range(0, len(rows), 64):
            conn.execute(many, [v for row in rows[k : k + 64] for v in row])
        t1 = time.perf_counter()
        conn.execute("COMMIT")
        return t1 - t0, time.perf_counter() - t1

    for g in range(prefill):
        group(_rows(project, 320, g * 64))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    insert = commit = 0.0
    for g in range(measured):
        i, c = group(_rows(project, 320, (prefill + g) * 64))
        insert += i
        commit += c
        if g % 20 == 19:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    conn.close()
    rows = measured * 320
    return 1e6 * insert / rows, 1e6 * commit / rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefill", type=int, default=300, help="groups of 320 rows first")
    parser.add_argument("--groups", type=int, default=100, help="groups of 320 rows measured")
    args = parser.parse_args()
    base = None
    print(f"SQLite {sqlite3.sqlite_version}, {args.prefill * 320:,} rows, then per row:")
    for label, indexes in SETS.items():
        insert, commit = measure(indexes, args.prefill, args.groups)
        total = insert + commit
        base = base or total
        print(
            f"  {label:42s} insert {insert:5.1f} µs  commit {commit:5.1f} µs"
            f"  total {total:5.1f} µs  ({total / base:.2f}x primary key only)"
        )


if __name__ == "__main__":
    main()
