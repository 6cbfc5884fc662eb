"""Datasets, experiments and online evaluations with the events in ClickHouse: the
metadata store's functions (``store/datasets.py``, ``store/experiments.py``,
``store/evaluations.py``), with the traces, observations and scores they read taken
from the event store (``store/event_rows.py`` looks the linked ones up by id)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .. import datasets, evaluations, experiments
from ..db import Conn
from ..experiments import ExperimentQuery
from .conn import EventsDb, events_on

_on = events_on


class ChDatasets:
    """The ``Datasets`` resource: the SQL store's, run items' event rows from ClickHouse."""

    def __init__(self, events: EventsDb) -> None:
        self.events = events

    def __getattr__(self, name: str) -> Any:
        return getattr(datasets, name)

    def run_items_of(self, conn: Conn, project_id: str, run_ids: Sequence[str]) -> list[Any]:
        """Every item of these runs with its trace's and observation's output."""
        return datasets.run_items_of(conn, project_id, run_ids, events=_on(self.events, conn))

    def scores_of_runs(self, conn: Conn, project_id: str, run_ids: Sequence[str]) -> list[Any]:
        """The scores on the runs' traces and observations and on the runs."""
        return datasets.scores_of_runs(conn, project_id, run_ids, events=_on(self.events, conn))


class ChExperiments:
    """The ``Experiments`` resource: the SQL store's, items' traces and scores from
    ClickHouse."""

    def __init__(self, events: EventsDb) -> None:
        self.events = events

    def __getattr__(self, name: str) -> Any:
        return getattr(experiments, name)

    def experiment_items_after(
        self,
        conn: Conn,
        project_id: str,
        q: ExperimentQuery,
        *,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Run items in range with their run, dataset item and trace, newest first."""
        return experiments.experiment_items_after(
            conn, project_id, q, limit=limit, after=after, events=_on(self.events, conn)
        )

    def scores_on(
        self,
        conn: Conn,
        project_id: str,
        *,
        trace_ids: Sequence[str] = (),
        run_ids: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """Plain score rows on these traces or these runs, newest first."""
        return experiments.scores_on(
            _on(self.events, conn), project_id, trace_ids=trace_ids, run_ids=run_ids
        )


class ChEvaluations:
    """The ``Evaluations`` resource: the SQL store's (evaluators, rules, runs), with the
    traces, observations and run items' events an evaluation reads from ClickHouse."""

    def __init__(self, events: EventsDb) -> None:
        self.events = events

    def __getattr__(self, name: str) -> Any:
        return getattr(evaluations, name)

    def new_traces(self, conn: Conn, *args: Any, **kwargs: Any) -> Any:
        """``evaluations.new_traces`` on the event store."""
        return evaluations.new_traces(conn, *args, events=_on(self.events, conn), **kwargs)

    def new_observations(self, conn: Conn, *args: Any, **kwargs: Any) -> Any:
        """``evaluations.new_observations`` on the event store."""
        return evaluations.new_observations(conn, *args, events=_on(self.events, conn), **kwargs)

    def new_run_items(self, conn: Conn, *args: Any, **kwargs: Any) -> Any:
        """``evaluations.new_run_items`` with the linked events from the event store."""
        return evaluations.new_run_items(conn, *args, events=_on(self.events, conn), **kwargs)
