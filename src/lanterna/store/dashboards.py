"""A project's custom dashboards and dashboard widgets (checked by
:mod:`lanterna.analytics.dashboards`; stored here as given).

A widget holds a metrics query (view, dimensions, metrics, filters) and how to chart it;
a dashboard holds its placements (``definition``: the widgets on its 12-column grid) and
filters for every widget on it. ``default_dashboards`` records which dashboard was
created as a project's default, once, so a deleted default is not created again.
"""

from __future__ import annotations

import uuid
from typing import Any

from ..timeutil import now
from .db import Conn

_WIDGET_COLUMNS = (
    "project_id, id, name, description, view, dimensions, metrics, filters, chart_type,"
    " chart_config, created_at, updated_at"
)
_WIDGET_JSON = ("dimensions", "metrics", "filters", "chart_config")
_WIDGET_FIELDS = ("name", "description", "view", *_WIDGET_JSON[:3], "chart_type", "chart_config")
_DASHBOARD_COLUMNS = (
    "project_id, id, name, description, definition, filters, created_at, updated_at"
)
_DASHBOARD_JSON = ("definition", "filters")
_DASHBOARD_FIELDS = ("name", "description", "definition", "filters")


def _decode(conn: Conn, row: dict[str, Any], json_columns: tuple[str, ...]) -> dict[str, Any]:
    row = dict(row)
    for column in json_columns:
        row[column] = conn.dialect.json_out(row[column])
    return row


def _bind(
    conn: Conn, fields: dict[str, Any], names: tuple[str, ...], json: tuple[str, ...]
) -> list[Any]:
    return [conn.dialect.json(fields[n]) if n in json else fields[n] for n in names]


def _insert(
    conn: Conn,
    table: str,
    columns: str,
    row: tuple[str, str | None],
    fields: dict[str, Any],
    names: tuple[str, ...],
    json: tuple[str, ...],
) -> str:
    """Insert ``project_id, id (a fresh one when None), fields..., created, updated``;
    return the id."""
    project_id, row_id = row
    row_id = row_id or str(uuid.uuid4())
    stamp = conn.dialect.ts(now())
    values = [project_id, row_id, *_bind(conn, fields, names, json), stamp, stamp]
    marks = ", ".join("?" for _ in values)
    conn.run(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(values))
    return row_id


def _update(
    conn: Conn,
    table: str,
    project_id: str,
    row_id: str,
    fields: dict[str, Any],
    json: tuple[str, ...],
) -> bool:
    names = tuple(fields)
    sets = ", ".join(f"{n} = ?" for n in names)
    values = _bind(conn, fields, names, json)
    before = conn.scalar(
        f"SELECT COUNT(*) FROM {table} WHERE project_id = ? AND id = ?", (project_id, row_id)
    )
    conn.run(
        f"UPDATE {table} SET {sets}, updated_at = ? WHERE project_id = ? AND id = ?",
        (*values, conn.dialect.ts(now()), project_id, row_id),
    )
    return bool(before)


def _delete(conn: Conn, table: str, project_id: str, row_id: str) -> bool:
    found = conn.scalar(
        f"SELECT COUNT(*) FROM {table} WHERE project_id = ? AND id = ?", (project_id, row_id)
    )
    conn.run(f"DELETE FROM {table} WHERE project_id = ? AND id = ?", (project_id, row_id))
    return bool(found)


def _get(
    conn: Conn, table: str, columns: str, json: tuple[str, ...], project_id: str, row_id: str
) -> dict[str, Any] | None:
    row = conn.one(
        f"SELECT {columns} FROM {table} WHERE project_id = ? AND id = ?", (project_id, row_id)
    )
    return None if row is None else _decode(conn, row, json)


def _page(
    conn: Conn,
    table: str,
    columns: str,
    json: tuple[str, ...],
    project_id: str,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    rows = conn.all(
        f"SELECT {columns} FROM {table} WHERE project_id = ?"
        " ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?",
        (project_id, limit, offset),
    )
    total = conn.scalar(f"SELECT COUNT(*) FROM {table} WHERE project_id = ?", (project_id,))
    return [_decode(conn, r, json) for r in rows], int(total or 0)


# --- widgets -------------------------------------------------------------------------


def create_widget(
    conn: Conn, project_id: str, fields: dict[str, Any], widget_id: str | None = None
) -> dict[str, Any]:
    """Store a checked widget (``name``, ``description``, ``view``, ``dimensions``,
    ``metrics``, ``filters``, ``chart_type``, ``chart_config``); return the row."""
    widget_id = _insert(
        conn,
        "dashboard_widgets",
        _WIDGET_COLUMNS,
        (project_id, widget_id),
        fields,
        _WIDGET_FIELDS,
        _WIDGET_JSON,
    )
    row = get_widget(conn, project_id, widget_id)
    assert row is not None
    return row


def get_widget(conn: Conn, project_id: str, widget_id: str) -> dict[str, Any] | None:
    """One widget of the project, or None."""
    return _get(conn, "dashboard_widgets", _WIDGET_COLUMNS, _WIDGET_JSON, project_id, widget_id)


def get_widgets(conn: Conn, project_id: str, widget_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The project's widgets with these ids, by id (missing ids are absent)."""
    wanted = sorted(set(widget_ids))
    if not wanted:
        return {}
    marks = ", ".join("?" for _ in wanted)
    rows = conn.all(
        f"SELECT {_WIDGET_COLUMNS} FROM dashboard_widgets WHERE project_id = ? AND id IN ({marks})",
        (project_id, *wanted),
    )
    return {r["id"]: _decode(conn, r, _WIDGET_JSON) for r in rows}


def page_widgets(
    conn: Conn, project_id: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the project's widgets, most recently updated first, and how many."""
    return _page(
        conn, "dashboard_widgets", _WIDGET_COLUMNS, _WIDGET_JSON, project_id, limit, offset
    )


def update_widget(
    conn: Conn, project_id: str, widget_id: str, fields: dict[str, Any]
) -> dict[str, Any] | None:
    """Overwrite the given checked fields of a widget; the row, or None when missing."""
    if not _update(conn, "dashboard_widgets", project_id, widget_id, fields, _WIDGET_JSON):
        return None
    return get_widget(conn, project_id, widget_id)


def delete_widget(conn: Conn, project_id: str, widget_id: str) -> bool:
    """Delete a widget; False when the project has none by that id."""
    return _delete(conn, "dashboard_widgets", project_id, widget_id)


# --- dashboards ----------------------------------------------------------------------


def create_dashboard(
    conn: Conn, project_id: str, fields: dict[str, Any], dashboard_id: str | None = None
) -> dict[str, Any]:
    """Store a checked dashboard (``name``, ``description``, ``definition``,
    ``filters``); return the row."""
    dashboard_id = _insert(
        conn,
        "dashboards",
        _DASHBOARD_COLUMNS,
        (project_id, dashboard_id),
        fields,
        _DASHBOARD_FIELDS,
        _DASHBOARD_JSON,
    )
    row = get_dashboard(conn, project_id, dashboard_id)
    assert row is not None
    return row


def get_dashboard(conn: Conn, project_id: str, dashboard_id: str) -> dict[str, Any] | None:
    """One dashboard of the project, or None."""
    return _get(conn, "dashboards", _DASHBOARD_COLUMNS, _DASHBOARD_JSON, project_id, dashboard_id)


def page_dashboards(
    conn: Conn, project_id: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the project's dashboards, most recently updated first, and how many."""
    return _page(conn, "dashboards", _DASHBOARD_COLUMNS, _DASHBOARD_JSON, project_id, limit, offset)


def update_dashboard(
    conn: Conn, project_id: str, dashboard_id: str, fields: dict[str, Any]
) -> dict[str, Any] | None:
    """Overwrite the given checked fields of a dashboard; the row, or None when missing."""
    if not _update(conn, "dashboards", project_id, dashboard_id, fields, _DASHBOARD_JSON):
        return None
    return get_dashboard(conn, project_id, dashboard_id)


def delete_dashboard(conn: Conn, project_id: str, dashboard_id: str) -> bool:
    """Delete a dashboard (its widgets stay); False when there is none by that id."""
    return _delete(conn, "dashboards", project_id, dashboard_id)


def dashboards_placing(conn: Conn, project_id: str, widget_id: str) -> list[str]:
    """Ids of the project's dashboards with a placement of the widget."""
    rows = conn.all("SELECT id, definition FROM dashboards WHERE project_id = ?", (project_id,))
    return sorted(
        r["id"]
        for r in rows
        if any(
            p.get("widgetId") == widget_id
            for p in (conn.dialect.json_out(r["definition"]) or {}).get("widgets", [])
        )
    )


def default_dashboard(conn: Conn, project_id: str) -> tuple[bool, str | None]:
    """Whether the project's default dashboard was created, and its id if it still exists."""
    row = conn.one(
        "SELECT d.dashboard_id, b.id AS present FROM default_dashboards d"
        " LEFT JOIN dashboards b ON b.project_id = d.project_id AND b.id = d.dashboard_id"
        " WHERE d.project_id = ?",
        (project_id,),
    )
    if row is None:
        return False, None
    return True, row["present"]


def record_default(conn: Conn, project_id: str, dashboard_id: str) -> bool:
    """Record ``dashboard_id`` as the project's default; False (nothing written) when a
    default was recorded before."""
    if conn.one("SELECT 1 AS x FROM default_dashboards WHERE project_id = ?", (project_id,)):
        return False
    conn.run(
        "INSERT INTO default_dashboards (project_id, dashboard_id, created_at) VALUES (?, ?, ?)",
        (project_id, dashboard_id, conn.dialect.ts(now())),
    )
    return True
