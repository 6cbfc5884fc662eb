"""The metrics query API (``GET /api/public/metrics`` v1, ``GET /api/public/v2/metrics``)
through real HTTP on both backends: every view, each aggregation (exact percentiles,
histograms), time granularities, filters, orderBy, row_limit, the 400s, the statement
timeout and project isolation. Expected values are computed here from the data ingested.
"""

from __future__ import annotations

import json
import random
import statistics
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers import T0, event, ingest, iso
from lanterna.server.app import create_app
from support import Api, make_settings, new_project

pytestmark = pytest.mark.clickhouse

FROM, TO = iso(seconds=-3600), iso(seconds=3 * 86400)
DAY = 86400.0

# --- the data set: traces, their observations and scores -------------------------------
TRACES = [
    # id, name, user, session, tags, release, seconds after T0
    ("tr-1", "chat", "u1", "s1", ["a"], "r1", 0.0),
    ("tr-2", "chat", "u2", "s1", ["b"], "r2", 3600.0),
    ("tr-3", "search", "u1", None, ["a", "b"], "r1", DAY),
]
OBSERVATIONS: list[dict[str, Any]] = [
    {"id": "o-1", "traceId": "tr-1", "type": "GENERATION", "name": "llm", "model": "gpt-4o",
     "start": 0.0, "end": 1.5, "first": 0.5, "usage": (100, 50, 150), "cost": (0.01, 0.02),
     "level": "DEFAULT", "metadata": {"team": "red", "rank": 1}},
    {"id": "o-2", "traceId": "tr-1", "type": "SPAN", "name": "retrieve", "start": 0.1,
     "end": 0.4, "level": "DEFAULT", "parent": "o-1", "metadata": {"rank": "high"}},
    {"id": "o-3", "traceId": "tr-2", "type": "GENERATION", "name": "llm", "model": "claude",
     "start": 3600.0, "end": 3602.0, "first": 3601.25, "usage": (200, 100, 300),
     "cost": (0.02, 0.04), "level": "ERROR", "metadata": {"team": "blue", "rank": 2}},
    {"id": "o-4", "traceId": "tr-3", "type": "GENERATION", "name": "llm", "model": "gpt-4o",
     "start": DAY, "end": DAY + 3.0, "first": DAY + 1.0, "usage": (10, 5, 15),
     "cost": (0.001, 0.002), "level": "DEFAULT", "metadata": {"team": "red", "rank": 3}},
    {"id": "o-5", "traceId": "tr-3", "type": "EVENT", "name": "log", "start": DAY + 0.2,
     "level": "WARNING"},
]  # fmt: skip
SCORES = [
    # id, trace, observation, name, data type, value, seconds after T0
    ("sc-1", "tr-1", "o-1", "quality", "NUMERIC", 0.8, 10.0),
    ("sc-2", "tr-2", None, "quality", "NUMERIC", 0.4, 3610.0),
    ("sc-3", "tr-1", "o-1", "helpful", "BOOLEAN", 1, 20.0),
    ("sc-4", "tr-2", "o-3", "helpful", "BOOLEAN", 0, 3620.0),
    ("sc-5", "tr-3", None, "tone", "CATEGORICAL", "polite", DAY + 10),
    ("sc-6", "tr-1", None, "tone", "CATEGORICAL", "rude", 30.0),
    ("sc-7", "tr-3", "o-4", "quality", "NUMERIC", 0.9, DAY + 20),
]


def _events() -> list[dict[str, Any]]:
    out = []
    for tid, name, user, session, tags, release, at in TRACES:
        out.append(event("trace-create", {
            "id": tid, "name": name, "userId": user, "sessionId": session, "tags": tags,
            "release": release, "timestamp": iso(seconds=at)}))  # fmt: skip
    for o in OBSERVATIONS:
        body: dict[str, Any] = {
            "id": o["id"], "traceId": o["traceId"], "name": o["name"], "level": o["level"],
            "startTime": iso(seconds=o["start"]),
        }  # fmt: skip
        if "end" in o:
            body["endTime"] = iso(seconds=o["end"])
        if "first" in o:
            body["completionStartTime"] = iso(seconds=o["first"])
        if "model" in o:
            body["model"] = o["model"]
        if "usage" in o:
            i, out_, total = o["usage"]
            body["usageDetails"] = {"input": i, "output": out_, "total": total}
            ci, co = o["cost"]
            body["costDetails"] = {"input": ci, "output": co, "total": ci + co}
        if "metadata" in o:
            body["metadata"] = o["metadata"]
        if "parent" in o:
            body["parentObservationId"] = o["parent"]
        kind = {"GENERATION": "generation", "SPAN": "span", "EVENT": "event"}[o["type"]]
        out.append(event(f"{kind}-create", body))
    for sid, tid, oid, name, data_type, value, at in SCORES:
        out.append(event("score-create", {
            "id": sid, "traceId": tid, "observationId": oid, "name": name,
            "dataType": data_type, "value": value, "timestamp": iso(seconds=at)}))  # fmt: skip
    return out


@pytest.fixture
def seeded(api: Api) -> Api:
    result = ingest(api, *_events())
    assert result["errors"] == [], result["errors"]
    return api


def metrics(api: Any, query: dict[str, Any], *, version: int = 2, auth: Any = None) -> Any:
    """GET the metrics route with ``query`` (JSON-encoded); the response."""
    path = "/api/public/v2/metrics" if version == 2 else "/api/public/metrics"
    kwargs = {"auth": auth} if auth is not None else {}
    return api.get(path, params={"query": json.dumps(query)}, **kwargs)


def rows(api: Any, version: int = 2, **query: Any) -> list[dict[str, Any]]:
    """The rows of a query (``fromTimestamp``/``toTimestamp`` default to the data's range)."""
    full = {"fromTimestamp": FROM, "toTimestamp": TO, **query}
    response = metrics(api, full, version=version)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert isinstance(data, list)
    return data


def m(measure: str, aggregation: str) -> dict[str, str]:
    return {"measure": measure, "aggregation": aggregation}


def _latency_ms(o: dict[str, Any]) -> float | None:
    return (o["end"] - o["start"]) * 1000 if "end" in o else None


def _cinterp(values: list[float], q: float) -> float:
    """Quantile by linear interpolation between closest ranks (independent of ours)."""
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(q * 100) - 1]


# --- views and aggregations --------------------------------------------------------------


def test_observations_view_sums_counts_and_averages_by_dimension(seeded):
    data = rows(
        seeded,
        view="observations",
        dimensions=[{"field": "providedModelName"}],
        metrics=[m("count", "count"), m("totalCost", "sum"), m("inputTokens", "sum"),
                 m("outputTokens", "max"), m("totalTokens", "min"), m("latency", "avg"),
                 m("inputCost", "sum"), m("outputCost", "sum")],
        orderBy=[{"field": "providedModelName", "direction": "asc"}],
    )  # fmt: skip
    by_model: dict[Any, list[dict[str, Any]]] = {}
    for o in OBSERVATIONS:
        by_model.setdefault(o.get("model"), []).append(o)
    assert [r["providedModelName"] for r in data] == ["claude", "gpt-4o", None]
    for row in data:
        group = by_model[row["providedModelName"]]
        usage = [o["usage"] for o in group if "usage" in o]
        costs = [o["cost"] for o in group if "cost" in o]
        latencies = [x for x in map(_latency_ms, group) if x is not None]
        assert row["count_count"] == len(group)
        assert row["sum_inputTokens"] == (sum(u[0] for u in usage) if usage else None)
        assert row["max_outputTokens"] == (max(u[1] for u in usage) if usage else None)
        assert row["min_totalTokens"] == (min(u[2] for u in usage) if usage else None)
        if costs:
            assert row["sum_totalCost"] == pytest.approx(sum(a + b for a, b in costs))
            assert row["sum_inputCost"] == pytest.approx(sum(a for a, _ in costs))
            assert row["sum_outputCost"] == pytest.approx(sum(b for _, b in costs))
        assert row["avg_latency"] == pytest.approx(statistics.fmean(latencies))
    assert isinstance(data[0]["count_count"], int)


def test_observation_timing_measures_and_score_counts(seeded):
    (row,) = rows(
        seeded,
        view="observations",
        filters=[{"column": "id", "operator": "=", "value": "o-1", "type": "string"}],
        metrics=[m("timeToFirstToken", "max"), m("streamingLatency", "max"),
                 m("outputTokensPerSecond", "max"), m("tokensPerSecond", "max"),
                 m("countScores", "sum")],
    )  # fmt: skip
    o = OBSERVATIONS[0]
    assert row["max_timeToFirstToken"] == pytest.approx((o["first"] - o["start"]) * 1000)
    assert row["max_streamingLatency"] == pytest.approx((o["end"] - o["first"]) * 1000)
    assert row["max_outputTokensPerSecond"] == pytest.approx(50 / (o["end"] - o["first"]))
    assert row["max_tokensPerSecond"] == pytest.approx(150 / (o["end"] - o["start"]))
    assert row["sum_countScores"] == sum(1 for s in SCORES if s[2] == "o-1")


def test_traces_view_in_v1_and_not_in_v2(seeded):
    data = rows(
        seeded,
        version=1,
        view="traces",
        dimensions=[{"field": "name"}],
        metrics=[m("count", "count"), m("observationsCount", "sum"), m("scoresCount", "sum"),
                 m("uniqueUserIds", "count"), m("uniqueSessionIds", "count"),
                 m("latency", "max"), m("totalTokens", "sum"), m("totalCost", "sum")],
        orderBy=[{"field": "name", "direction": "desc"}],
    )  # fmt: skip
    assert [r["name"] for r in data] == ["search", "chat"]
    for row in data:
        traces = [t for t in TRACES if t[1] == row["name"]]
        ids = {t[0] for t in traces}
        obs = [o for o in OBSERVATIONS if o["traceId"] in ids]
        assert row["count_count"] == len(traces)
        assert row["sum_observationsCount"] == len(obs)
        assert row["sum_scoresCount"] == sum(1 for s in SCORES if s[1] in ids)
        assert row["count_uniqueUserIds"] == len({t[2] for t in traces})
        assert row["count_uniqueSessionIds"] == len({t[3] for t in traces if t[3]})
        assert row["sum_totalTokens"] == sum(o["usage"][2] for o in obs if "usage" in o)
        assert row["sum_totalCost"] == pytest.approx(
            sum(sum(o["cost"]) for o in obs if "cost" in o)
        )
        per_trace = []
        for tid in ids:
            mine = [o for o in obs if o["traceId"] == tid]
            per_trace.append(
                max(o.get("end", o["start"]) for o in mine) - min(o["start"] for o in mine)
            )
        assert row["max_latency"] == pytest.approx(max(per_trace) * 1000)
    response = metrics(seeded, {"view": "traces", "metrics": [m("count", "count")],
                                "fromTimestamp": FROM, "toTimestamp": TO})  # fmt: skip
    assert response.status_code == 400
    assert "'traces'" in response.json()["message"]


def test_score_views(seeded):
    numeric = rows(
        seeded,
        view="scores-numeric",
        dimensions=[{"field": "name"}],
        metrics=[m("count", "count"), m("value", "avg"), m("value", "sum")],
        orderBy=[{"field": "name", "direction": "asc"}],
    )
    expected = {}
    for s in SCORES:
        if s[4] in ("NUMERIC", "BOOLEAN"):
            expected.setdefault(s[3], []).append(float(s[5]))
    assert [r["name"] for r in numeric] == sorted(expected)
    for row in numeric:
        assert row["count_count"] == len(expected[row["name"]])
        assert row["avg_value"] == pytest.approx(statistics.fmean(expected[row["name"]]))
        assert row["sum_value"] == pytest.approx(sum(expected[row["name"]]))

    boolean = rows(
        seeded,
        view="scores-boolean",
        dimensions=[{"field": "booleanValue"}],
        metrics=[m("count", "count")],
        orderBy=[{"field": "booleanValue", "direction": "asc"}],
    )
    assert boolean == [{"booleanValue": False, "count_count": 1},
                       {"booleanValue": True, "count_count": 1}]  # fmt: skip

    categorical = rows(
        seeded,
        version=1,
        view="scores-categorical",
        dimensions=[{"field": "stringValue"}, {"field": "traceName"}],
        metrics=[m("count", "count")],
        orderBy=[{"field": "stringValue", "direction": "asc"}],
    )
    assert categorical == [
        {"stringValue": "polite", "traceName": "search", "count_count": 1},
        {"stringValue": "rude", "traceName": "chat", "count_count": 1},
    ]
    # The categorical view has no value measure.
    query = {"view": "scores-categorical", "metrics": [m("value", "avg")]}
    full = {"fromTimestamp": FROM, "toTimestamp": TO, **query}
    assert metrics(seeded, full, version=2).status_code == 400
    # scores-boolean is v2's view; v1 takes it too (Langfuse's OpenAPI lists it there).
    for version in (1, 2):
        boolean = rows(seeded, version=version, view="scores-boolean",
                       metrics=[m("count", "count")])  # fmt: skip
        assert boolean == [{"count_count": 2}], (version, boolean)  # sc-3, sc-4


def test_tags_group_as_lists(seeded):
    data = rows(
        seeded, version=1, view="traces", dimensions=[{"field": "tags"}],
        metrics=[m("count", "count")],
    )  # fmt: skip
    assert {tuple(r["tags"]): r["count_count"] for r in data} == {
        tuple(tags): 1 for _, _, _, _, tags, _, _ in TRACES
    }


def test_scores_joined_to_their_observation(seeded):
    data = rows(
        seeded,
        view="scores-numeric",
        dimensions=[{"field": "observationModelName"}],
        metrics=[m("value", "max")],
        filters=[{"column": "name", "operator": "=", "value": "quality", "type": "string"}],
        orderBy=[{"field": "observationModelName", "direction": "asc"}],
    )
    assert data == [{"observationModelName": "gpt-4o", "max_value": 0.9},
                    {"observationModelName": None, "max_value": 0.4}]  # fmt: skip


def test_exact_percentiles_and_histograms_against_python(api):
    rng = random.Random(16)
    latencies = [round(rng.lognormvariate(6, 1.2), 3) for _ in range(57)]  # milliseconds
    batch = [event("trace-create", {"id": "tp", "timestamp": iso()})]
    for i, ms in enumerate(latencies):
        batch.append(event("span-create", {
            "id": f"p-{i}", "traceId": "tp", "name": "step", "startTime": iso(seconds=i),
            "endTime": iso(seconds=i + ms / 1000)}))  # fmt: skip
    ingest(api, *batch)
    aggregations = ("p50", "p75", "p90", "p95", "p99")
    (row,) = rows(
        api,
        view="observations",
        metrics=[m("latency", a) for a in aggregations] + [m("latency", "histogram")],
        config={"bins": 7},
    )
    for a in aggregations:
        expected = _cinterp(latencies, int(a[1:]) / 100)
        assert row[f"{a}_latency"] == pytest.approx(expected, rel=1e-9, abs=1e-6), a
    bins = row["histogram_latency"]
    assert len(bins) == 7
    assert bins[0][0] == pytest.approx(min(latencies), abs=1e-6)
    assert bins[-1][1] == pytest.approx(max(latencies), abs=1e-6)
    assert sum(b[2] for b in bins) == len(latencies)
    for lower, upper, height in bins:
        last = upper == bins[-1][1]
        inside = [x for x in latencies if lower - 1e-6 <= x < upper - 1e-6 or (last and x >= lower)]
        assert height == len(inside)


def test_time_granularities(seeded):
    def buckets(granularity: str) -> list[tuple[str, int]]:
        data = rows(
            seeded,
            view="observations",
            metrics=[m("count", "count")],
            timeDimension={"granularity": granularity},
        )
        return [(r["time_dimension"], r["count_count"]) for r in data]

    def label(seconds: float, fmt: str) -> str:
        return (T0 + timedelta(seconds=seconds)).strftime(fmt)

    def expected(fmt: str) -> list[tuple[str, int]]:
        counts: dict[str, int] = {}
        for o in OBSERVATIONS:
            key = label(o["start"], fmt)
            counts[key] = counts.get(key, 0) + 1
        return sorted(counts.items())

    assert buckets("minute") == expected("%Y-%m-%dT%H:%M:00.000Z")
    assert buckets("hour") == expected("%Y-%m-%dT%H:00:00.000Z")
    assert buckets("day") == expected("%Y-%m-%dT00:00:00.000Z")
    assert buckets("month") == expected("%Y-%m-01T00:00:00.000Z")
    # T0 is Wednesday 2024-05-01; weeks start on Monday (2024-04-29).
    assert buckets("week") == [("2024-04-29T00:00:00.000Z", len(OBSERVATIONS))]
    # About 50 buckets over the 3 days and 1 hour queried: hours.
    assert buckets("auto") == expected("%Y-%m-%dT%H:00:00.000Z")


def test_filters_by_type(seeded):
    def count(*filters: dict[str, Any], view: str = "observations") -> int:
        (row,) = rows(seeded, view=view, metrics=[m("count", "count")], filters=list(filters))
        return int(row["count_count"])

    assert count({"column": "traceName", "operator": "=", "value": "chat", "type": "string"}) == 3
    assert count({"column": "name", "operator": "any of", "value": ["log", "retrieve"],
                  "type": "stringOptions"}) == 2  # fmt: skip
    assert count({"column": "tags", "operator": "all of", "value": ["a", "b"],
                  "type": "arrayOptions"}) == 2  # fmt: skip
    assert count({"column": "metadata", "key": "team", "operator": "=", "value": "red",
                  "type": "stringObject"}) == 2  # fmt: skip
    assert count({"column": "metadata", "key": "rank", "operator": ">=", "value": 2,
                  "type": "numberObject"}) == 2  # fmt: skip
    assert count({"column": "promptName", "operator": "is null", "type": "null"}) == 5
    assert count({"column": "isRootObservation", "operator": "=", "value": False,
                  "type": "boolean"}) == 1  # fmt: skip
    assert count({"column": "startTime", "operator": ">=", "value": iso(seconds=DAY),
                  "type": "datetime"}) == 2  # fmt: skip
    assert (
        count(
            {"column": "userId", "operator": "=", "value": "u1", "type": "string"},
            {"column": "level", "operator": "=", "value": "DEFAULT", "type": "string"},
        )
        == 3
    )
    assert count({"column": "value", "operator": ">", "value": 0.5, "type": "number"},
                 view="scores-numeric") == 3  # fmt: skip


def test_order_by_and_row_limit(seeded):
    query = {
        "view": "observations",
        "dimensions": [{"field": "name"}],
        "metrics": [m("count", "count")],
    }
    data = rows(seeded, **query, orderBy=[{"field": "count_count", "direction": "desc"},
                                          {"field": "name", "direction": "desc"}])  # fmt: skip
    assert [(r["name"], r["count_count"]) for r in data] == [
        ("llm", 3), ("retrieve", 1), ("log", 1)]  # fmt: skip
    limited = rows(seeded, **query, orderBy=[{"field": "name", "direction": "asc"}],
                   config={"row_limit": 2})  # fmt: skip
    assert [r["name"] for r in limited] == ["llm", "log"]


def test_the_time_range_is_half_open_and_required(seeded):
    (row,) = rows(
        seeded,
        view="observations",
        metrics=[m("count", "count")],
        fromTimestamp=iso(seconds=0.1),
        toTimestamp=iso(seconds=3600.0),
    )
    assert row["count_count"] == 1  # o-2 only: o-1 starts before, o-3 at the end


# --- bad input ---------------------------------------------------------------------------

GOOD = {"view": "observations", "metrics": [m("count", "count")],
        "fromTimestamp": FROM, "toTimestamp": TO}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"view": "spans"}, "'spans'"),
        ({"dimensions": [{"field": "colour"}]}, "'colour'"),
        ({"metrics": [m("speed", "sum")]}, "'speed'"),
        ({"metrics": [m("latency", "median")]}, "'median'"),
        ({"metrics": []}, "metrics"),
        (
            {"filters": [{"column": "colour", "operator": "=", "value": "x", "type": "string"}]},
            "'colour'",
        ),
        (
            {"filters": [{"column": "name", "operator": "like", "value": "x", "type": "string"}]},
            "'like'",
        ),
        ({"filters": [{"column": "name", "operator": "=", "type": "string"}]}, "value"),
        ({"fromTimestamp": None}, "fromTimestamp"),
        ({"toTimestamp": "yesterday"}, "toTimestamp"),
        ({"toTimestamp": FROM}, "toTimestamp"),
        ({"timeDimension": {"granularity": "fortnight"}}, "'fortnight'"),
        ({"orderBy": [{"field": "sum_totalCost", "direction": "asc"}]}, "'sum_totalCost'"),
        ({"config": {"row_limit": 1001}}, "row_limit"),
        ({"config": {"bins": 0}}, "bins"),
        ({"dimensions": [{"field": "userId"}]}, "'userId'"),
    ],
)
def test_bad_queries_get_a_400_naming_what_is_wrong(api, change, named):
    query = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    response = metrics(api, query)
    assert response.status_code == 400, response.text
    body = response.json()
    assert named in body["message"], body


def test_malformed_or_missing_query_json(api):
    response = api.get("/api/public/v2/metrics", params={"query": "{view: observations"})
    assert response.status_code == 400
    assert "malformed JSON" in response.json()["message"]
    response = api.get("/api/public/metrics")
    assert response.status_code == 400
    assert "query" in response.json()["message"]


def test_v1_groups_by_what_v2_refuses(seeded):
    data = rows(
        seeded,
        version=1,
        view="observations",
        dimensions=[{"field": "userId"}],
        metrics=[m("count", "count")],
        orderBy=[{"field": "userId", "direction": "asc"}],
    )
    assert [(r["userId"], r["count_count"]) for r in data] == [("u1", 4), ("u2", 1)]


def test_a_query_sees_only_its_own_project(seeded):
    other = seeded.new_project("Other")
    ingest(seeded, event("trace-create", {"id": "tr-x", "name": "chat", "timestamp": iso()}),
           event("span-create", {"id": "o-x", "traceId": "tr-x", "startTime": iso()}),
           auth=other.auth)  # fmt: skip
    query = {**GOOD, "dimensions": [{"field": "traceName"}]}
    mine = metrics(seeded, query).json()["data"]
    theirs = metrics(seeded, query, auth=other.auth).json()["data"]
    assert {r["traceName"]: r["count_count"] for r in mine} == {"chat": 3, "search": 2}
    assert theirs == [{"traceName": "chat", "count_count": 1}]
    assert metrics(seeded, query, auth=("pk-lf-nobody", "sk-lf-nothing")).status_code == 401


def test_a_query_over_the_time_limit_is_cancelled_with_a_422(
    db_url: str, events_url: str, tmp_path: Path
):
    settings = make_settings(db_url, tmp_path)
    settings.events_url = events_url
    settings.query_timeout_ms = 1
    project = new_project(db_url)
    with Api(create_app(settings)) as client:
        batch = []
        for i in range(1500):
            batch.append(event("trace-create", {"id": f"t{i}", "timestamp": iso(seconds=i)}))
            batch.append(event("span-create", {"id": f"s{i}", "traceId": f"t{i}",
                                               "startTime": iso(seconds=i),
                                               "endTime": iso(seconds=i + 0.5)}))  # fmt: skip
        ingest(client, *batch, auth=project.auth)
        query = {
            "view": "traces",
            "metrics": [m("latency", "p99"), m("totalCost", "histogram")],
            "dimensions": [{"field": "id"}],
            "fromTimestamp": FROM,
            "toTimestamp": TO,
        }
        response = metrics(client, query, version=1, auth=project.auth)
        assert response.status_code == 422, response.text
        assert "limit" in response.json()["message"]
    # The same query answers under the default limit.
    settings = make_settings(db_url, tmp_path)
    settings.events_url = events_url
    with Api(create_app(settings)) as client:
        response = metrics(client, query, version=1, auth=project.auth)
        assert response.status_code == 200, response.text
        assert len(response.json()["data"]) == 1000  # v1's row cap


def test_the_routes_are_in_the_openapi_document(api):
    paths = api.get("/api/openapi.json").json()["paths"]
    for path in ("/api/public/metrics", "/api/public/v2/metrics"):
        (param,) = paths[path]["get"]["parameters"]
        assert param["name"] == "query"
        schema = param["schema"]["contentSchema"]
        assert {"view", "metrics", "fromTimestamp", "toTimestamp"} <= set(schema["required"])
        answer = paths[path]["get"]["responses"]["200"]["content"]["application/json"]
        assert answer["schema"]["$ref"].endswith("/MetricsResponse")
    v2 = paths["/api/public/v2/metrics"]["get"]["parameters"][0]["schema"]["contentSchema"]
    assert "traces" not in v2["properties"]["view"]["enum"]


@pytest.mark.parametrize(
    ("version", "view"),
    [(1, "traces"), (1, "observations"), (2, "observations"), (1, "scores-numeric"),
     (1, "scores-boolean"), (2, "scores-boolean"), (1, "scores-categorical"),
     (2, "scores-categorical")],
)  # fmt: skip
def test_every_measure_aggregation_and_dimension_of_a_view_answers(seeded, version, view):
    from lanterna.analytics.query import AGGREGATIONS, VIEWS

    declared = VIEWS[view]
    wanted = [
        m(name, aggregation)
        for name, measure in declared.measures.items()
        for aggregation in AGGREGATIONS
        if measure.allows(aggregation)
    ]
    (total,) = rows(seeded, version=version, view=view, metrics=wanted)
    assert set(total) == {f"{x['aggregation']}_{x['measure']}" for x in wanted}
    for column, value in total.items():
        if column.startswith("histogram_"):
            assert isinstance(value, list)
        else:
            assert value is None or isinstance(value, (int, float)), (column, value)
    # Grouped by each dimension (v2 refuses the high-cardinality ones: 400).
    for name, dim in declared.dimensions_for(version).items():
        query = {"view": view, "dimensions": [{"field": name}], "metrics": [m("count", "count")],
                 "fromTimestamp": FROM, "toTimestamp": TO}  # fmt: skip
        response = metrics(seeded, query, version=version)
        if version == 2 and dim.high_cardinality:
            assert response.status_code == 400, (name, response.text)
            continue
        assert response.status_code == 200, (name, response.text)
        data = response.json()["data"]
        assert sum(r["count_count"] for r in data) == total["count_count"], name


def test_error_measures_on_traces_and_observations(seeded):
    """Lanterna's errorCount (sum: how many are errors) and errorRate (avg: the share):
    an observation is an error at level ERROR, a trace when one of its observations is."""
    errors = [o for o in OBSERVATIONS if o["level"] == "ERROR"]
    (obs,) = rows(seeded, view="observations",
                  metrics=[m("errorCount", "sum"), m("errorRate", "avg")])  # fmt: skip
    assert obs == {"sum_errorCount": len(errors), "avg_errorRate": len(errors) / len(OBSERVATIONS)}
    failed = {o["traceId"] for o in errors}
    data = rows(seeded, version=1, view="traces", dimensions=[{"field": "name"}],
                metrics=[m("errorCount", "sum"), m("errorRate", "avg")])  # fmt: skip
    for row in data:
        ids = {t[0] for t in TRACES if t[1] == row["name"]}
        assert row["sum_errorCount"] == len(ids & failed)
        assert row["avg_errorRate"] == pytest.approx(len(ids & failed) / len(ids))
