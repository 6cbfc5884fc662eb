"""The default dashboard's "Top models by cost" counts observations with a model."""

from __future__ import annotations

from ... import _json
from ..db import Conn

_NAME = "Top models by cost (USD)"
_OLD = [{"column": "type", "operator": "=", "value": "GENERATION", "type": "string"}]
_NEW = [{"column": "providedModelName", "operator": "is not null", "type": "null"}]


def up(conn: Conn) -> None:
    """The default dashboard's widget "Top models by cost (USD)" filtered on
    ``type = GENERATION``, which the observation rollups do not key by: over 30 days of
    10 M observations it read every observation of the range (28 s on SQLite). It now
    keeps the observations with a model (``providedModelName is not null``: generations
    and embeddings), answered from the model rollup. Widgets a user changed (another
    name or filter) are left as they are."""
    for r in conn.all(
        "SELECT project_id, id, filters FROM dashboard_widgets WHERE name = ?", [_NAME]
    ):
        filters = r["filters"]
        if isinstance(filters, str):
            filters = _json.loads(filters)
        if filters == _OLD:
            conn.run(
                "UPDATE dashboard_widgets SET filters = ? WHERE project_id = ? AND id = ?",
                [conn.dialect.json(_NEW), r["project_id"], r["id"]],
            )
