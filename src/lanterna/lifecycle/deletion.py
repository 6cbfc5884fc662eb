"""Deleting a user's data (every trace with their user id, with its observations and
scores, and the sessions left empty) or a session's, a batch of traces per write
transaction (rollups corrected by the store's trace delete). Used by the API, the
dashboard and ``lanterna delete``. A whole project (``DELETE /api/public/projects/{id}``)
goes the same way, then every other row of it and the project itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..store.db import Conn
from ..store.interface import Deleted, Store

T = TypeVar("T")
Run = Callable[[Callable[[Conn], T]], T]


def _delete_all(
    store: Store,
    read: Run[Any],
    write: Run[Any],
    project_id: str,
    find: Callable[[Conn], list[str]],
) -> Deleted:
    out = Deleted()
    while True:
        ids: list[str] = read(find)
        if not ids:
            return out

        def delete(c: Conn, ids: list[str] = ids) -> Deleted:
            return store.lifecycle.delete_trace_data(c, project_id, ids)

        out.add(write(delete))


def delete_user(
    store: Store, read: Run[Any], write: Run[Any], project_id: str, user_id: str
) -> Deleted:
    """Delete every trace of ``user_id`` in the project, their observations and scores,
    and the sessions they leave empty (with those sessions' own scores)."""
    life = store.lifecycle
    return _delete_all(
        store, read, write, project_id, lambda c: life.user_trace_ids(c, project_id, user_id)
    )


def delete_session(
    store: Store, read: Run[Any], write: Run[Any], project_id: str, session_id: str
) -> Deleted:
    """Delete the session's traces with their observations and scores, its own scores
    and the session itself."""
    life = store.lifecycle
    out = _delete_all(
        store, read, write, project_id, lambda c: life.session_trace_ids(c, project_id, session_id)
    )
    out.add(write(lambda c: life.delete_empty_session(c, project_id, session_id)))
    return out


def delete_project(store: Store, read: Run[Any], write: Run[Any], project_id: str) -> Deleted:
    """Delete a project: its traces a batch per transaction (with their observations,
    scores and sessions), then every other row it holds (keys, members, prompts,
    datasets, settings, rollups, audit log, ...) and the project row itself."""
    life = store.lifecycle
    out = _delete_all(
        store, read, write, project_id, lambda c: life.project_trace_ids(c, project_id)
    )
    write(lambda c: life.delete_project_rows(c, project_id))
    return out
