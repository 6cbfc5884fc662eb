"""The app's own traffic: the evaluation judge's traces (environment
``lanterna-evaluation``, :data:`~lanterna.ingest.environment.EVALUATION_ENVIRONMENT`)
are the evaluation's cost, not the app's. Budgets, alert rules, the metrics page and
the custom dashboards leave that environment out unless their filters name an
environment (filter for ``lanterna-evaluation`` to see the judge's own cost). The
public metrics API answers what it is asked, as Langfuse's does.

The exclusion is an ``environment`` ``none of`` condition, which the query planner
answers from the rollups like an equality filter (``rollup_read.Excluding``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..ingest.environment import EVALUATION_ENVIRONMENT

#: The environments left out of the app's figures.
NOT_APP = (EVALUATION_ENVIRONMENT,)


def app_filters(filters: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``filters`` (metrics query conditions) with the evaluation environment left out,
    unless one of them names ``environment`` already."""
    if any(f.get("column") == "environment" for f in filters):
        return list(filters)
    leave_out = {"type": "stringOptions", "column": "environment", "operator": "none of",
                 "value": list(NOT_APP)}  # fmt: skip
    return [*filters, leave_out]
