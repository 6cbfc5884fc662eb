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

An organisation key (:class:`~lanterna.server.org_auth.OrgPrincipal`, actor
``org-key:<public key>``) names no project: pass ``project_id=`` for a change to one
project, or use :func:`audit_org` for a change to the organisation (an organisation
key made or revoked, a member added or removed), recorded in each of its projects'
logs.
"""

from __future__ import annotations

from typing import Any

from ..store.db import Conn
from .auth import Principal
from .org_auth import OrgPrincipal
from .runtime import Runtime


def actor_of(who: Any) -> tuple[str, str]:
    """``(actor, project id)`` of an API principal or a dashboard page (an
    organisation key has no project: ``""``)."""
    if isinstance(who, Principal):
        return f"key:{who.public_key}", who.project_id
    if isinstance(who, OrgPrincipal):
        return f"org-key:{who.public_key}", ""
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
    *,
    project_id: str | None = None,
) -> None:
    """Record that ``who`` did ``action`` to ``target`` (after the change committed),
    in ``project_id``'s log (default: the project of ``who``)."""
    actor, own = actor_of(who)
    pid = project_id or own
    if not pid:
        raise ValueError("an organisation key's change names the project it audits")
    await rt.write(lambda c: rt.store.audit.record(c, pid, actor, action, target, detail))


async def audit_org(
    rt: Runtime,
    who: Any,
    org_id: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record an organisation-wide change in the log of each of the organisation's
    projects (where their owners read it)."""
    actor = actor_of(who)[0]

    def record(c: Conn) -> None:
        for project in rt.store.projects.org_projects(c, org_id):
            rt.store.audit.record(c, project["id"], actor, action, target, detail)

    await rt.write(record)
