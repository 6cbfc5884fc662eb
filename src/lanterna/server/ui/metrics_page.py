"""The metrics dashboard: totals and charts over a chosen range (analytics.metrics)."""

from __future__ import annotations

import html
import math
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...analytics import metrics
from ...analytics.app_traffic import NOT_APP
from ...store.db import Conn
from .fmt import duration
from .ranges import METRIC_RANGES, bounded_range
from .web import project_page, render, rt_of

router = APIRouter()

COLORS = ["#5b8def", "#9b6cf0", "#3aa55d", "#e3a030", "#d9534f", "#0f6d77", "#8a2a8a", "#7a7f8a"]


def label(text: Any) -> str:
    """A user-provided value as plotly text: plotly reads a few HTML tags in labels, so
    ``<``, ``>`` and ``&`` are escaped (it shows the entities as the characters; quotes,
    which it would show as entities, need none outside a tag)."""
    return html.escape(str(text), quote=False)


#: The trace filters of the page besides the range, as URL parameters.
TEXT_FILTERS = ("env", "name", "user", "release", "model")


def scope_of(request: Request, project_id: str) -> tuple[metrics.Scope, dict[str, Any], str]:
    """The range (``range`` preset or ``custom`` ``from``/``to``), environment, trace
    name, user, tags (``tag``, comma-separated or repeated: all of them), release,
    model and metadata (``meta=key=value``, repeatable: all of them), and the error
    to show (a range or a metadata filter the page cannot use)."""
    q = request.query_params
    window = bounded_range(q)
    text = {k: q.get(k, "").strip() for k in TEXT_FILTERS}
    tags = [t.strip() for raw in q.getlist("tag") for t in raw.split(",") if t.strip()]
    meta = [m.strip() for m in q.getlist("meta") if m.strip()]
    pairs: list[tuple[str, str]] = []
    error = window.error
    for item in meta:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            error = error or f"Metadata filter {item!r}: write it as key=value"
            continue
        pairs.append((key.strip(), value.strip()))
    scope = metrics.Scope(
        project_id,
        window.start,
        window.end,
        (text["env"],) if text["env"] else (),
        user_id=text["user"] or None,
        trace_name=text["name"] or None,
        tags=tags,
        release=text["release"] or None,
        model=text["model"] or None,
        metadata=pairs,
        # The evaluation judge's own traffic is not the app's, unless asked for.
        exclude_environments=() if text["env"] else NOT_APP,
    )
    return scope, {**window.params, **text, "tag": tags, "meta": meta}, error


def charts(
    data: dict[str, Any],
    top_users: list[Any],
    top_sessions: list[Any],
    scores: dict[str, list[float | None]],
) -> list[dict[str, Any]]:
    """Plotly figure specs (data + layout) for each chart."""
    x = data["buckets"]
    series = data["series"]
    totals = data["totals"]
    cost_traces = [
        {
            "type": "bar",
            "name": label(model),
            "x": x,
            "y": values,
            "marker": {"color": COLORS[i % 8]},
        }
        for i, (model, values) in enumerate(series["costByModel"].items())
    ] or [{"type": "bar", "name": "cost", "x": x, "y": [0] * len(x)}]
    hist = data["histogram"]
    marks = [
        (name, totals[key])
        for name, key in (("p50", "p50Latency"), ("p95", "p95Latency"), ("p99", "p99Latency"))
        if totals[key] is not None
    ]
    return [
        {
            "id": "chart-cost",
            "title": "Cost by model (USD)",
            "data": cost_traces,
            "layout": {"barmode": "stack", "yaxis": {"tickprefix": "$"}},
        },
        {
            "id": "chart-latency",
            "title": "Trace latency distribution (s)",
            "data": [
                {
                    "type": "bar",
                    "name": "traces",
                    "x": [h["seconds"] for h in hist],
                    "y": [h["count"] for h in hist],
                    "marker": {"color": COLORS[0]},
                }
            ],
            "layout": {
                "xaxis": {"type": "log", "title": {"text": "seconds"}},
                "bargap": 0.05,
                "shapes": [
                    {
                        "type": "line",
                        "x0": v,
                        "x1": v,
                        "yref": "paper",
                        "y0": 0,
                        "y1": 1,
                        "line": {"dash": "dot", "color": COLORS[4]},
                    }
                    for _, v in marks
                ],
                "annotations": percentile_labels(marks, [h["seconds"] for h in hist]),
            },
        },
        {
            "id": "chart-tokens",
            "title": "Token usage",
            "data": [
                {
                    "type": "bar",
                    "name": "input",
                    "x": x,
                    "y": series["inputTokens"],
                    "marker": {"color": COLORS[0]},
                },
                {
                    "type": "bar",
                    "name": "output",
                    "x": x,
                    "y": series["outputTokens"],
                    "marker": {"color": COLORS[1]},
                },
            ],
            "layout": {"barmode": "stack"},
        },
        {
            "id": "chart-errors",
            "title": "Error rate (traces with an ERROR)",
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": "error rate",
                    "x": x,
                    "y": series["errorRate"],
                    "line": {"color": COLORS[4]},
                    "connectgaps": False,
                }
            ],
            "layout": {"yaxis": {"tickformat": ".0%", "rangemode": "tozero"}},
        },
        {
            "id": "chart-traces",
            "title": "Requests (traces)",
            "data": [
                {
                    "type": "bar",
                    "name": "traces",
                    "x": x,
                    "y": series["traces"],
                    "marker": {"color": COLORS[2]},
                }
            ],
            "layout": {},
        },
        {
            "id": "chart-scores",
            "title": "Score averages",
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": label(name),
                    "x": x,
                    "y": values,
                    "connectgaps": True,
                    "line": {"color": COLORS[i % 8]},
                }
                for i, (name, values) in enumerate(scores.items())
            ]
            or [
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": "no scores",
                    "x": x,
                    "y": [None] * len(x),
                }
            ],
            "layout": {},
        },
        top_chart("chart-top-users", "Top users by cost", top_users, COLORS[3]),
        top_chart("chart-top-sessions", "Top sessions by cost", top_sessions, COLORS[5]),
    ]


def top_chart(chart_id: str, title: str, top: list[Any], color: str) -> dict[str, Any]:
    """A horizontal bar per user or session, the costliest on top, each bar labelled:
    a category axis with a tick per bar (plotly would skip every other label of a
    crowded axis, and read ids that look like numbers as numbers)."""
    ids = [str(t["id"]) for t in reversed(top)]
    names = [label(i) for i in ids]
    return {
        "id": chart_id,
        "title": title,
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "name": "cost",
                "x": [t["cost"] for t in reversed(top)],
                "y": names,
                "marker": {"color": color},
            }
        ],
        "layout": {
            "xaxis": {"tickprefix": "$"},
            "yaxis": {
                "type": "category",
                "tickmode": "array",
                "tickvals": names,
                "ticktext": [label(i if len(i) <= 24 else i[:23] + "…") for i in ids],
                "automargin": True,
                "tickfont": {"size": 11},
            },
            "margin": {"l": 120},
        },
    }


def percentile_labels(marks: list[tuple[str, float]], buckets: list[float]) -> list[Any]:
    """The p50/p95/p99 labels of the latency histogram: one row each from the top (so
    close values never print over each other), on the side of their line that has room."""
    if not marks:
        return []
    logs = [math.log10(b) for b in buckets if b > 0] or [math.log10(v) for _, v in marks]
    middle = (min(logs) + max(logs)) / 2
    return [
        {
            # Annotations on a log axis take log10 positions (shapes do not).
            "x": math.log10(v),
            "y": 1 - 0.13 * i,
            "yref": "paper",
            "yanchor": "top",
            "text": f"{name} {duration(v)}",
            "showarrow": False,
            "xanchor": "left" if math.log10(v) <= middle else "right",
            "xshift": 4 if math.log10(v) <= middle else -4,
            "xref": "x",
            "bgcolor": "rgba(255,255,255,0.85)",
            "font": {"color": COLORS[4]},
        }
        for i, (name, v) in enumerate(marks)
    ]


@router.get("/project/{project_id}/metrics")
async def metrics_page(request: Request, project_id: str) -> Response:
    """Totals and charts for the chosen range."""
    page = await project_page(request, project_id)
    scope, params, error = scope_of(request, page.pid)

    events = rt_of(request).store.events_conn

    def read(conn: Conn) -> tuple[dict[str, Any], list[Any], list[Any], dict[str, Any]]:
        c = events(conn)
        return (
            metrics.overview(c, scope),
            metrics.top_by_cost(c, scope, "user_id"),
            metrics.top_by_cost(c, scope, "session_id"),
            metrics.score_series(c, scope),
        )

    data, top_users, top_sessions, scores = await rt_of(request).read(read)
    return render(
        request,
        "metrics.html",
        {
            "p": params,
            "scope": scope,
            "t": data["totals"],
            "charts": charts(data, top_users, top_sessions, scores),
            "top_users": top_users,
            "top_sessions": top_sessions,
            "ranges": tuple(METRIC_RANGES),
            "error": error,
        },
        page=page,
        status=400 if error else 200,
    )
