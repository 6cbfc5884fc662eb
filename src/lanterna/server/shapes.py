"""Stored rows -> the JSON objects of the public API (Langfuse's field names).

Every property the OpenAPI schema marks required is present: nullable ones as
``null``, lists as ``[]``. One function per entity, shared by every route that returns it.
Traces, observations and scores take their plain fields from the field tables
(``lanterna.schema``): each field the table marks ``shape`` (or puts in a cursor-API
group) is converted by its kind; the functions here add what is computed.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any

from .. import _json
from ..alerts.channels import masked_config
from ..alerts.rules import api_fields, describe
from ..analytics.metrics import Usage
from ..analytics.usage import DayUsage, UserTotals
from ..cost.prices import PriceModel, Tier
from ..schema import OBSERVATION, SCORE, TRACE, Entity
from ..schema.field import BOOL, JSON, OBJECT, STRINGS, TIMESTAMP
from ..store.db import Conn
from ..store.dialect import Dialect
from ..store.interface import VersionStats
from ..timeutil import format_ts, seconds_between

_Plan = tuple[tuple[str, str, Callable[[Any], Any] | None, Callable[[], Any] | None], ...]


@cache
def _plan(d: Dialect, fields: tuple[tuple[str, str, str, Callable[[], Any] | None], ...]) -> _Plan:
    """``(api name, column, converter, empty)`` for each field (made once per dialect)."""
    convert: dict[str, Callable[[Any], Any]] = {
        TIMESTAMP: d.ts_out,
        JSON: d.json_out,
        OBJECT: d.json_out,
        STRINGS: d.json_out,
        BOOL: bool,
    }
    return tuple((api, column, convert.get(kind), empty) for api, column, kind, empty in fields)


def _fields(d: Dialect, fields: tuple[Any, ...], row: dict[str, Any], out: dict[str, Any]) -> None:
    """Put the fields of ``fields`` (an entity's ``shape`` or one of its ``groups``) of
    ``row`` into ``out``, each converted by its kind; ``empty()`` stands for a null or
    empty value where the field table gives one."""
    get = row.get
    for api, column, conv, empty in _plan(d, fields):
        value = get(column)
        if conv is not None:
            value = conv(value)
        if empty is not None and not value:
            value = empty()
        out[api] = value


def _shape(d: Dialect, entity: Entity, row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _fields(d, entity.shape, row, out)
    return out


def _grouped(
    d: Dialect, entity: Entity, row: dict[str, Any], groups: frozenset[str]
) -> dict[str, Any]:
    """The cursor API's object: the ``core`` fields, then those of each group asked for."""
    out: dict[str, Any] = {}
    for group, fields in entity.groups.items():
        if group == "core" or group in groups:
            _fields(d, fields, row, out)
    return out


def _sum_containing(values: dict[str, Any] | None, needle: str) -> float:
    if not values:
        return 0
    return sum(v for k, v in values.items() if needle in k and isinstance(v, (int, float)))


def trace_json(d: Dialect, row: dict[str, Any], project_id: str) -> dict[str, Any]:
    """A Trace with ``htmlPath`` (the fields every trace response carries)."""
    out = _shape(d, TRACE, row)
    out["htmlPath"] = f"/project/{project_id}/traces/{row['id']}"
    out["projectId"] = project_id
    return out


def _price(value: Any) -> float | None:
    """A unit price (a decimal string or a Decimal) as the API's number."""
    return None if value is None else float(value)


def observation_json(d: Dialect, row: dict[str, Any]) -> dict[str, Any]:
    """An ObservationsView (v1 observation with derived usage, cost and latency)."""
    out = _shape(d, OBSERVATION, row)
    usage = out["usageDetails"]
    cost = out["costDetails"]
    cost_info = d.json_out(row.get("cost_info")) or {}
    prices = cost_info.get("prices") or {}
    start = d.ts_parse(row["start_time"])
    end = d.ts_parse(row["end_time"])
    first_token = d.ts_parse(row["completion_start_time"])
    usage_in = int(_sum_containing(usage, "input"))
    usage_out = int(_sum_containing(usage, "output"))
    usage_total = int(usage.get("total", 0) or 0)
    cost_in = _sum_containing(cost, "input") if cost else None
    cost_out = _sum_containing(cost, "output") if cost else None
    total_cost = row["total_cost"]
    out.update(
        usage={
            "input": usage_in,
            "output": usage_out,
            "total": usage_total,
            "unit": "TOKENS",
            "inputCost": cost_in,
            "outputCost": cost_out,
            "totalCost": total_cost,
        },
        inputPrice=_price(prices.get("input")),
        outputPrice=_price(prices.get("output")),
        totalPrice=_price(prices.get("total")),
        # Lanterna: what priced this observation (model, tier, unit prices, usage
        # source) or why it has no cost; see docs/api-cost.md.
        costInfo=cost_info or None,
        calculatedInputCost=cost_in,
        calculatedOutputCost=cost_out,
        calculatedTotalCost=total_cost,
        latency=seconds_between(start, end),
        timeToFirstToken=seconds_between(start, first_token),
        promptTokens=usage_in,
        completionTokens=usage_out,
        totalTokens=usage_total,
        unit="TOKENS",
    )
    return out


def score_json(d: Dialect, row: dict[str, Any]) -> dict[str, Any]:
    """A Score (v1/v2 read shape, discriminated by ``dataType``)."""
    return _shape(d, SCORE, row)


def score_v1_json(d: Dialect, row: dict[str, Any]) -> dict[str, Any]:
    """ScoreV1: the legacy trace-score shape (no session or dataset-run target)."""
    out = score_json(d, row)
    del out["sessionId"], out["datasetRunId"]
    return out


def score_trace_json(d: Dialect, row: dict[str, Any]) -> dict[str, Any] | None:
    """``trace: {userId, tags, environment, sessionId}`` for a score on a trace (read from
    the ``trace_*`` columns of ``row``)."""
    if row["trace_id"] is None:
        return None
    return {
        "userId": row["trace_user_id"],
        "tags": d.json_out(row["trace_tags"]) or [],
        "environment": row["trace_environment"],
        "sessionId": row["trace_session_id"],
    }


def session_json(d: Dialect, row: dict[str, Any]) -> dict[str, Any]:
    """A Session."""
    return {
        "id": row["id"],
        "createdAt": d.ts_out(row["created_at"]),
        "projectId": row["project_id"],
        "environment": row["environment"],
    }


#: Metadata values longer than this are cut in v2 observations unless expanded.
V2_METADATA_CHARS = 200


def _raw_text(value: Any) -> str | None:
    """A JSON value as the raw string Langfuse stores (strings as-is, others as JSON)."""
    if value is None or isinstance(value, str):
        return value
    return _json.dumps(value)


def _v2_metadata(value: Any, expand: frozenset[str]) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        value = {"metadata": value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        text = _raw_text(item)
        if text is not None and len(text) > V2_METADATA_CHARS and key not in expand:
            text = text[:V2_METADATA_CHARS]
        out[key] = text
    return out


def observation_v2_json(
    d: Dialect, row: dict[str, Any], groups: frozenset[str], expand: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """An ObservationV2 with the requested field groups (``core`` always).

    Input and output are raw strings; metadata values are strings cut to 200 characters
    unless their key is in ``expand``. Trace-derived fields (``userId``, ``tags``, ...)
    read the ``trace_*`` columns of ``row``. ``modelId`` and the prices are always
    present, null unless the ``model`` group is asked for.
    """
    v2_info = d.json_out(row.get("cost_info")) or {}
    v2_prices = v2_info.get("prices") or {}  # decimal strings, as Langfuse's v2 sends them
    out = _grouped(d, OBSERVATION, row, groups)
    out.setdefault("modelId", None)
    out.update(inputPrice=None, outputPrice=None, totalPrice=None)
    if "basic" in groups:
        public = row.get("trace_public")
        bookmarked = row.get("trace_bookmarked")
        out.update(
            bookmarked=None if bookmarked is None else bool(bookmarked),
            public=None if public is None else bool(public),
            userId=row.get("trace_user_id"),
            sessionId=row.get("trace_session_id"),
            isRootObservation=row["parent_observation_id"] is None,
        )
    if "io" in groups:
        out["input"] = _raw_text(d.json_out(row["input"]))
        out["output"] = _raw_text(d.json_out(row["output"]))
    if "metadata" in groups:
        out["metadata"] = _v2_metadata(d.json_out(row["metadata"]), expand)
    if "model" in groups:
        out.update(
            providedModelName=row["model"],
            internalModelId=row["model_id"],
            inputPrice=v2_prices.get("input"),
            outputPrice=v2_prices.get("output"),
            totalPrice=v2_prices.get("total"),
            modelParameters=d.json_out(row["model_parameters"]),
            modelId=row["model_id"],
        )
    if "usage" in groups:
        out["usagePricingTierName"] = v2_info.get("tier")
    if "metrics" in groups:
        start = d.ts_parse(row["start_time"])
        out.update(
            latency=seconds_between(start, d.ts_parse(row["end_time"])),
            timeToFirstToken=seconds_between(start, d.ts_parse(row["completion_start_time"])),
        )
    if "trace_context" in groups:
        tags = row.get("trace_tags")
        out.update(
            tags=d.json_out(tags) if tags is not None else [],
            release=row.get("trace_release"),
            traceName=row.get("trace_name"),
        )
    return out


def _v3_value(row: dict[str, Any]) -> Any:
    """The polymorphic ``value``: a number, a boolean, or the string of the other types."""
    data_type = row["data_type"]
    if data_type == "NUMERIC":
        return row["value"]
    if data_type == "BOOLEAN":
        return bool(row["value"])
    return row["string_value"] or ""  # CORRECTION: empty string when unset, as Langfuse


def _subject(row: dict[str, Any]) -> dict[str, Any] | None:
    """What the score rates: ``{kind, id}`` (an observation's also carries ``traceId``)."""
    if row["observation_id"] is not None:
        return {"kind": "observation", "id": row["observation_id"], "traceId": row["trace_id"]}
    for kind, column in (
        ("trace", "trace_id"),
        ("session", "session_id"),
        ("experiment", "dataset_run_id"),
    ):
        if row[column] is not None:
            return {"kind": kind, "id": row[column]}
    return None


def score_v3_json(d: Dialect, row: dict[str, Any], groups: frozenset[str]) -> dict[str, Any]:
    """A ScoreV3: the core fields, plus the ``details``/``subject``/``annotation`` groups."""
    out = _grouped(d, SCORE, row, groups)
    out["value"] = _v3_value(row)
    if "subject" in groups:
        out["subject"] = _subject(row)
    return out


def config_json(d: Dialect, row: dict[str, Any]) -> dict[str, Any]:
    """A stored score config as Langfuse's ``ScoreConfig`` (every property present)."""
    return {
        "id": row["id"],
        "name": row["name"],
        "createdAt": d.ts_out(row["created_at"]),
        "updatedAt": d.ts_out(row["updated_at"]),
        "projectId": row["project_id"],
        "dataType": row["data_type"],
        "isArchived": row["is_archived"],
        "minValue": row["min_value"],
        "maxValue": row["max_value"],
        "categories": row["categories"],
        "description": row["description"],
    }


# --- prompts ---------------------------------------------------------------------------


def prompt_json(
    d: Dialect, row: dict[str, Any], prompt: Any, graph: dict[str, Any] | None
) -> dict[str, Any]:
    """A Prompt as the SDKs parse it; ``prompt`` is its body as returned (references
    resolved or not) and ``graph`` the resolution graph (None: nothing resolved)."""
    return {
        "id": row["id"],
        "projectId": row["project_id"],
        "name": row["name"],
        "version": row["version"],
        "type": row["type"],
        "prompt": prompt,
        "config": row["config"] if row["config"] is not None else {},
        "labels": row["labels"],
        "tags": row["tags"],
        "commitMessage": row["commit_message"],
        "resolutionGraph": graph,
        "isActive": "production" in row["labels"],
        "createdBy": row["created_by"],
        "createdAt": d.ts_out(row["created_at"]),
        "updatedAt": d.ts_out(row["updated_at"]),
    }


def prompt_meta_json(d: Dialect, versions: list[dict[str, Any]]) -> dict[str, Any]:
    """A PromptMeta: one prompt name from its version rows (oldest first)."""
    newest = versions[-1]
    return {
        "name": newest["name"],
        "type": newest["type"],
        "versions": [v["version"] for v in versions],
        "labels": sorted({x for v in versions for x in v["labels"]}),
        "tags": newest["tags"],
        "lastUpdatedAt": d.ts_out(max(v["updated_at"] for v in versions)),
        "lastConfig": newest["config"],
    }


def version_stats_json(stats: VersionStats) -> dict[str, Any]:
    """One prompt version's line of ``GET /api/public/prompts/metrics``."""
    return {
        "version": stats.version,
        "labels": stats.labels,
        "generations": stats.generations,
        "traces": stats.traces,
        "avgLatency": stats.avg_latency,
        "avgCost": stats.avg_cost,
        "totalCost": stats.total_cost,
        "usage": stats.usage,
        "scores": {name: {"avg": avg, "count": n} for name, (avg, n) in stats.scores.items()},
    }


# --- models ----------------------------------------------------------------------------

_EPOCH = "1970-01-01T00:00:00.000000Z"


def custom_json(conn: Conn, row: dict[str, Any]) -> dict[str, Any]:
    """A stored custom model as Langfuse's ``Model``."""
    d = conn.dialect
    tiers = row["pricing_tiers"]
    default = next(t for t in tiers if t["isDefault"])
    prices = default["prices"]
    return {
        "id": row["id"],
        "modelName": row["model_name"],
        "matchPattern": row["match_pattern"],
        "startDate": d.ts_out(row["start_date"]),
        "unit": row["unit"],
        "inputPrice": _price(prices.get("input")),
        "outputPrice": _price(prices.get("output")),
        "totalPrice": _price(prices.get("total")),
        "tokenizerId": row["tokenizer_id"],
        "tokenizerConfig": row["tokenizer_config"],
        "isLangfuseManaged": False,
        "createdAt": d.ts_out(row["created_at"]),
        "prices": {k: {"price": float(v)} for k, v in prices.items()},
        "pricingTiers": [
            {
                "id": t["id"],
                "name": t["name"],
                "isDefault": t["isDefault"],
                "priority": t["priority"],
                "conditions": t["conditions"],
                "prices": {k: float(v) for k, v in t["prices"].items()},
            }
            for t in sorted(tiers, key=lambda t: t["priority"])
        ],
    }


def _shown(model: PriceModel, tier: Tier) -> dict[str, Decimal]:
    keys = model.extra.get("shown") or tier.prices.keys()
    return {k: v for k, v in tier.prices.items() if k in keys}


def builtin_json(model: PriceModel) -> dict[str, Any]:
    """A built-in (genai-prices) model as Langfuse's ``Model``, plus ``provider``."""
    prices = _shown(model, model.default)
    tiers = []
    for tier in model.all_tiers():
        shaped = tier.to_json()
        shaped["prices"] = {k: float(v) for k, v in _shown(model, tier).items()}
        tiers.append(shaped)
    return {
        "id": model.id,
        "modelName": model.model_name,
        "matchPattern": model.match_pattern,
        "startDate": None,
        "unit": "TOKENS",
        "inputPrice": _price(prices.get("input")),
        "outputPrice": _price(prices.get("output")),
        "totalPrice": None,
        "tokenizerId": model.tokenizer_id,
        "tokenizerConfig": None,
        "isLangfuseManaged": True,
        "createdAt": _EPOCH,
        "prices": {k: {"price": float(v)} for k, v in prices.items()},
        "pricingTiers": tiers,
        "provider": model.provider,
    }


# --- usage (analytics.usage): the users API, the daily metrics API, session totals ---------


def usage_json(usage: Usage) -> dict[str, Any]:
    """Observations, tokens and cost, as the users API and a session's totals name them."""
    return {
        "countObservations": usage.observations,
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
        "totalTokens": usage.total_tokens,
        "totalCost": usage.cost,
    }


def user_json(user: UserTotals) -> dict[str, Any]:
    """A user of the users API: ``userId``, first and last seen, traces, usage."""
    return {
        "userId": user.user_id,
        "firstSeen": format_ts(user.first_seen),
        "lastSeen": format_ts(user.last_seen),
        "countTraces": user.traces,
        **usage_json(user.usage),
    }


def daily_json(day: DayUsage) -> dict[str, Any]:
    """A day of Langfuse's daily metrics (``/api/public/metrics/daily``)."""
    return {
        "date": day.date,
        "countTraces": day.traces,
        "countObservations": day.usage.observations,
        "totalCost": day.usage.cost,
        "usage": [
            {
                "model": m.model,
                "inputUsage": m.usage.input_tokens,
                "outputUsage": m.usage.output_tokens,
                "totalUsage": m.usage.total_tokens,
                "countTraces": m.traces,
                "countObservations": m.usage.observations,
                "totalCost": m.usage.cost,
            }
            for m in day.models
        ],
    }


# --- projects --------------------------------------------------------------------------


def project_json(row: dict[str, Any]) -> dict[str, Any]:
    """A Project (with its organisation), as ``auth_check()`` reads it."""
    item = {
        "id": row["id"],
        "name": row["name"],
        "organization": {"id": row["org_id"], "name": row["org_name"]},
        "metadata": row["metadata"] if isinstance(row["metadata"], dict) else {},
    }
    if row["retention_days"]:
        item["retentionDays"] = row["retention_days"]
    return item


def channel_json(d: Dialect, row: dict[str, Any]) -> dict[str, Any]:
    """A stored alert channel; its secrets masked (never decrypted to be shown)."""
    return {
        "id": row["id"],
        "name": row["name"],
        "type": row["kind"],
        "config": masked_config(row["kind"], row["config"], row["secret_names"]),
        "createdAt": d.ts_out(row["created_at"]),
        "updatedAt": d.ts_out(row["updated_at"]),
    }


# --- dashboards ------------------------------------------------------------------------


def _named(d: Dialect, row: dict[str, Any]) -> dict[str, Any]:
    """What a dashboard and a widget both have: id, times, name, description."""
    return {
        "id": row["id"],
        "createdAt": d.ts_out(row["created_at"]),
        "updatedAt": d.ts_out(row["updated_at"]),
        "name": row["name"],
        "description": row["description"],
    }


def widget_json(d: Dialect, row: dict[str, Any]) -> dict[str, Any]:
    """A stored widget as Langfuse's ``unstable DashboardWidget``."""
    return {
        **_named(d, row),
        "view": row["view"],
        "dimensions": row["dimensions"],
        "metrics": row["metrics"],
        "filters": row["filters"],
        "chartType": row["chart_type"],
        "chartConfig": row["chart_config"],
    }


def dashboard_json(d: Dialect, row: dict[str, Any]) -> dict[str, Any]:
    """A stored dashboard as Langfuse's ``unstable Dashboard``."""
    return {
        **_named(d, row),
        "definition": row["definition"],
        "filters": row["filters"],
    }


def budget_json(row: dict[str, Any]) -> dict[str, Any]:
    """A stored budget (``store.budgets``) as the budgets API shows it."""
    return {
        "id": row["id"],
        "name": row["name"],
        "scope": row["scope"],
        "scopeValue": row["scope_value"],
        "period": row["period"],
        "limitUsd": row["limit_usd"],
        "softPercent": row["soft_percent"],
        "channelIds": list(row["channel_ids"]),
        "createdAt": format_ts(row["created_at"]),
        "updatedAt": format_ts(row["updated_at"]),
    }


def crossing_json(row: dict[str, Any]) -> dict[str, Any]:
    """A recorded crossing of a budget's soft threshold or limit."""
    return {
        "level": row["level"],
        "periodStart": None if row["period_start"] == "total" else row["period_start"],
        "spentUsd": row["spent_usd"],
        "limitUsd": float(row["limit_usd"]),
        "at": format_ts(row["at"]),
    }


def _ts(value: Any) -> str | None:
    return None if value is None else format_ts(value)


def alert_rule_json(row: dict[str, Any]) -> dict[str, Any]:
    """A stored alert rule: its definition (API names), its condition in words and its
    evaluation state."""
    return {
        "id": row["id"],
        **api_fields(row),
        "condition": describe(row),
        "state": {
            "status": row["status"],
            "value": row["last_value"],
            "threshold": row["last_threshold"],
            "samples": row["last_samples"],
            "evaluatedAt": _ts(row["last_eval_at"]),
            "firingSince": _ts(row["firing_since"]),
            "notifiedAt": _ts(row["notified_at"]),
            "nextEvaluationAt": _ts(row["next_eval_at"]),
        },
        "createdAt": _ts(row["created_at"]),
        "updatedAt": _ts(row["updated_at"]),
    }


def alert_event_json(row: dict[str, Any]) -> dict[str, Any]:
    """One entry of the alert history."""
    return {
        "id": row["id"],
        "source": row.get("source", "rule"),
        "ruleId": row["rule_id"],
        "at": _ts(row["at"]),
        "kind": row["kind"],
        "value": row["value"],
        "threshold": row["threshold"],
        "channelId": row["channel_id"],
        "message": row["message"],
    }


def ab_test_json(row: dict[str, Any]) -> dict[str, Any]:
    """A stored A/B test (``store.ab_tests``) as the ab-tests API shows it (the SDK
    assigns from ``id``, ``salt``, ``state``, ``variants``, ``control`` and ``winner``)."""
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "unit": row["unit"],
        "state": row["state"],
        "variants": [dict(v) for v in row["variants"]],
        "control": row["control"],
        "winner": row["winner"],
        "prompt": row["prompt"],
        "primaryMetric": row["primary_metric"],
        "guardrailMetrics": list(row["guardrails"]),
        "minimumDetectableEffect": row["mde"],
        "alpha": row["alpha"],
        "salt": row["salt"],
        "createdAt": format_ts(row["created_at"]),
        "updatedAt": format_ts(row["updated_at"]),
        "startedAt": format_ts(row["started_at"]) if row["started_at"] else None,
        "stoppedAt": format_ts(row["stopped_at"]) if row["stopped_at"] else None,
        "concludedAt": format_ts(row["concluded_at"]) if row["concluded_at"] else None,
    }
