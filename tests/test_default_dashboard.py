"""The default dashboard's widgets are answered from the rollups (over 30 days of
10 M observations a widget on raw rows took 28-62 s on SQLite), and migration 0046
moves a stored default "Top models by cost" off its type filter."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from helpers import T0, write_row
from lanterna import _json
from lanterna.analytics import dashboards as rules
from lanterna.analytics.query import explain
from lanterna.server.ui.dashboards_page import ensure_default
from lanterna.store.db import Database
from lanterna.store.migrations import m0046_default_top_models as m0046

pytestmark = pytest.mark.clickhouse


@pytest.mark.parametrize("widget", rules.DEFAULT_WIDGETS, ids=lambda w: w["name"])
def test_each_default_widget_reads_the_rollups(widget: dict[str, Any]) -> None:
    checked = rules.check_widget(widget, legacy=True)
    query = rules.widget_query(checked, T0 - timedelta(days=30), T0, [])
    plan = explain(query, approximate=True)  # as the dashboard page asks
    assert plan.path == "rollup", plan.reason


def test_migration_0046_moves_the_stored_default_widget(api, db_url):
    rt = api.app.state.runtime
    store, pid = rt.store.dashboards, api.project.id
    rt.writer.run_sync(lambda c: ensure_default(store, c, pid))  # the web UI's first visit
    widgets = api.get("/api/public/unstable/dashboard-widgets").json()["data"]
    top = next(w for w in widgets if w["name"] == m0046._NAME)
    assert top["filters"] == m0046._NEW
    # A project whose default dashboard was made before: the old filter.
    write_row(
        db_url,
        "UPDATE dashboard_widgets SET filters = ? WHERE project_id = ? AND id = ?",
        [_json.dumps(m0046._OLD), pid, top["id"]],
    )
    db = Database(db_url)
    try:
        with db.transaction() as conn:
            m0046.up(conn)
    finally:
        db.close()
    widgets = api.get("/api/public/unstable/dashboard-widgets").json()["data"]
    assert next(w for w in widgets if w["id"] == top["id"])["filters"] == m0046._NEW
