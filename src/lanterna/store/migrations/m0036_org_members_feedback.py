"""0036: organisation memberships and submitted feedback.

``org_memberships``: who belongs to an organisation, with an organisation-wide role
(``owner``, ``admin``, ``member``, ``viewer``: that role in each of its projects unless
a project membership says otherwise) or ``none`` (a member with no project access of
their own: what SCIM provisions and what every project member already is). Everyone
who is a member of a project today becomes a ``none`` member of its organisation, so
access stays exactly as it was.

``feedback``: what ``POST /api/public/feedback`` received, per project.
"""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """Create ``org_memberships`` (filled from the project memberships) and ``feedback``."""
    ddl(
        conn,
        """
        CREATE TABLE org_memberships (
            org_id TEXT NOT NULL REFERENCES organizations(id),
            user_id TEXT NOT NULL REFERENCES users(id),
            role TEXT NOT NULL,
            created_at {TS} NOT NULL,
            PRIMARY KEY (org_id, user_id)
        );
        CREATE INDEX org_memberships_user ON org_memberships (user_id);
        INSERT INTO org_memberships (org_id, user_id, role, created_at)
            SELECT p.org_id, m.user_id, 'none', MIN(m.created_at)
            FROM memberships m JOIN projects p ON p.id = m.project_id
            GROUP BY p.org_id, m.user_id;
        CREATE TABLE feedback (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            at {TS} NOT NULL,
            actor TEXT NOT NULL,
            target_type TEXT NOT NULL,
            target TEXT NOT NULL,
            feedback TEXT NOT NULL,
            goal TEXT,
            reference_url TEXT,
            PRIMARY KEY (project_id, id)
        )
        """,
    )
