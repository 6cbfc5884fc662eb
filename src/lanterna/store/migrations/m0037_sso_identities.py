"""Single sign-on: which OpenID Connect identity (issuer and subject) is which account.

An account is found by its provider's stable subject, not by email (an email may be
reassigned at the provider); the email links an identity to an existing account once.
"""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """Create ``sso_identities``."""
    ddl(
        conn,
        """
        CREATE TABLE sso_identities (
            issuer TEXT NOT NULL,
            subject TEXT NOT NULL,
            user_id TEXT NOT NULL,
            email TEXT NOT NULL,
            created_at {TS} NOT NULL,
            last_login_at {TS},
            PRIMARY KEY (issuer, subject)
        );
        CREATE INDEX sso_identities_user ON sso_identities (user_id)
        """,
    )
