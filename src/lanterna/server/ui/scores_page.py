"""Scores: the project's scores, filtered by name, source, data type, value and time,
with the distribution of each score name (a histogram for numeric scores, counts of
each value for the others)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...schema import SCORE_DATA_TYPES, SCORE_SOURCES
from ...store.db import Conn
from ...store.filters import Condition, FilterError
from ...store.interface import ScoreDistribution, ScoreQuery
from ..shapes import score_json, score_trace_json
from .fmt import score_value
from .listing import PAGE_SIZE, ListQuery, list_query
from .metrics_page import label
from .web import project_page, render, rt_of

router = APIRouter()

#: The value filter's operators: all of them for a number, = and != for a text value.
VALUE_OPERATORS = ("=", "!=", ">", ">=", "<", "<=")
BAR_COLOR = "#5b8def"


@dataclass(frozen=True)
class ScoreFilters:
    """The page's filters besides the time range and page, as the URL has them."""

    name: str
    source: str
    data_type: str
    op: str
    value: str

    @classmethod
    def from_request(cls, request: Request) -> ScoreFilters:
        q = request.query_params
        op = q.get("op", "=").strip()
        return cls(
            name=q.get("name", "").strip(),
            source=q.get("source", "").strip(),
            data_type=q.get("dataType", "").strip(),
            op=op if op in VALUE_OPERATORS else "=",
            value=q.get("value", "").strip(),
        )

    def params(self) -> dict[str, str]:
        """The filters as query parameters (for the form and the pager's links)."""
        return {
            "name": self.name,
            "source": self.source,
            "dataType": self.data_type,
            "op": self.op if self.value else "",
            "value": self.value,
        }

    def query(self, lq: ListQuery) -> ScoreQuery:
        """The store query; raises FilterError for a value that cannot be compared."""
        if self.source and self.source not in SCORE_SOURCES:
            raise FilterError(f"source: one of {', '.join(SCORE_SOURCES)}")
        if self.data_type and self.data_type not in SCORE_DATA_TYPES:
            raise FilterError(f"data type: one of {', '.join(SCORE_DATA_TYPES)}")
        query = ScoreQuery(
            name=self.name or None,
            source=self.source or None,
            data_type=self.data_type or None,
            from_timestamp=lq.start,
            to_timestamp=lq.end,
        )
        if self.value:
            try:
                number = float(self.value)
            except ValueError:
                number = None
            if number is not None:
                query.operator, query.value = self.op, number
            elif self.op in ("=", "!="):
                how = "any of" if self.op == "=" else "none of"
                query.filters.append(Condition("stringOptions", "stringValue", how, [self.value]))
            else:
                raise FilterError(f"value: {self.op} needs a number; a text value takes = or !=")
        return query


def chart(dist: ScoreDistribution, index: int) -> dict[str, Any]:
    """The plotly spec of one distribution: a histogram, or a bar per value."""
    if dist.bins:
        discrete = all(lo == hi for lo, hi, _ in dist.bins)
        x: list[Any] = [
            score_value(lo) if discrete else f"{score_value(lo)} to {score_value(hi)}"
            for lo, hi, _ in dist.bins
        ]
        y = [n for _, _, n in dist.bins]
        axis = {"type": "category", "title": {"text": "value"}}
    else:
        # plotly reads a little HTML in labels: markup characters are escaped (quotes
        # not: plotly would show their entities), as on the metrics page.
        x = [label(v) if v else "(empty)" for v, _ in dist.counts]
        y = [n for _, n in dist.counts]
        axis = {"type": "category"}
    return {
        "id": f"chart-score-{index}",
        "title": "",
        "data": [{"type": "bar", "name": "scores", "x": x, "y": y, "marker": {"color": BAR_COLOR}}],
        "layout": {
            "xaxis": axis,
            "yaxis": {"title": {"text": "scores"}, "rangemode": "tozero"},
            "bargap": 0.05,
            "height": 240,
            "margin": {"t": 16},
        },
    }


def _row(c: Conn, row: dict[str, Any]) -> dict[str, Any]:
    return {**score_json(c.dialect, row), "trace": score_trace_json(c.dialect, row)}


@router.get("/project/{project_id}/scores")
async def scores_page(request: Request, project_id: str) -> Response:
    """The project's scores (newest first) and each name's distribution."""
    page = await project_page(request, project_id)
    lq = list_query(request)
    filters = ScoreFilters.from_request(request)
    error = lq.error
    rows: list[dict[str, Any]] = []
    dists: list[ScoreDistribution] = []
    total = 0
    try:
        query = filters.query(lq)

        rt = rt_of(request)

        def read(c: Conn) -> tuple[list[dict[str, Any]], int, list[ScoreDistribution]]:
            scores = rt.store.scores
            found, count = scores.list_scores(c, page.pid, query, limit=PAGE_SIZE, offset=lq.offset)
            dists = scores.score_distributions(c, page.pid, query)
            return [_row(c, r) for r in found], count, dists

        rows, total, dists = await rt.read(read)
    except FilterError as exc:
        error = str(exc)
    context = lq.context(rows, total)
    context["p"] = {**context["p"], **filters.params()}
    return render(
        request,
        "scores.html",
        {
            **context,
            "error": error,
            "f": filters,
            "dists": dists,
            "charts": [chart(d, i) for i, d in enumerate(dists)],
            "sources": SCORE_SOURCES,
            "data_types": SCORE_DATA_TYPES,
            "operators": VALUE_OPERATORS,
        },
        page=page,
        status=400 if error and not lq.error else 200,
    )
