"""What the evaluator hands a channel: one notification, independent of the channel's
format (the seam between ``alerts.evaluator`` and ``alerts.channels``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

#: ``fired``: the condition started to hold (or holds again after the re-notify
#: interval); ``resolved``: it cleared; ``test``: a "send test" action.
Kind = Literal["fired", "resolved", "test"]


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """One notification about one rule (or budget) of one project."""

    kind: Kind
    project_id: str
    rule_id: str
    rule_name: str
    #: The metric and its condition in words, e.g. ``error rate > 5% over 5 minutes``.
    condition: str
    #: The value that was measured, and the threshold it was compared with.
    value: float | None
    threshold: float | None
    #: When the evaluation ran (the injected clock's time).
    at: datetime
    #: Where a user sees the rule in the web UI (absolute URL).
    url: str
    details: dict[str, Any] = field(default_factory=dict)


class DeliveryError(Exception):
    """A channel could not deliver a message (after its retries); the message says why.
    Recorded in the alert history, never raised into the evaluator's loop."""


class Channel(Protocol):
    """A configured destination: webhook, Slack or email."""

    def deliver(self, message: AlertMessage) -> None:
        """Send ``message``; raise :class:`DeliveryError` when it cannot be delivered."""
