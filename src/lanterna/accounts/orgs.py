"""Organisation memberships (``org_memberships``, migration 0036).

A user belongs to an organisation with an organisation-wide role: ``owner``,
``admin``, ``member`` or ``viewer`` (their role in each of its projects, unless a
project membership says otherwise) or ``none`` (no access of their own: what SCIM
provisions; project memberships give access). Every project member is an organisation
member (``store.set_member`` makes sure). Removing a user from an organisation takes
their project memberships in it and ends all their login sessions at once.
"""

from __future__ import annotations

from typing import Any

from ..store.db import Conn
from ..timeutil import now
from .roles import ROLES

#: Organisation roles: the project roles and ``none``.
ORG_ROLES = (*ROLES, "none")


def set_org_member(conn: Conn, org_id: str, user_id: str, role: str) -> None:
    """Make ``user_id`` a member of the organisation with ``role`` (or change it)."""
    if role not in ORG_ROLES:
        raise ValueError(f"unknown role {role!r}")
    conn.run(
        "INSERT INTO org_memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
        (org_id, user_id, role, conn.dialect.ts(now())),
    )


def join_org(conn: Conn, org_id: str, user_id: str) -> None:
    """Make ``user_id`` a member of the organisation (role ``none``) unless they are."""
    conn.run(
        "INSERT INTO org_memberships (org_id, user_id, role, created_at) VALUES (?, ?, 'none', ?)"
        " ON CONFLICT (org_id, user_id) DO NOTHING",
        (org_id, user_id, conn.dialect.ts(now())),
    )


def org_role(conn: Conn, org_id: str, user_id: str) -> str | None:
    """The user's organisation role, or None when they are no member."""
    role = conn.scalar(
        "SELECT role FROM org_memberships WHERE org_id = ? AND user_id = ?", (org_id, user_id)
    )
    return None if role is None else str(role)


def org_members(conn: Conn, org_id: str, *, email: str | None = None) -> list[dict[str, Any]]:
    """The organisation's members (user id, email, name, role, times), oldest first;
    ``email``: only the one with that (normalised) address."""
    where, params = "om.org_id = ?", [org_id]
    if email is not None:
        where += " AND u.email = ?"
        params.append(email.strip().lower())
    rows = conn.all(
        "SELECT u.id, u.email, u.name, om.role, om.created_at, u.created_at AS user_created_at"
        " FROM org_memberships om JOIN users u ON u.id = om.user_id"
        f" WHERE {where} ORDER BY om.created_at, u.id",
        params,
    )
    for row in rows:
        row["created_at"] = conn.dialect.ts_out(row["created_at"])
        row["user_created_at"] = conn.dialect.ts_out(row["user_created_at"])
    return rows


def org_member(conn: Conn, org_id: str, user_id: str) -> dict[str, Any] | None:
    """One member of the organisation, or None."""
    rows = [r for r in org_members(conn, org_id) if r["id"] == user_id]
    return rows[0] if rows else None


def project_members(conn: Conn, project_id: str) -> list[dict[str, Any]]:
    """A project's explicit members (user id, email, name, role), oldest first."""
    return conn.all(
        "SELECT u.id, u.email, u.name, m.role FROM memberships m JOIN users u"
        " ON u.id = m.user_id WHERE m.project_id = ? ORDER BY m.created_at, u.id",
        (project_id,),
    )


def remove_from_org(conn: Conn, org_id: str, user_id: str) -> bool:
    """Take the user out of the organisation and each of its projects. Pages check
    memberships on every request, so what they lose is refused at once; their login
    sessions end only when nothing is left to them (no other organisation or project,
    not an instance admin): one organisation cannot log a user out of the others.
    False when they were no member."""
    gone = conn.run(
        "DELETE FROM org_memberships WHERE org_id = ? AND user_id = ?", (org_id, user_id)
    )
    conn.run(
        "DELETE FROM memberships WHERE user_id = ?"
        " AND project_id IN (SELECT id FROM projects WHERE org_id = ?)",
        (user_id, org_id),
    )
    still = conn.one(
        "SELECT 1 AS kept FROM org_memberships WHERE user_id = ?"
        " UNION ALL SELECT 1 FROM memberships WHERE user_id = ?"
        " UNION ALL SELECT 1 FROM users WHERE id = ? AND is_admin",
        (user_id, user_id, user_id),
    )
    if still is None:
        conn.run("DELETE FROM ui_sessions WHERE user_id = ?", (user_id,))
    return gone > 0


def projects_left_without_owner(
    conn: Conn, org_id: str, user_id: str, new_org_role: str | None
) -> list[str]:
    """Ids of the organisation's projects that have an owner now and would have none
    if ``user_id``'s organisation role became ``new_org_role`` (None: if they left the
    organisation, taking their project memberships with them). An owner is a project
    member with role ``owner``, or an organisation ``owner`` without a project role of
    their own there (a project role overrides the organisation's)."""
    org_owners = {
        str(r["user_id"])
        for r in conn.all(
            "SELECT user_id FROM org_memberships WHERE org_id = ? AND role = 'owner'", (org_id,)
        )
    }
    after_org_owners = set(org_owners)
    after_org_owners.discard(user_id)
    if new_org_role == "owner":
        after_org_owners.add(user_id)
    rows = conn.all(
        "SELECT p.id AS project_id, m.user_id, m.role FROM projects p"
        " LEFT JOIN memberships m ON m.project_id = p.id WHERE p.org_id = ?",
        (org_id,),
    )
    members: dict[str, dict[str, str]] = {}
    for row in rows:
        roles = members.setdefault(str(row["project_id"]), {})
        if row["user_id"] is not None:
            roles[str(row["user_id"])] = str(row["role"])

    def owners(roles: dict[str, str], org_level: set[str]) -> set[str]:
        explicit = {u for u, role in roles.items() if role == "owner"}
        return explicit | {u for u in org_level if u not in roles}

    left: list[str] = []
    for project_id, roles in members.items():
        after = dict(roles)
        if new_org_role is None:
            after.pop(user_id, None)
        if owners(roles, org_owners) and not owners(after, after_org_owners):
            left.append(project_id)
    return sorted(left)


def owners_besides(conn: Conn, project_id: str, user_id: str) -> int:
    """The project's owners other than ``user_id``: owner memberships, and organisation
    owners without a project role of their own there."""
    explicit = conn.scalar(
        "SELECT COUNT(*) FROM memberships WHERE project_id = ? AND role = 'owner' AND user_id <> ?",
        (project_id, user_id),
    )
    via_org = conn.scalar(
        "SELECT COUNT(*) FROM org_memberships om JOIN projects p ON p.org_id = om.org_id"
        " WHERE p.id = ? AND om.role = 'owner' AND om.user_id <> ? AND NOT EXISTS"
        " (SELECT 1 FROM memberships m WHERE m.user_id = om.user_id AND m.project_id = p.id)",
        (project_id, user_id),
    )
    return int(explicit or 0) + int(via_org or 0)


def leaves_no_owner(conn: Conn, project_id: str, user_id: str, new_role: str | None) -> bool:
    """True when giving ``user_id`` ``new_role`` in the project (None: removing them)
    would take its last owner away (a project keeps at least one, as in the UI)."""
    current = conn.scalar(
        "SELECT role FROM memberships WHERE user_id = ? AND project_id = ?", (user_id, project_id)
    )
    if current != "owner" or new_role == "owner":
        return False
    owners = conn.scalar(
        "SELECT COUNT(*) FROM memberships WHERE project_id = ? AND role = 'owner'", (project_id,)
    )
    return int(owners or 0) < 2
