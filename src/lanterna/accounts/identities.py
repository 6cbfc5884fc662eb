"""Single sign-on accounts: an OpenID Connect identity (issuer, subject) -> an account.

:func:`sign_in` decides who a verified ID token's person is: the account already
linked to the identity; else the account with the same (verified) email, linked now;
else a new account without a password, which joins the configured organization
with the configured role (an organisation-wide role: all its projects). It returns
the user and the projects joined (for the audit log). The ID token itself is checked
by ``server/sso.py`` first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..store.db import Conn
from ..timeutil import now
from . import orgs
from . import store as accounts


@dataclass
class SignIn:
    """The outcome of a single sign-on: the user, and whether anything was made."""

    user: dict[str, Any]
    created: bool = False
    linked: bool = False
    joined: list[str] = field(default_factory=list)


def email_allowed(email: str, domains: str) -> bool:
    """True when ``email``'s domain is one of the comma-separated ``domains`` (any when
    empty); subdomains do not count."""
    wanted = {d.strip().lower().lstrip("@") for d in domains.split(",") if d.strip()}
    if not wanted:
        return True
    _, at, domain = email.rpartition("@")
    return bool(at) and domain.lower() in wanted


def sign_in(
    conn: Conn,
    issuer: str,
    subject: str,
    email: str,
    name: str | None,
    *,
    auto_join_org: str = "",
    role: str = "viewer",
) -> SignIn:
    """The account of this identity, linked or made as the module says."""
    d = conn.dialect
    email = accounts.normalize_email(email)
    user_id = conn.scalar(
        "SELECT user_id FROM sso_identities WHERE issuer = ? AND subject = ?", (issuer, subject)
    )
    out = SignIn(user={})
    if user_id is not None and accounts.get_user(conn, str(user_id)) is None:
        # The account went (deprovisioned): the identity starts afresh.
        conn.run("DELETE FROM sso_identities WHERE issuer = ? AND subject = ?", (issuer, subject))
        user_id = None
    if user_id is None:
        found = accounts.find_user(conn, email)
        if found is None:
            user_id = accounts.create_user(conn, email, None, name=name)
            out.created = True
        else:
            user_id = found["id"]
        conn.run(
            "INSERT INTO sso_identities (issuer, subject, user_id, email, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (issuer, subject, user_id, email, d.ts(now())),
        )
        out.linked = True
    conn.run(
        "UPDATE sso_identities SET last_login_at = ? WHERE issuer = ? AND subject = ?",
        (d.ts(now()), issuer, subject),
    )
    known_org = auto_join_org and conn.scalar(
        "SELECT 1 FROM organizations WHERE id = ?", (auto_join_org,)
    )
    if out.created and known_org:
        # An organisation-wide role: every project of it, today's and later ones.
        orgs.set_org_member(conn, auto_join_org, str(user_id), role)
        rows = conn.all("SELECT id FROM projects WHERE org_id = ? ORDER BY id", (auto_join_org,))
        out.joined = [row["id"] for row in rows]
    user = accounts.get_user(conn, str(user_id))
    assert user is not None
    out.user = user
    return out


def forget_user(conn: Conn, user_id: str) -> None:
    """Remove the identities linked to an account (when the account goes)."""
    conn.run("DELETE FROM sso_identities WHERE user_id = ?", (user_id,))
