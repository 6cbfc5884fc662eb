"""Migrating an empty database gives the exact schema, on both backends."""

from __future__ import annotations

from lanterna.store.db import Database
from lanterna.store.migrations import MIGRATIONS, applied, migrate

EXPECTED = {
    "organizations": ["id", "name", "created_at"],
    "projects": ["id", "org_id", "name", "retention_days", "metadata", "created_at"],
    "api_keys": [
        "id",
        "project_id",
        "public_key",
        "secret_salt",
        "secret_hash",
        "display_secret",
        "note",
        "created_at",
        "last_used_at",
        "revoked_at",
        "role",
    ],
    "sessions": ["project_id", "id", "environment", "created_at"],
    "score_configs": [
        "project_id",
        "id",
        "name",
        "data_type",
        "is_archived",
        "min_value",
        "max_value",
        "categories",
        "description",
        "created_at",
        "updated_at",
    ],
}


def _columns(db: Database, table: str) -> list[str]:
    with db.read() as conn:
        if db.is_sqlite:
            return [r["name"] for r in conn.all(f"PRAGMA table_info({table})")]
        return [
            r["column_name"]
            for r in conn.all(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = ? ORDER BY ordinal_position",
                (table,),
            )
        ]


def test_empty_database_migrates_to_the_expected_schema(db_url: str):
    db = Database(db_url)
    try:
        migrate(db)
        for table, columns in EXPECTED.items():
            assert _columns(db, table) == columns
        for table in ("traces", "observations", "scores"):
            cols = _columns(db, table)
            assert cols[:2] == ["project_id", "id"]
            assert {"created_at", "updated_at", "environment"} <= set(cols)
        conn = db.connect_writer()
        try:
            assert applied(conn) == [name for name, _ in MIGRATIONS]
        finally:
            conn.raw.close()
        assert migrate(db) == []
    finally:
        db.close()


def test_migrations_apply_in_number_order_and_numbers_are_unique() -> None:
    """Migrations after 0017 are found by module name; their order is their number."""
    names = [name for name, _ in MIGRATIONS]
    assert names == sorted(names)
    assert len({name[:4] for name in names}) == len(names)
    assert names[:2] == ["0001_core", "0002_read_indexes"]
