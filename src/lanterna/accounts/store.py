"""Users, memberships and login sessions in the database.

A session cookie holds a random token; only its SHA-256 is stored, so a database dump
holds no usable session. Each session carries its own CSRF token for the forms it sees.
Instance admins (the owner made at first start) act as owner of every project, so a
project made by ``lanterna keys``/the API without members is still reachable.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta
from typing import Any

from ..store.db import Conn
from ..timeutil import now
from .passwords import UNUSABLE, check_new_password, generate_password, hash_password
from .roles import ROLES

#: The account made by ``--no-auth`` for the local user (cannot log in with a password).
LOCAL_EMAIL = "local@localhost"
DEFAULT_OWNER_EMAIL = "admin@localhost"

_USER_COLUMNS = "id, email, name, is_admin, must_change_password, created_at, last_login_at"
_U_COLUMNS = ", ".join("u." + c for c in _USER_COLUMNS.split(", "))


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively and without surrounding blanks."""
    return email.strip().lower()


def _user(conn: Conn, row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    row["is_admin"] = bool(row["is_admin"])
    row["must_change_password"] = bool(row["must_change_password"])
    return row


def create_user(
    conn: Conn,
    email: str,
    password: str | None,
    *,
    is_admin: bool = False,
    must_change_password: bool = False,
    name: str | None = None,
) -> str:
    """Store a user; ``password=None`` makes one that cannot log in. Returns the id."""
    user_id = str(uuid.uuid4())
    conn.run(
        "INSERT INTO users (id, email, name, password_hash, is_admin, must_change_password,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            user_id,
            normalize_email(email),
            name,
            UNUSABLE if password is None else hash_password(password),
            is_admin,
            must_change_password,
            conn.dialect.ts(now()),
        ),
    )
    return user_id


def find_user(conn: Conn, email: str) -> dict[str, Any] | None:
    """A user by email, with the password hash (for login only)."""
    return _user(
        conn,
        conn.one(
            f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE email = ?",
            (normalize_email(email),),
        ),
    )


def get_user(conn: Conn, user_id: str) -> dict[str, Any] | None:
    """A user by id, without the password hash."""
    return _user(conn, conn.one(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)))


def count_users(conn: Conn) -> int:
    """How many accounts exist."""
    return int(conn.scalar("SELECT COUNT(*) FROM users") or 0)


def set_password(conn: Conn, user_id: str, password: str, *, must_change: bool = False) -> None:
    """Replace a user's password (hashing it) and say whether it must be changed."""
    conn.run(
        "UPDATE users SET password_hash = ?, must_change_password = ? WHERE id = ?",
        (hash_password(password), must_change, user_id),
    )


def record_login(
    conn: Conn, user_id: str, rehashed: str | None = None, *, must_change: bool | None = None
) -> None:
    """Note the time of a successful login (and store a stronger hash if one was made;
    ``must_change=True``: the password no longer meets the rules and must be changed)."""
    conn.run("UPDATE users SET last_login_at = ? WHERE id = ?", (conn.dialect.ts(now()), user_id))
    if must_change:
        conn.run("UPDATE users SET must_change_password = ? WHERE id = ?", (True, user_id))
    if rehashed is not None:
        conn.run("UPDATE users SET password_hash = ? WHERE id = ?", (rehashed, user_id))


def reset_password(conn: Conn, email: str, password: str) -> bool:
    """Give an account a one-time ``password`` (``lanterna users reset-password``): it
    must be changed at the next login, and every session of the account ends. False
    when there is no such account."""
    found = find_user(conn, email)
    if found is None:
        return False
    set_password(conn, found["id"], password, must_change=True)
    delete_sessions_of(conn, found["id"])
    return True


# --- sessions -------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(conn: Conn, user_id: str, days: int) -> str:
    """A new login session for ``user_id``; returns the cookie token (stored hashed)."""
    token = secrets.token_urlsafe(32)
    stamp = now()
    conn.run(
        "INSERT INTO ui_sessions (token_hash, user_id, csrf_token, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (
            _token_hash(token),
            user_id,
            secrets.token_urlsafe(32),
            conn.dialect.ts(stamp),
            conn.dialect.ts(stamp + timedelta(days=days)),
        ),
    )
    # Expired sessions of anyone go at each login: the table stays small without a job.
    conn.run("DELETE FROM ui_sessions WHERE expires_at < ?", (conn.dialect.ts(stamp),))
    return token


def session_user(conn: Conn, token: str) -> dict[str, Any] | None:
    """The user of a live session token, with the session's ``csrf_token``; else None."""
    if not token or len(token) > 200:
        return None
    row = conn.one(
        f"SELECT s.csrf_token, s.expires_at, {_U_COLUMNS}"
        " FROM ui_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?",
        (_token_hash(token),),
    )
    if row is None:
        return None
    expires = conn.dialect.ts_parse(row.pop("expires_at"))
    if expires is None or expires <= now():
        return None
    return _user(conn, row)


def delete_session(conn: Conn, token: str) -> None:
    """End one session (logout)."""
    conn.run("DELETE FROM ui_sessions WHERE token_hash = ?", (_token_hash(token),))


def delete_sessions_of(conn: Conn, user_id: str, *, keep_token: str | None = None) -> None:
    """End every session of a user (but ``keep_token``'s): after a password change."""
    if keep_token is None:
        conn.run("DELETE FROM ui_sessions WHERE user_id = ?", (user_id,))
    else:
        conn.run(
            "DELETE FROM ui_sessions WHERE user_id = ? AND token_hash <> ?",
            (user_id, _token_hash(keep_token)),
        )


# --- projects and roles -----------------------------------------------------------------


def role_in(conn: Conn, user: dict[str, Any], project_id: str) -> str | None:
    """The user's role in a project, or None when they may not see it at all."""
    if user.get("is_admin"):
        exists = conn.scalar("SELECT 1 FROM projects WHERE id = ?", (project_id,))
        return "owner" if exists else None
    role = conn.scalar(
        "SELECT role FROM memberships WHERE user_id = ? AND project_id = ?",
        (user["id"], project_id),
    )
    if role is None:  # the organisation-wide role, when the user has one
        role = conn.scalar(
            "SELECT om.role FROM org_memberships om JOIN projects p ON p.org_id = om.org_id"
            " WHERE om.user_id = ? AND p.id = ?",
            (user["id"], project_id),
        )
    return str(role) if role in ROLES else None


def projects_of(conn: Conn, user: dict[str, Any]) -> list[dict[str, Any]]:
    """Every project the user can see, with its organisation and the user's role."""
    if user.get("is_admin"):
        rows = conn.all(
            "SELECT p.id, p.name, o.id AS org_id, o.name AS org_name, 'owner' AS role"
            " FROM projects p JOIN organizations o ON o.id = p.org_id"
            " ORDER BY o.name, p.name, p.id"
        )
    else:
        # A project membership's role, else the organisation-wide one (``none`` gives none).
        rows = conn.all(
            "SELECT p.id, p.name, o.id AS org_id, o.name AS org_name,"
            " COALESCE(m.role, om.role) AS role FROM projects p"
            " JOIN organizations o ON o.id = p.org_id"
            " LEFT JOIN memberships m ON m.project_id = p.id AND m.user_id = ?"
            " LEFT JOIN org_memberships om ON om.org_id = p.org_id AND om.user_id = ?"
            " WHERE m.role IS NOT NULL OR om.role IN ('owner', 'admin', 'member', 'viewer')"
            " ORDER BY o.name, p.name, p.id",
            (user["id"], user["id"]),
        )
    return rows


def set_member(conn: Conn, user_id: str, project_id: str, role: str) -> None:
    """Give ``user_id`` ``role`` in the project (adding or changing the membership)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    conn.run(
        "INSERT INTO memberships (user_id, project_id, role, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (user_id, project_id) DO UPDATE SET role = excluded.role",
        (user_id, project_id, role, conn.dialect.ts(now())),
    )
    # A project member belongs to its organisation (with no organisation-wide role).
    conn.run(
        "INSERT INTO org_memberships (org_id, user_id, role, created_at)"
        " SELECT org_id, ?, 'none', ? FROM projects WHERE id = ?"
        " ON CONFLICT (org_id, user_id) DO NOTHING",
        (user_id, conn.dialect.ts(now()), project_id),
    )


def remove_member(conn: Conn, user_id: str, project_id: str) -> bool:
    """Take a user out of a project; True when they were a member."""
    return (
        conn.run(
            "DELETE FROM memberships WHERE user_id = ? AND project_id = ?", (user_id, project_id)
        )
        > 0
    )


def list_members(conn: Conn, project_id: str) -> list[dict[str, Any]]:
    """A project's members (email, role, last login), owners first."""
    rows = conn.all(
        "SELECT u.id, u.email, u.name, u.last_login_at, m.role, m.created_at"
        " FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.project_id = ?",
        (project_id,),
    )
    rows.sort(key=lambda r: (ROLES.index(r["role"]) if r["role"] in ROLES else 9, r["email"]))
    return rows


def count_owners(conn: Conn, project_id: str) -> int:
    """How many members own the project."""
    return int(
        conn.scalar(
            "SELECT COUNT(*) FROM memberships WHERE project_id = ? AND role = 'owner'",
            (project_id,),
        )
        or 0
    )


# --- first start --------------------------------------------------------------------------


def bootstrap_owner(
    conn: Conn, email: str | None = None, password: str | None = None
) -> tuple[str, str | None] | None:
    """On a database without accounts make the owner (an instance admin).

    Returns ``(email, one-time password)`` when the password was generated (to print
    once), ``(email, None)`` when ``password`` was given, and None when accounts exist.
    """
    if count_users(conn):
        return None
    email = normalize_email(email or DEFAULT_OWNER_EMAIL)
    generated = password is None or password == ""
    secret = generate_password() if generated else str(password)
    # A given password that breaks the rules works once, then must be changed.
    weak = check_new_password(secret) is not None
    create_user(conn, email, secret, is_admin=True, must_change_password=generated or weak)
    return email, (secret if generated else None)


def local_user(conn: Conn) -> dict[str, Any]:
    """The ``--no-auth`` user: an instance admin without a password, made on first use."""
    found = find_user(conn, LOCAL_EMAIL)
    if found is None:
        create_user(conn, LOCAL_EMAIL, None, is_admin=True, name="Local user")
        found = find_user(conn, LOCAL_EMAIL)
    assert found is not None
    found.pop("password_hash", None)
    return found


def invite(conn: Conn, email: str, project_id: str, role: str) -> str | None:
    """Add ``email`` to a project with ``role``, making the account if needed.

    Returns a one-time password for a new account (to show the inviter once), or None
    when the account existed.
    """
    existing = find_user(conn, email)
    password = None
    if existing is None:
        password = generate_password()
        user_id = create_user(conn, email, password, must_change_password=True)
    else:
        user_id = existing["id"]
    set_member(conn, user_id, project_id, role)
    return password
