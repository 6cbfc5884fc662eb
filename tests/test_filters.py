"""The ``filter`` parameter: parsing, validation, and the SQL it becomes on each backend."""

from __future__ import annotations

import json

import pytest

from helpers import event, ingest, iso
from lanterna.store.dialect import SQLITE
from lanterna.store.filters import (
    Column,
    Condition,
    FilterError,
    compile_conditions,
    merge_conditions,
    parse_filter,
)


def seed(api):
    ingest(
        api,
        event("trace-create", {"id": "a", "name": "Alpha_100%", "timestamp": iso(seconds=1),
                               "tags": ["x", "y"],
                               "metadata": {"plan": "pro", "it's": "quoted", "a.b": "dotted",
                                            "count": 3, "nested": {"k": 1}}}),
        event("trace-create", {"id": "b", "name": "alpha beta", "timestamp": iso(seconds=2),
                               "tags": ["y"], "metadata": {"plan": "free"}}),
        event("trace-create", {"id": "c", "timestamp": iso(seconds=3)}),
    )  # fmt: skip


def matching(api, *conditions):
    response = api.get(
        "/api/public/traces", params={"filter": json.dumps(list(conditions)), "orderBy": "id.asc"}
    )
    assert response.status_code == 200, response.text
    return [t["id"] for t in response.json()["data"]]


def name_filter(operator, value):
    return {"type": "string", "column": "name", "operator": operator, "value": value}


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("=", "alpha beta", ["b"]),
        ("=", "ALPHA BETA", []),
        # Case-sensitive, like Langfuse; % and _ are plain characters, not wildcards.
        ("contains", "lpha", ["a", "b"]),
        ("contains", "Alpha", ["a"]),
        ("contains", "%", ["a"]),
        ("contains", "a_1", ["a"]),
        ("contains", "_", ["a"]),
        ("starts with", "Alpha", ["a"]),
        ("starts with", "A%", []),
        ("ends with", "100%", ["a"]),
        ("ends with", "beta", ["b"]),
        ("ends with", "a much longer suffix than any name", []),
        # A trace without a name does "not contain" anything.
        ("does not contain", "Alpha", ["b", "c"]),
    ],
)
def test_string_operators(api, operator, value, expected):
    seed(api)
    assert matching(api, name_filter(operator, value)) == expected


def test_options_and_arrays(api):
    seed(api)
    opts = {"type": "stringOptions", "column": "id"}
    assert matching(api, {**opts, "operator": "any of", "value": ["a", "c", "zz"]}) == ["a", "c"]
    assert matching(api, {**opts, "operator": "none of", "value": ["a"]}) == ["b", "c"]
    assert matching(api, {**opts, "operator": "any of", "value": []}) == []
    names = {"type": "stringOptions", "column": "name", "operator": "none of", "value": ["x"]}
    assert matching(api, names) == ["a", "b", "c"]
    tags = {"type": "arrayOptions", "column": "tags"}
    assert matching(api, {**tags, "operator": "any of", "value": ["x", "q"]}) == ["a"]
    assert matching(api, {**tags, "operator": "all of", "value": ["x", "y"]}) == ["a"]
    assert matching(api, {**tags, "operator": "none of", "value": ["x"]}) == ["b", "c"]
    assert matching(api, {**tags, "operator": "all of", "value": []}) == ["a", "b", "c"]


def meta(operator, key, value=None, type_="stringObject"):
    out = {"type": type_, "column": "metadata", "operator": operator, "key": key}
    if value is not None:
        out["value"] = value
    return out


def test_metadata_keys(api):
    seed(api)
    assert matching(api, meta("=", "plan", "pro")) == ["a"]
    assert matching(api, meta("starts with", "plan", "fr")) == ["b"]
    assert matching(api, meta("does not contain", "plan", "pro")) == ["b", "c"]
    # Keys are bound as parameters: quotes and dots are just characters.
    assert matching(api, meta("=", "it's", "quoted")) == ["a"]
    assert matching(api, meta("=", "a.b", "dotted")) == ["a"]
    # Numbers compare as their text.
    assert matching(api, meta("=", "count", "3")) == ["a"]
    assert matching(api, meta("is not null", "plan", type_="null")) == ["a", "b"]
    assert matching(api, meta("is null", "plan", type_="null")) == ["c"]
    assert matching(api, meta("any of", "plan", ["free", "x"], "categoryOptions")) == ["b"]
    # numberObject compares numbers only ("count" is 3 on "a"; "plan" is text).
    assert matching(api, meta(">=", "count", 3, "numberObject")) == ["a"]
    assert matching(api, meta("<", "count", 3, "numberObject")) == []
    assert matching(api, meta(">", "plan", 0, "numberObject")) == []


def test_values_with_sql_in_them_are_only_values(api):
    seed(api)
    evil = "x'; DROP TABLE traces; --"
    assert matching(api, name_filter("=", evil)) == []
    assert matching(api, meta("=", evil, evil)) == []
    assert matching(api) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("condition", "fragment"),
    [
        ({"type": "string", "column": "name; DROP TABLE traces", "operator": "=", "value": "x"},
         "Unknown filter column"),
        ({"type": "string", "column": "tags", "operator": "=", "value": "x"},
         "does not fit column 'tags'"),
        ({"type": "number", "column": "name", "operator": "=", "value": 1},
         "does not fit column 'name'"),
        ({"type": "string", "column": "name", "operator": "DROP", "value": "x"},
         "Operator 'DROP' is not valid"),
        ({"type": "string", "column": "name", "operator": "=", "value": 5},
         "value must be a string"),
        ({"type": "number", "column": "totalCost", "operator": ">", "value": "5"},
         "value must be a number"),
        ({"type": "number", "column": "totalCost", "operator": ">", "value": True},
         "value must be a number"),
        ({"type": "boolean", "column": "bookmarked", "operator": "=", "value": "yes"},
         "true or false"),
        ({"type": "datetime", "column": "timestamp", "operator": ">", "value": "soon"},
         "timestamp"),
        ({"type": "arrayOptions", "column": "tags", "operator": "any of", "value": "x"},
         "array of strings"),
        ({"type": "stringObject", "column": "metadata", "operator": "=", "value": "x"},
         "needs a 'key'"),
        ({"type": "string", "column": "name", "operator": "="}, "value: required"),
        ({"column": "name", "operator": "=", "value": "x"}, "type: required"),
    ],
)  # fmt: skip
def test_bad_conditions_are_400(api, condition, fragment):
    seed(api)
    response = api.get("/api/public/traces", params={"filter": json.dumps([condition])})
    assert response.status_code == 400
    assert fragment in response.json()["error"]


@pytest.mark.parametrize("text", ["{}", '"x"', "[1]", "[", '[{"type": 1}]'])
def test_parse_filter_rejects_non_arrays_of_conditions(text):
    with pytest.raises(FilterError):
        parse_filter(text)


def test_parse_filter_reads_langfuse_conditions():
    assert parse_filter("") == []
    assert parse_filter(
        '[{"type": "null", "column": "sessionId", "operator": "is null"},'
        ' {"type": "stringObject", "column": "metadata", "key": "k", "operator": "=",'
        ' "value": "v"}]'
    ) == [
        Condition("null", "sessionId", "is null"),
        Condition("stringObject", "metadata", "=", "v", "k"),
    ]


def test_compiled_sql_binds_every_value_and_uses_only_whitelisted_sql():
    columns = {"name": Column("t.name", "string"), "meta": Column("t.metadata", "object")}
    compiled = compile_conditions(
        [
            Condition("string", "name", "ends with", "zz'"),
            Condition("stringObject", "meta", "contains", "v", "k'"),
        ],
        columns,
        SQLITE,
        resource="traces",
    )
    sql = compiled.where()
    assert "zz'" not in sql and "k'" not in sql
    assert sql.count("?") == len(compiled.params)
    assert compiled.params == [3, "zz'", "k'", "v"]


def test_merge_conditions_prefers_filter_per_column():
    simple = [Condition("string", "userId", "=", "a"), Condition("string", "name", "=", "n")]
    advanced = [Condition("string", "userId", "=", "b")]
    assert merge_conditions(simple, advanced) == [simple[1], advanced[0]]
