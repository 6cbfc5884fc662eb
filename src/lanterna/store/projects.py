"""Organisations, projects and API keys. Secret keys are stored only as salted hashes.

A project key (``api_keys``) grants one project; an organisation key (``org_api_keys``,
migration 0035) grants the organisation-level API only (projects, their keys and
members, SCIM), never a project's data.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from ..timeutil import now
from .db import Conn


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly made key pair: the only moment the secret exists in clear."""

    id: str
    project_id: str
    public_key: str
    secret_key: str


@dataclass(frozen=True, slots=True)
class NewOrgKey:
    """A freshly made organisation key pair (the secret shown once)."""

    id: str
    org_id: str
    public_key: str
    secret_key: str


def hash_secret(salt: str, secret: str) -> str:
    """The stored form of a secret key: SHA-256 over a per-key salt and the secret."""
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def secret_matches(row: dict[str, Any], secret: str) -> bool:
    """True when ``secret`` is the secret of the stored key ``row`` (constant time)."""
    return hmac.compare_digest(hash_secret(row["secret_salt"], secret), row["secret_hash"])


def create_organization(conn: Conn, name: str) -> str:
    """Create an organisation; return its id."""
    org_id = str(uuid.uuid4())
    conn.run(
        "INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?)",
        (org_id, name, conn.dialect.ts(now())),
    )
    return org_id


def create_project(conn: Conn, org_id: str, name: str) -> str:
    """Create a project in ``org_id``; return its id.

    Ids are short (12 hex characters, 48 random bits): every index on the event tables
    starts with the project id, and at 36 characters it made index entries a third
    larger (measured: 15% more SQLite time per ingested observation).
    """
    project_id = secrets.token_hex(6)
    conn.run(
        "INSERT INTO projects (id, org_id, name, metadata, created_at) VALUES (?, ?, ?, ?, ?)",
        (project_id, org_id, name, conn.dialect.json({}), conn.dialect.ts(now())),
    )
    return project_id


def _pair(public_key: str | None = None, secret_key: str | None = None) -> tuple[str, ...]:
    """``(public key, secret key, salt, secret hash, masked secret)`` of a new pair
    (given keys kept: the API's predefined keys)."""
    public_key = public_key or f"pk-lf-{uuid.uuid4()}"
    secret_key = secret_key or f"sk-lf-{uuid.uuid4()}"
    salt = secrets.token_hex(16)
    masked = f"sk-lf-...{secret_key[-4:]}"
    return public_key, secret_key, salt, hash_secret(salt, secret_key), masked


def public_key_taken(conn: Conn, public_key: str) -> bool:
    """True when a project or organisation key (even revoked) has this public key."""
    return bool(
        conn.scalar("SELECT 1 FROM api_keys WHERE public_key = ?", (public_key,))
        or conn.scalar("SELECT 1 FROM org_api_keys WHERE public_key = ?", (public_key,))
    )


def create_key(
    conn: Conn,
    project_id: str,
    note: str | None = None,
    role: str = "admin",
    *,
    public_key: str | None = None,
    secret_key: str | None = None,
) -> NewKey:
    """Make a ``pk-lf-…``/``sk-lf-…`` pair for ``project_id``; store only the hash.
    ``role`` (a project role: ``owner``, ``admin``, ``member``, ``viewer``) is what the
    key may change where routes check it (alert rules, channels, budgets).
    ``public_key``/``secret_key``: a predefined pair (checked by the caller)."""
    key_id = str(uuid.uuid4())
    public_key, secret_key, salt, hashed, masked = _pair(public_key, secret_key)
    conn.run(
        "INSERT INTO api_keys (id, project_id, public_key, secret_salt, secret_hash,"
        " display_secret, note, role, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (key_id, project_id, public_key, salt, hashed, masked, note, role, conn.dialect.ts(now())),
    )
    return NewKey(key_id, project_id, public_key, secret_key)


def bootstrap(conn: Conn) -> NewKey | None:
    """On an empty database make an organisation, a project and a key pair.

    Returns the new key, or None when the database already holds an organisation.
    """
    if conn.scalar("SELECT COUNT(*) FROM organizations"):
        return None
    org_id = create_organization(conn, "My Organization")
    project_id = create_project(conn, org_id, "My Project")
    return create_key(conn, project_id, note="created at first start")


def find_key(conn: Conn, public_key: str) -> dict[str, Any] | None:
    """The active (not revoked) key with this public key, or None."""
    return conn.one(
        "SELECT id, project_id, public_key, secret_salt, secret_hash, role FROM api_keys"
        " WHERE public_key = ? AND revoked_at IS NULL",
        (public_key,),
    )


def list_keys(conn: Conn, project_id: str | None = None) -> list[dict[str, Any]]:
    """Keys (never their secrets) with project names, oldest first."""
    where, params = ("WHERE k.project_id = ?", [project_id]) if project_id else ("", [])
    rows = conn.all(
        "SELECT k.id, k.project_id, p.name AS project_name, k.public_key, k.display_secret,"
        " k.note, k.role, k.created_at, k.revoked_at FROM api_keys k"
        f" JOIN projects p ON p.id = k.project_id {where} ORDER BY k.created_at",
        params,
    )
    for row in rows:
        row["created_at"] = conn.dialect.ts_out(row["created_at"])
        row["revoked_at"] = conn.dialect.ts_out(row["revoked_at"])
    return rows


def revoke_key(conn: Conn, key: str) -> bool:
    """Revoke a key given its id or public key; True when one was revoked."""
    return (
        conn.run(
            "UPDATE api_keys SET revoked_at = ? WHERE (id = ? OR public_key = ?)"
            " AND revoked_at IS NULL",
            (conn.dialect.ts(now()), key, key),
        )
        > 0
    )


def revoke_project_keys(conn: Conn, project_id: str) -> int:
    """Revoke every active key of the project (before it is deleted); how many."""
    return conn.run(
        "UPDATE api_keys SET revoked_at = ? WHERE project_id = ? AND revoked_at IS NULL",
        (conn.dialect.ts(now()), project_id),
    )


def get_project(conn: Conn, project_id: str) -> dict[str, Any] | None:
    """A project with its organisation's id and name."""
    row = conn.one(
        "SELECT p.id, p.name, p.retention_days, p.metadata, o.id AS org_id, o.name AS org_name"
        " FROM projects p JOIN organizations o ON o.id = p.org_id WHERE p.id = ?",
        (project_id,),
    )
    if row is not None:
        row["metadata"] = conn.dialect.json_out(row["metadata"]) or {}
    return row


def list_projects(conn: Conn) -> list[dict[str, Any]]:
    """Every project with its organisation, oldest first."""
    return conn.all(
        "SELECT p.id, p.name, o.id AS org_id, o.name AS org_name FROM projects p"
        " JOIN organizations o ON o.id = p.org_id ORDER BY p.created_at"
    )


def update_project(
    conn: Conn,
    project_id: str,
    name: str,
    retention_days: int | None,
    metadata: dict[str, Any] | None = None,
) -> bool:
    """Rename a project and set its retention (days; None keeps data forever) and,
    when given, its metadata."""
    if metadata is not None:
        conn.run(
            "UPDATE projects SET metadata = ? WHERE id = ?",
            (conn.dialect.json(metadata), project_id),
        )
    return (
        conn.run(
            "UPDATE projects SET name = ?, retention_days = ? WHERE id = ?",
            (name, retention_days, project_id),
        )
        > 0
    )


# --- organisations and their keys ---------------------------------------------------


def get_organization(conn: Conn, org: str) -> dict[str, Any] | None:
    """An organisation by id, or by name when exactly one has it."""
    row = conn.one("SELECT id, name FROM organizations WHERE id = ?", (org,))
    if row is None:
        named = conn.all("SELECT id, name FROM organizations WHERE name = ?", (org,))
        row = named[0] if len(named) == 1 else None
    return row


def org_projects(conn: Conn, org_id: str) -> list[dict[str, Any]]:
    """The organisation's projects (id, name, metadata, retention, creation), oldest first."""
    rows = conn.all(
        "SELECT id, name, metadata, retention_days, created_at FROM projects"
        " WHERE org_id = ? ORDER BY created_at, id",
        (org_id,),
    )
    for row in rows:
        row["metadata"] = conn.dialect.json_out(row["metadata"]) or {}
        row["created_at"] = conn.dialect.ts_out(row["created_at"])
    return rows


def create_org_key(conn: Conn, org_id: str, note: str | None = None) -> NewOrgKey:
    """Make an organisation key pair; store only the secret's hash."""
    key_id = str(uuid.uuid4())
    public_key, secret_key, salt, hashed, masked = _pair()
    conn.run(
        "INSERT INTO org_api_keys (id, org_id, public_key, secret_salt, secret_hash,"
        " display_secret, note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (key_id, org_id, public_key, salt, hashed, masked, note, conn.dialect.ts(now())),
    )
    return NewOrgKey(key_id, org_id, public_key, secret_key)


def find_org_key(conn: Conn, public_key: str) -> dict[str, Any] | None:
    """The active organisation key with this public key, or None."""
    return conn.one(
        "SELECT id, org_id, public_key, secret_salt, secret_hash FROM org_api_keys"
        " WHERE public_key = ? AND revoked_at IS NULL",
        (public_key,),
    )


def list_org_keys(conn: Conn, org_id: str | None = None) -> list[dict[str, Any]]:
    """Organisation keys (never their secrets) with organisation names, oldest first."""
    where, params = ("WHERE k.org_id = ?", [org_id]) if org_id else ("", [])
    rows = conn.all(
        "SELECT k.id, k.org_id, o.name AS org_name, k.public_key, k.display_secret, k.note,"
        " k.created_at, k.last_used_at, k.revoked_at FROM org_api_keys k"
        f" JOIN organizations o ON o.id = k.org_id {where} ORDER BY k.created_at, k.id",
        params,
    )
    d = conn.dialect
    for row in rows:
        for column in ("created_at", "last_used_at", "revoked_at"):
            row[column] = d.ts_out(row[column])
    return rows


def revoke_org_key(conn: Conn, key: str, org_id: str | None = None) -> str | None:
    """Revoke an organisation key by id or public key (only ``org_id``'s when given);
    the organisation's id when one was revoked, else None."""
    row = conn.one(
        "SELECT id, org_id FROM org_api_keys WHERE (id = ? OR public_key = ?)"
        " AND revoked_at IS NULL",
        (key, key),
    )
    if row is None or (org_id is not None and row["org_id"] != org_id):
        return None
    conn.run(
        "UPDATE org_api_keys SET revoked_at = ? WHERE id = ?", (conn.dialect.ts(now()), row["id"])
    )
    return str(row["org_id"])
