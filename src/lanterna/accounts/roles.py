"""Roles per project and what each may do. One table, read by every UI route."""

from __future__ import annotations

from typing import Literal

ROLES = ("owner", "admin", "member", "viewer")

Permission = Literal[
    "read",  # see traces, sessions, users, metrics, prompts, settings pages
    "write",  # an API key's changes: ingestion, scores, prompts, datasets, ...
    "annotate",  # add scores by hand
    "edit_prompts",  # create prompt versions, move labels
    "edit_dashboards",  # create, arrange and delete dashboards and their widgets
    "edit_datasets",  # create datasets, add and edit their items
    "edit_alerts",  # create, change and delete alert rules
    "manage_keys",  # create and revoke API keys
    "manage_members",  # invite people, change roles, remove members
    "manage_project",  # rename, retention, model prices, budgets
]

_RANK = {role: len(ROLES) - i for i, role in enumerate(ROLES)}  # owner 4 ... viewer 1

#: The least role that holds each permission.
_NEEDS: dict[str, str] = {
    "read": "viewer",
    "write": "member",
    "annotate": "member",
    "edit_prompts": "member",
    "edit_dashboards": "member",
    "edit_datasets": "member",
    "edit_alerts": "admin",
    "manage_keys": "admin",
    "manage_members": "admin",
    "manage_project": "admin",
}


def allowed(role: str | None, permission: Permission) -> bool:
    """True when ``role`` holds ``permission`` (None, no role, holds nothing)."""
    if role not in _RANK:
        return False
    return _RANK[role] >= _RANK[_NEEDS[permission]]


def assignable_roles(actor_role: str | None) -> tuple[str, ...]:
    """Roles ``actor_role`` may give or take away: owners all, admins up to admin."""
    if actor_role == "owner":
        return ROLES
    if actor_role == "admin":
        return ("admin", "member", "viewer")
    return ()
