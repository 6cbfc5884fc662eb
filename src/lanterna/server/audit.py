"""The audit hook: one line where a person or key changes something in a project.

``await audit(rt, who, "api_key.create", target, detail)`` appends an entry to the
project's audit log (``store.audit``) after the change is committed. ``who`` is the API
:class:`~lanterna.server.auth.Principal` (actor ``key:<public key>``) or a dashboard
page (``Page``: actor ``user:<email>``); the project comes from it. Actions are
``<thing>.<verb>``: ``api_key.create``, ``api_key.revoke``, ``member.add``,
``member.role``, ``member.remove``, ``project.update``, ``retention.update``,
``masking.update``, ``prompt.create``, ``prompt.labels``, ``prompt.delete``,
``alert_rule.create|update|delete``, ``budget.create|update|delete``,
``trace.delete``, ``score.delete``, ``user.delete``, ``session.delete``,
``model.create|delete``, ``dataset.create|update``,
``dataset_item.create|update|delete``, ``dataset_run.create|delete``,
``llm_connection.upsert|delete``, ``evaluator.create|delete``,
``evaluation_rule.create|update|delete``, ``ab_test.create|update|start|stop|conclude|delete``,
``media.upload|delete``, ``annotation_queue.create``,
``annotation_queue_item.create|update|delete``, ``annotation_queue.assign|unassign``,
``comment.create``. Never pass a secret in ``detail``.
"""

from __future__ import annotations

from typing import Any

from .auth import Principal
from .runtime import Runtime


def actor_of(who: Any) -> tuple[str, str]:
    """``(actor, project id)`` of an API principal or a dashboard page."""
    if isinstance(who, Principal):
        return f"key:{who.public_key}", who.project_id
    return f"user:{who.viewer.user['email']}", str(who.pid)


def created_or_updated(shown: dict[str, Any]) -> str:
    """``"create"`` for an upserted object's JSON that was just made (its ``createdAt``
    is its ``updatedAt``), ``"update"`` otherwise."""
    return "create" if shown.get("createdAt") == shown.get("updatedAt") else "update"


async def audit(
    rt: Runtime,
    who: Any,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record that ``who`` did ``action`` to ``target`` (after the change committed)."""
    actor, project_id = actor_of(who)
    await rt.write(lambda c: rt.store.audit.record(c, project_id, actor, action, target, detail))
