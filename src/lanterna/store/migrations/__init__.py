"""Schema migrations: an ordered list, applied names recorded in ``schema_migrations``.

Each migration is a function of a connection; it runs in its own transaction. The SQL
is written once with ``{TS}`` (timestamp), ``{JSON}``, ``{BOOL}``, ``{FLOAT}`` and
``{CLUSTERED}`` slots that each dialect fills in (``sql.ddl``). Migrations up to 0017
live in ``released.py``; every later one is a module of this package named
``mNNNN_what.py`` with a function ``up(conn)``, found by its name, so that two changes
adding migrations touch no shared list. Never edit a released migration: add a new one.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable

from ...timeutil import now
from ..db import Conn, Database
from .released import MIGRATIONS as RELEASED

_MODULE = re.compile(r"^m(\d{4}_\w+)$")


def _discovered() -> list[tuple[str, Callable[[Conn], None]]]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        match = _MODULE.match(info.name)
        if match:
            module = importlib.import_module(f"{__name__}.{info.name}")
            found.append((match.group(1), module.up))
    return found


def _all() -> list[tuple[str, Callable[[Conn], None]]]:
    steps = sorted(RELEASED + _discovered(), key=lambda step: step[0])
    numbers = [name[:4] for name, _ in steps]
    clash = sorted({n for n in numbers if numbers.count(n) > 1})
    if clash:
        raise RuntimeError(f"two migrations share the number {', '.join(clash)}")
    return steps


#: Every migration, in the order they apply.
MIGRATIONS: list[tuple[str, Callable[[Conn], None]]] = _all()


def applied(conn: Conn) -> list[str]:
    """Names of the migrations already applied, in order."""
    conn.raw.execute(
        conn.dialect.sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            f"(name TEXT PRIMARY KEY, applied_at {conn.dialect.column_types['TS']} NOT NULL)"
        )
    )
    return [r["name"] for r in conn.all("SELECT name FROM schema_migrations ORDER BY name")]


def migrate(db: Database) -> list[str]:
    """Apply every pending migration; return the names applied now."""
    conn = db.connect_writer()
    done: list[str] = []
    try:
        lock = db.dialect.migration_lock()
        if lock is not None:
            # One migrator at a time across processes (replicas starting together).
            conn.raw.execute(lock)
        have = set(applied(conn))
        for name, step in MIGRATIONS:
            if name in have:
                continue
            with conn.transaction():
                step(conn)
                conn.run(
                    "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                    (name, db.dialect.ts(now())),
                )
            done.append(name)
    finally:
        conn.raw.close()
    return done
