"""Alerts in the web UI: the project's rules with their state and recent history; a
rule's page with a chart of its metric as the evaluator sees it (value and threshold
line), its history and (admins and owners) the form to change or delete it; a form for a
new rule with a Preview that charts it before it is saved.

Rules are checked by :mod:`lanterna.alerts.rules` as the API checks them (the same
messages, naming the API field); the chart comes from the evaluator itself
(:meth:`~lanterna.alerts.evaluator.Evaluator.series`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...alerts.rules import BASELINES, COMPARATORS, InvalidRule, check_rule, describe
from ...analytics.alert_metrics import FILTERS, METRICS
from ...timeutil import now
from ..audit import audit
from .metrics_page import COLORS
from .web import Form, Page, not_found, page_form, project_page, redirect, render, rt_of

router = APIRouter()

HISTORY_LIMIT = 50
LIST_LIMIT = 200
#: Form fields of whole numbers: form name -> (API field, seconds per unit).
_NUMBERS = {
    "window_minutes": ("windowSeconds", 60),
    "interval_seconds": ("intervalSeconds", 1),
    "min_samples": ("minSamples", 1),
    "cooldown_minutes": ("cooldownSeconds", 60),
    "renotify_minutes": ("renotifySeconds", 60),
}


def alerts_url(pid: str, rule_id: str | None = None, rest: str = "") -> str:
    """The list, or one rule's page (``rest``: a sub-path of it)."""
    base = f"/project/{pid}/alerts"
    return base if rule_id is None else f"{base}/{rule_id}{rest}"


def _number(text: str, scale: int) -> Any:
    """A form number (scaled to seconds), or the text as typed for the check to refuse."""
    try:
        value = float(text)
    except ValueError:
        return text
    scaled = value * scale
    return int(scaled) if scaled == int(scaled) else scaled


def body_of(form: Form) -> dict[str, Any]:
    """The API body a rule form stands for."""
    body: dict[str, Any] = {
        "name": form.get("name"),
        "description": form.get("description"),
        "metric": form.get("metric"),
        "comparator": form.get("comparator"),
        "mode": form.get("mode"),
        "notifyResolved": form.get("notify_resolved") == "on",
        "enabled": form.get("enabled") == "on",
        "channelIds": [c.strip() for c in form.get("channel_ids").split(",") if c.strip()],
        "scoreName": form.get("score_name") or None,
        "threshold": None,
        "baseline": None,
        "factor": None,
    }
    if body["mode"] == "baseline":
        body["baseline"] = form.get("baseline")
        body["factor"] = _number(form.get("factor"), 1) if form.get("factor") else None
    elif form.get("threshold"):
        body["threshold"] = _number(form.get("threshold"), 1)
    for name, (field, scale) in _NUMBERS.items():
        if form.get(name):
            body[field] = _number(form.get(name), scale)
    filters: dict[str, Any] = {}
    for name in FILTERS:
        value = form.get(f"filter_{name}").strip()
        if not value:
            continue
        if name == "metadata":
            pairs = [p.split("=", 1) for p in value.split(",")]
            filters[name] = {k.strip(): v.strip() for k, v in (p for p in pairs if len(p) == 2)}
            if len(filters[name]) != len(pairs):
                filters[name] = value  # refused by the check, with the field's name
        else:
            filters[name] = value
    body["filters"] = filters
    return body


def form_of(row: dict[str, Any]) -> dict[str, str]:
    """A stored rule as the form's values."""

    def n(value: Any) -> str:
        return "" if value is None else f"{value:g}"

    out = {
        "name": row["name"],
        "description": row["description"],
        "metric": row["metric"],
        "score_name": row["score_name"] or "",
        "comparator": row["comparator"],
        "mode": row["mode"],
        "threshold": n(row["threshold"]),
        "baseline": row["baseline"] or "",
        "factor": n(row["factor"]),
        "window_minutes": n(row["window_s"] / 60),
        "interval_seconds": str(row["interval_s"]),
        "min_samples": str(row["min_samples"]),
        "cooldown_minutes": n(row["cooldown_s"] / 60),
        "renotify_minutes": n(row["renotify_s"] / 60),
        "notify_resolved": "on" if row["notify_resolved"] else "",
        "enabled": "on" if row["enabled"] else "",
        "channel_ids": ", ".join(row["channel_ids"]),
    }
    for name in FILTERS:
        value = row["filters"].get(name, "")
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        out[f"filter_{name}"] = value
    return out


_NEW_RULE = {
    "comparator": ">", "mode": "threshold", "metric": "error_rate", "threshold": "5",
    "window_minutes": "5", "interval_seconds": "60", "min_samples": "1",
    "cooldown_minutes": "10", "renotify_minutes": "0", "notify_resolved": "on", "enabled": "on",
}  # fmt: skip


async def chart_of(
    request: Request, pid: str, fields: dict[str, Any], chart_id: str
) -> dict[str, Any]:
    """The plotly spec of a rule's metric over the last 24 windows and its threshold."""
    rule = {**fields, "project_id": pid}
    series = await run_in_threadpool(rt_of(request).evaluator.series, rule, now())
    xs = [at.isoformat() for at, _, _ in series]
    data = [
        {"type": "scatter", "mode": "lines+markers", "name": METRICS[fields["metric"]].label,
         "x": xs, "y": [v for _, v, _ in series], "line": {"color": COLORS[0]}},
        {"type": "scatter", "mode": "lines", "name": "threshold", "x": xs,
         "y": [t for _, _, t in series], "line": {"color": COLORS[4], "dash": "dash"}},
    ]  # fmt: skip
    layout = {
        "xaxis": {"type": "date"},
        "yaxis": {"rangemode": "tozero"},
        "margin": {"l": 56, "r": 16, "t": 12, "b": 40},
    }
    return {"id": chart_id, "data": data, "layout": layout}


def _choices() -> dict[str, Any]:
    return {
        "metrics": {k: m.label for k, m in METRICS.items()},
        "comparators": COMPARATORS,
        "baselines": BASELINES,
        "filter_names": tuple(FILTERS),
        "url": alerts_url,
    }


@router.get("/project/{project_id}/alerts")
async def alerts_list(request: Request, project_id: str) -> Response:
    """The project's rules with their state, and its recent alert history."""
    page = await project_page(request, project_id)
    return await _list_response(request, page)


async def _list_response(
    request: Request,
    page: Page,
    error: str = "",
    form: dict[str, str] | None = None,
    chart: dict[str, Any] | None = None,
) -> Response:
    rt = rt_of(request)
    store = rt.store.alerts

    def read(c: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
        rules, _ = store.page_rules(c, page.pid, LIST_LIMIT, 0)
        events, _ = store.page_events(c, page.pid, None, HISTORY_LIMIT, 0)
        budgets = {b["id"]: b["name"] for b in rt.store.budgets.list_all(c, page.pid)}
        return rules, events, budgets

    rules, events, budget_names = await rt.read(read)
    names = {r["id"]: r["name"] for r in rules}
    return render(
        request,
        "alerts.html",
        {
            "rules": [{**r, "condition": describe(r)} for r in rules],
            "events": events,
            "names": names,
            "budget_names": budget_names,
            "error": error,
            "f": form or _NEW_RULE,
            "open_form": form is not None,
            "chart": chart,
            **_choices(),
        },
        page=page,
        status=400 if error else 200,
    )


@router.post("/project/{project_id}/alerts")
async def create_rule(request: Request, project_id: str) -> Response:
    """A new rule (admins and owners), or a preview of it (``preview`` button)."""
    page, form = await page_form(request, project_id, "edit_alerts")
    values = dict(form.pairs)
    try:
        fields = check_rule(body_of(form))
    except InvalidRule as exc:
        return await _list_response(request, page, error=exc.message, form=values)
    if form.get("action") == "preview":
        chart = await chart_of(request, page.pid, fields, "rule-preview")
        return await _list_response(request, page, form=values, chart=chart)
    store = rt_of(request).store.alerts
    row = await rt_of(request).write(lambda c: store.create_rule(c, page.pid, fields))
    await audit(rt_of(request), page, "alert_rule.create", row["id"], {"name": row["name"]})
    return redirect(alerts_url(page.pid, row["id"]))


@router.get("/project/{project_id}/alerts/{rule_id}")
async def rule_page(request: Request, project_id: str, rule_id: str) -> Response:
    """One rule: its condition and state, its chart, its history, the edit form."""
    page = await project_page(request, project_id)
    return await _rule_response(request, page, rule_id)


async def _rule_response(
    request: Request,
    page: Page,
    rule_id: str,
    error: str = "",
    form: dict[str, str] | None = None,
    preview: dict[str, Any] | None = None,
) -> Response:
    rt = rt_of(request)
    store = rt.store.alerts

    def read(c: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        rule = store.get_rule(c, page.pid, rule_id)
        events, _ = store.page_events(c, page.pid, rule_id, HISTORY_LIMIT, 0)
        return rule, events

    rule, events = await rt.read(read)
    if rule is None:
        raise not_found()
    chart = await chart_of(request, page.pid, preview or rule, "rule-chart")
    return render(
        request,
        "alert_rule.html",
        {
            "rule": rule,
            "condition": describe(preview or rule),
            "events": events,
            "chart": chart,
            "previewing": preview is not None,
            "error": error,
            "f": form or form_of(rule),
            **_choices(),
        },
        page=page,
        status=400 if error else 200,
    )


@router.post("/project/{project_id}/alerts/{rule_id}")
async def update_rule(request: Request, project_id: str, rule_id: str) -> Response:
    """Change a rule (admins and owners), or preview the change (``preview`` button)."""
    page, form = await page_form(request, project_id, "edit_alerts")
    values = dict(form.pairs)
    try:
        fields = check_rule(body_of(form))
    except InvalidRule as exc:
        return await _rule_response(request, page, rule_id, error=exc.message, form=values)
    if form.get("action") == "preview":
        return await _rule_response(request, page, rule_id, form=values, preview=fields)
    store = rt_of(request).store.alerts
    row = await rt_of(request).write(lambda c: store.update_rule(c, page.pid, rule_id, fields))
    if row is None:
        raise not_found()
    await audit(rt_of(request), page, "alert_rule.update", rule_id)
    return redirect(alerts_url(page.pid, rule_id))


@router.post("/project/{project_id}/alerts/{rule_id}/delete")
async def delete_rule(request: Request, project_id: str, rule_id: str) -> Response:
    """Delete a rule and its history (admins and owners)."""
    page, _form = await page_form(request, project_id, "edit_alerts")
    store = rt_of(request).store.alerts
    if not await rt_of(request).write(lambda c: store.delete_rule(c, page.pid, rule_id)):
        raise not_found()
    await audit(rt_of(request), page, "alert_rule.delete", rule_id)
    return redirect(alerts_url(page.pid))
