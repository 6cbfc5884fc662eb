"""Experiment runs recorded through OTLP (contract 3.4): the Langfuse SDKs' experiment
runners (Python 4.x/5.x, JS 5.x) create no dataset run through the REST API but put
``langfuse.experiment.*`` attributes on the spans of each item's run. The span that is
the item's root observation (``langfuse.experiment.item.root_observation_id``) becomes
a dataset run item linking that trace and observation to the dataset item, in the run
named ``langfuse.experiment.name`` (created on first use, its id the experiment id).

Only experiments over a stored dataset are linked (``langfuse.experiment.dataset.id``);
an experiment over local data has no dataset to link to and is kept as traces only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import _json
from ..timeutil import parse_ts
from .otlp_mapping import SpanData

_PREFIX = "langfuse.experiment."
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ExperimentLink:
    """One dataset run item read from a span."""

    run_id: str
    run_name: str
    description: str | None
    metadata: Any
    dataset_id: str
    item_id: str
    trace_id: str
    observation_id: str
    item_version: datetime | None
    start: datetime


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _version(value: Any) -> datetime | None:
    try:
        return parse_ts(value)
    except ValueError:  # not a timestamp: dropped, as Langfuse does
        return None


def _metadata(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return _json.loads(value)
        except _json.JSONDecodeError:
            return value
    return value


def experiment_links(spans: list[SpanData]) -> list[ExperimentLink]:
    """The run items the experiment attributes of these spans record."""
    links = []
    for span in spans:
        attrs = span.attributes
        run_id = _text(attrs.get(_PREFIX + "id"))
        if run_id is None:
            continue
        root = _text(attrs.get(_PREFIX + "item.root_observation_id"))
        if root is not None and root != span.span_id:
            continue
        if root is None and span.parent_span_id:
            continue
        dataset_id = _text(attrs.get(_PREFIX + "dataset.id"))
        item_id = _text(attrs.get(_PREFIX + "item.id"))
        if dataset_id is None or item_id is None:
            continue
        links.append(
            ExperimentLink(
                run_id=run_id,
                run_name=_text(attrs.get(_PREFIX + "name")) or run_id,
                description=_text(attrs.get(_PREFIX + "description")),
                metadata=_metadata(attrs.get(_PREFIX + "metadata")),
                dataset_id=dataset_id,
                item_id=item_id,
                trace_id=span.trace_id,
                observation_id=span.span_id,
                item_version=_version(attrs.get(_PREFIX + "item.version")),
                start=_EPOCH + timedelta(microseconds=span.start_ns // 1000),
            )
        )
    return links
