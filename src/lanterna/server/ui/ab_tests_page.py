"""A/B tests: the list with a form for a new test, one test's readout (verdict, SRM
warning, per-variant table, charts of the metric's distribution and of the cumulative
effect with its interval, cost, latency and error rate) with its edit form and the
start, stop and conclude buttons, and the ad-hoc comparison page (any metadata key,
tags or prompt version). The operations are the API's (``server/ab_test_ops.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...abtests import rules
from ...errors import Conflict, InvalidInput
from .. import ab_test_ops as ops
from ..audit import audit
from ..shapes import ab_test_json
from .metrics_page import COLORS, label
from .web import Form, Page, page_form, project_page, redirect, render, rt_of

router = APIRouter()


def _base(page: Page) -> str:
    return f"/project/{page.pid}/ab-tests"


def _variants(text: str) -> list[dict[str, Any]]:
    """Variant lines ``name weight [prompt version or label]`` -> the API's variants."""
    out = []
    for i, line in enumerate(x for x in text.splitlines() if x.strip()):
        parts = line.split()
        if len(parts) < 2:
            raise InvalidInput(f"variants line {i + 1}: write 'name weight [version or label]'")
        try:
            weight = float(parts[1])
        except ValueError:
            raise InvalidInput(f"variants line {i + 1}: the weight must be a number") from None
        entry: dict[str, Any] = {"name": parts[0], "weight": weight}
        if len(parts) > 2:
            key = "promptVersion" if parts[2].isdigit() else "promptLabel"
            entry[key] = int(parts[2]) if key == "promptVersion" else parts[2]
        out.append(entry)
    return out


def _body(form: Form, *, draft: bool) -> dict[str, Any]:
    """The API body from the page's form (a started test's variants are not sent)."""
    body: dict[str, Any] = {
        "description": form.get("description") or None,
        "primaryMetric": form.get("primary_metric") or None,
        "guardrailMetrics": [g.strip() for g in form.get("guardrails").split(",") if g.strip()],
    }
    mde = form.get("mde").strip()
    if mde:
        try:
            body["minimumDetectableEffect"] = float(mde)
        except ValueError:
            raise InvalidInput("minimumDetectableEffect: enter a number") from None
    if draft:
        body["variants"] = _variants(form.get("variants"))
        body["prompt"] = form.get("prompt") or None
        body["unit"] = form.get("unit") or "user"
        if form.get("control"):
            body["control"] = form.get("control")
    return body


def charts(out: dict[str, Any]) -> list[dict[str, Any]]:
    """Plotly specs: the primary metric per variant with its interval, its distribution,
    and the cumulative difference against the control with its interval. Names and
    values users chose reach plotly escaped (``label``)."""
    primary = out["primary"]
    variants = out["variants"]
    specs: list[dict[str, Any]] = []
    if primary["kind"] != "categorical":
        summaries = [primary["variants"][v] for v in variants]
        means = [s["mean"] for s in summaries]
        specs.append(
            {
                "id": "chart-means",
                "title": label(f"{primary['metric']}: mean and 95 % interval per variant"),
                "data": [
                    {
                        "type": "bar",
                        "x": [label(v) for v in variants],
                        "y": means,
                        "marker": {"color": [COLORS[i % len(COLORS)] for i in range(len(means))]},
                        "error_y": {
                            "type": "data",
                            "symmetric": False,
                            "array": [
                                (s["ciHigh"] - s["mean"]) if s.get("ciHigh") is not None else 0
                                for s in summaries
                            ],
                            "arrayminus": [
                                (s["mean"] - s["ciLow"]) if s.get("ciLow") is not None else 0
                                for s in summaries
                            ],
                        },
                    }
                ],
            }
        )
    # Cost and latency are read as sums (no values, so no distribution), and a variant
    # without traces has none: such variants draw no bars; no chart when none has one.
    shares = out.get("distribution") or {}
    if any(shares.get(v, {}).get("x") for v in variants):
        specs.append(
            {
                "id": "chart-distribution",
                "title": label(f"{primary['metric']}: distribution per variant"),
                "layout": {"barmode": "group", "yaxis": {"tickformat": ".0%"}},
                "data": [
                    {
                        "type": "bar",
                        "name": label(v),
                        "x": [label(x) for x in shares.get(v, {}).get("x", [])],
                        "y": shares.get(v, {}).get("share", []),
                        "marker": {"color": COLORS[i % len(COLORS)]},
                    }
                    for i, v in enumerate(variants)
                ],
            }
        )
    if out["cumulative"]:
        data: list[dict[str, Any]] = []
        xs = [p["bucket"] for p in out["cumulative"]]
        for i, v in enumerate(v for v in variants if v != out["control"]):
            color = COLORS[(i + 1) % len(COLORS)]
            points = [p["variants"][v] for p in out["cumulative"]]
            data += [
                {"x": xs, "y": [p["ciHigh"] for p in points], "mode": "lines",
                 "line": {"width": 0}, "showlegend": False, "hoverinfo": "skip"},
                {"x": xs, "y": [p["ciLow"] for p in points], "mode": "lines",
                 "line": {"width": 0}, "fill": "tonexty", "fillcolor": "rgba(91,141,239,0.2)",
                 "name": label(f"{v} 95 % interval")},
                {"x": xs, "y": [p["difference"] for p in points], "mode": "lines+markers",
                 "line": {"color": color}, "name": label(f"{v} minus {out['control']}")},
            ]  # fmt: skip
        specs.append(
            {
                "id": "chart-cumulative",
                "title": label("Cumulative difference against the control (UTC hours)"),
                "data": data,
                "layout": {
                    "shapes": [
                        {
                            "type": "line",
                            "xref": "paper",
                            "x0": 0,
                            "x1": 1,
                            "y0": 0,
                            "y1": 0,
                            "line": {"dash": "dot"},
                        }
                    ]
                },
            }
        )
    return specs


async def _list(
    request: Request, page: Page, *, status: int = 200, error: str = "", form: Any = None
) -> Response:
    rt = rt_of(request)
    rows = await rt.read(lambda c: rt.store.ab_tests.list_all(c, page.pid))
    context = {
        "tests": [ab_test_json(r) for r in rows],
        "error": error,
        "form": form or {},
        "units": rules.UNITS,
        "builtin": rules.BUILTIN_METRICS,
    }
    return render(request, "ab_tests.html", context, page=page, status=status)


@router.get("/project/{project_id}/ab-tests")
async def ab_tests(request: Request, project_id: str) -> Response:
    """The A/B tests of the project and the form for a new one."""
    page = await project_page(request, project_id)
    return await _list(request, page)


@router.post("/project/{project_id}/ab-tests")
async def create_ab_test(request: Request, project_id: str) -> Response:
    """Create a draft test (admins and owners); the form again with the reason."""
    page, form = await page_form(request, project_id, "manage_project")
    try:
        body = {"name": form.get("name") or None, **_body(form, draft=True)}
        created = await ops.create(rt_of(request), page.pid, body)
    except (InvalidInput, Conflict) as exc:
        return await _list(request, page, status=exc.status, error=str(exc), form=dict(form.pairs))
    await audit(rt_of(request), page, "ab_test.create", created["name"])
    return redirect(f"{_base(page)}/{created['name']}")


@router.get("/project/{project_id}/ab-tests/compare")
async def compare(request: Request, project_id: str) -> Response:
    """Compare groups of traces by a metadata key, tags or prompt version."""
    page = await project_page(request, project_id)
    q = request.query_params
    params = {
        "groupBy": q.get("groupBy", "metadata.variant"),
        "metric": q.get("metric", ""),
        "tags": q.get("tags", ""),
        "prompt": q.get("prompt", ""),
        "control": q.get("control", ""),
    }
    out, error, status = None, "", 200
    if params["metric"]:
        try:
            out = await ops.compare(
                rt_of(request),
                page.pid,
                group_by=params["groupBy"],
                metric=params["metric"],
                tags=[t.strip() for t in params["tags"].split(",") if t.strip()],
                prompt=params["prompt"] or None,
                control=params["control"] or None,
            )
        except InvalidInput as exc:
            error, status = str(exc), 400
    context = {"p": params, "out": out, "charts": charts(out) if out else [], "error": error}
    return render(request, "ab_compare.html", context, page=page, status=status)


async def _one(
    request: Request, page: Page, name: str, *, status: int = 200, error: str = ""
) -> Response:
    rt = rt_of(request)
    q = request.query_params
    test = await ops.get(rt, page.pid, name)
    out, read_error = None, ""
    try:
        out = await ops.readout(rt, page.pid, name, metric=q.get("metric") or None)
    except InvalidInput as exc:
        read_error = str(exc)
    variants_text = "\n".join(
        f"{v['name']} {v['weight']:g}"
        + (f" {v['promptVersion']}" if v["promptVersion"] is not None else "")
        + (f" {v['promptLabel']}" if v["promptLabel"] else "")
        for v in test["variants"]
    )
    context = {
        "t": test,
        "out": out,
        "charts": charts(out) if out else [],
        "error": error or read_error,
        "variants_text": variants_text,
        "units": rules.UNITS,
    }
    return render(request, "ab_test.html", context, page=page, status=status)


@router.get("/project/{project_id}/ab-tests/{name}")
async def ab_test(request: Request, project_id: str, name: str) -> Response:
    """One test: its readout, verdict and charts."""
    page = await project_page(request, project_id)
    return await _one(request, page, name)


@router.post("/project/{project_id}/ab-tests/{name}/update")
async def update_ab_test(request: Request, project_id: str, name: str) -> Response:
    """Change a test (a started one keeps its variants and weights)."""
    page, form = await page_form(request, project_id, "manage_project")
    rt = rt_of(request)
    try:
        test = await ops.get(rt, page.pid, name)
        await ops.update(rt, page.pid, name, _body(form, draft=test["state"] == "draft"))
    except (InvalidInput, Conflict) as exc:
        return await _one(request, page, name, status=exc.status, error=str(exc))
    await audit(rt, page, "ab_test.update", name)
    return redirect(f"{_base(page)}/{name}")


@router.post("/project/{project_id}/ab-tests/{name}/{action}")
async def act(request: Request, project_id: str, name: str, action: str) -> Response:
    """Start, stop, conclude (with a winner, optionally promoted) or delete a test."""
    page, form = await page_form(request, project_id, "manage_project")
    rt = rt_of(request)
    try:
        if action == "delete":
            if await rt.write(lambda c: rt.store.ab_tests.delete(c, page.pid, name)):
                await audit(rt, page, "ab_test.delete", name)
            return redirect(_base(page))
        if action not in rules.TRANSITIONS:
            raise InvalidInput(f"unknown action {action!r}")
        await ops.act(
            rt,
            page.pid,
            name,
            action,
            form.get("winner") or None,
            promote=form.get("promote") == "on",
        )
    except (InvalidInput, Conflict) as exc:
        return await _one(request, page, name, status=exc.status, error=str(exc))
    await audit(rt, page, f"ab_test.{action}", name)
    return redirect(f"{_base(page)}/{name}")
