"""The field tables (``lanterna.schema``) agree with the migrated database and with what
the API does: every field is a column of the kind the table says, every column is a
field, and every field the table marks filterable can be filtered on."""

from __future__ import annotations

import json

import pytest

from helpers import event, ingest
from lanterna.schema import ENTITIES, Entity
from lanterna.schema import field as kinds
from lanterna.store.db import Database
from lanterna.store.migrations import migrate

# The column type each value kind is stored in, by the dialect's slot for it
# (store/migrations.py writes {TS}, {JSON}, {BOOL}, {FLOAT}; the rest are plain SQL).
_SLOT = {
    kinds.TEXT: "TEXT",
    kinds.ID: "TEXT",
    kinds.VERSION: "TEXT",
    kinds.ENUM: "TEXT",
    kinds.TIMESTAMP: "TS",
    kinds.JSON: "JSON",
    kinds.OBJECT: "JSON",
    kinds.STRINGS: "JSON",
    kinds.BOOL: "BOOL",
    kinds.NUMBER: "FLOAT",
}
# How each backend reports the type it made of a column.
_PG_TYPES = {
    "TEXT": "text",
    "TIMESTAMPTZ": "timestamp with time zone",
    "JSONB": "jsonb",
    "BOOLEAN": "boolean",
    "DOUBLE PRECISION": "double precision",
}


def _types(db: Database, table: str) -> dict[str, str]:
    with db.read() as conn:
        if db.is_sqlite:
            return {r["name"]: r["type"].upper() for r in conn.all(f"PRAGMA table_info({table})")}
        rows = conn.all(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?",
            (table,),
        )
        return {r["column_name"]: r["data_type"] for r in rows}


def _expected(db: Database, kind: str) -> set[str]:
    if kind == kinds.INT:
        return {"INTEGER", "BIGINT"} if db.is_sqlite else {"integer", "bigint"}
    slot = _SLOT[kind]
    sql = db.dialect.column_types.get(slot, slot)
    return {sql} if db.is_sqlite else {_PG_TYPES[sql]}


@pytest.mark.parametrize("entity", list(ENTITIES.values()), ids=list(ENTITIES))
def test_every_field_is_a_column_of_its_kind_and_every_column_a_field(
    db_url: str, entity: Entity
) -> None:
    db = Database(db_url)
    try:
        migrate(db)
        types = _types(db, entity.table)
        assert set(types) == {f.column for f in entity.fields}
        for f in entity.fields:
            assert types[f.column] in _expected(db, f.kind), (f.column, f.kind)
    finally:
        db.close()


_PROBE = {"string": "x", "datetime": "2024-05-01T10:00:00Z", "number": 1, "boolean": True}
_TYPE = {"string": "string", "datetime": "datetime", "number": "number", "boolean": "boolean"}
_ROUTES = {
    "trace": "/api/public/traces",
    "observation": "/api/public/observations",
    "score": "/api/public/v2/scores",
}


def _condition(name: str, filter_kind: str) -> dict[str, object]:
    if filter_kind == "array":
        return {"type": "arrayOptions", "column": name, "operator": "any of", "value": ["x"]}
    if filter_kind == "object":
        return {"type": "stringObject", "column": name, "key": "k", "operator": "=", "value": "x"}
    return {
        "type": _TYPE[filter_kind],
        "column": name,
        "operator": "=" if filter_kind != "datetime" else ">=",
        "value": _PROBE[filter_kind],
    }


@pytest.mark.parametrize("entity", list(ENTITIES.values()), ids=list(ENTITIES))
def test_every_filterable_field_filters_the_list(api, entity: Entity) -> None:
    ingest(
        api,
        event("trace-create", {"id": "t1", "name": "x"}),
        event("span-create", {"id": "o1", "traceId": "t1", "name": "x"}),
        event("score-create", {"id": "s1", "traceId": "t1", "name": "x", "value": 1}),
    )
    assert entity.filters
    for name, (_, filter_kind) in entity.filters.items():
        query = json.dumps([_condition(name, filter_kind)])
        response = api.get(_ROUTES[entity.name], params={"filter": query})
        assert response.status_code == 200, (name, response.text)


@pytest.mark.parametrize("route", list(_ROUTES.values()))
def test_a_column_outside_the_table_is_refused(api, route: str) -> None:
    query = json.dumps([{"type": "string", "column": "nope", "operator": "=", "value": "x"}])
    response = api.get(route, params={"filter": query})
    assert response.status_code == 400
    assert "nope" in response.text


def test_alert_rule_filters_derive_from_the_field_tables() -> None:
    """Each filter an alert rule may name is one line naming a filterable field; its
    column in both metrics views and its condition kind follow from that field, and a
    line naming a field the tables lack (or one not filterable) fails at import."""
    from lanterna.analytics import alert_metrics as am
    from lanterna.analytics.query import VIEWS
    from lanterna.schema import OBSERVATION, TRACE
    from lanterna.store.dialect import SQLITE

    assert set(am.FILTERS) == set(am.FILTER_FIELDS)
    for name, (entity, column) in am.FILTER_FIELDS.items():
        for index, view in enumerate(("observations", "scores-numeric")):
            assert am.FILTERS[name][index] in VIEWS[view].filter_columns(SQLITE, 2), (name, view)
        f = (entity or OBSERVATION)[column]
        assert f.filter, name
        assert am.FILTERS[name][2] == kinds.FILTER_KIND[f.kind]
    assert am.FILTERS["tag"][2] == "array" and am.FILTERS["metadata"][2] == "object"
    with pytest.raises(KeyError):
        am._view_column("observations", TRACE, "no_such_column")
    with pytest.raises(ValueError, match="not filterable"):
        unfilterable = next(f.column for f in TRACE.fields if not f.filter)
        am._view_column("observations", TRACE, unfilterable)
