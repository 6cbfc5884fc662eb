"""Login throttling that slows password guessing without letting anyone lock a user out.

Three counters of failed logins, kept in the database (``login_failures``) so every
server process sharing it applies the same limits:

- **per client address** (``ip:``): at most ``attempts`` failures in a 15-minute window,
  for any emails; then the address waits for the window to end.
- **per account and address** (``pair:``): after :data:`FREE_PAIR` failures each further
  one doubles the wait (1 s, 2 s, 4 s, ... at most 15 minutes): exponential back-off.
- **per account** (``account:``): after ``attempts`` failures from anywhere, unknown
  clients back off the same way. A *known client* (a browser holding the device cookie
  of an earlier successful login of that account) is exempt, so guesses from elsewhere
  never stop the owner from logging in; ``lanterna users unlock EMAIL`` clears it.

Counters of an account or (account, address) are forgotten a day after their last
failure, the address counter when its window ends, and the (account, address) one at a
successful login. Every time a counter starts a wait, a lockout event is logged (email,
address, never the password) and stored (``login_events``) for the account page.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..store.db import Conn
from ..timeutil import now

log = logging.getLogger("lanterna.login")

WINDOW = timedelta(minutes=15)  # the per-address window, and the longest back-off
FORGET = timedelta(days=1)  # an account's counters reset this long after the last failure
FREE_PAIR = 5  # failures of one account from one address before back-off starts
DEVICE_COOKIE = "lanterna_device"
DEVICE_DAYS = 365


def _backoff(failures: int, free: int) -> timedelta:
    if failures < free:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - free, 20)), WINDOW)


@dataclass(frozen=True)
class _Rule:
    key: str
    scope: str  # "address", "client" (account and address), "account"
    free: int
    fixed_window: bool

    def wait(self, row: dict[str, Any] | None, conn: Conn, at: datetime) -> float:
        """Seconds this counter still makes the client wait (0 when it may try)."""
        if row is None:
            return 0.0
        first = conn.dialect.ts_parse(row["first_at"])
        last = conn.dialect.ts_parse(row["last_at"])
        assert first is not None and last is not None
        failures = int(row["failures"])
        if self.fixed_window:
            until = first + WINDOW if failures >= self.free else at
        else:
            until = last + _backoff(failures, self.free)
        return max(0.0, (until - at).total_seconds())

    def stale(self, row: dict[str, Any], conn: Conn, at: datetime) -> bool:
        """Whether the counter has expired (the next failure starts it again)."""
        stamp = conn.dialect.ts_parse(row["first_at" if self.fixed_window else "last_at"])
        assert stamp is not None
        return at >= stamp + (WINDOW if self.fixed_window else FORGET)


class LoginThrottle:
    """The login limits of one server; ``clock`` is injected so tests need not wait."""

    def __init__(self, attempts: int, clock: Callable[[], datetime] = now) -> None:
        self.attempts = attempts
        self.clock = clock

    def _rules(self, email: str, client: str) -> tuple[_Rule, _Rule, _Rule]:
        return (
            _Rule(f"ip:{client}", "address", self.attempts, True),
            _Rule(f"pair:{email}|{client}", "client", min(FREE_PAIR, self.attempts), False),
            _Rule(f"account:{email}", "account", self.attempts, False),
        )

    def _rows(self, conn: Conn, rules: tuple[_Rule, ...]) -> dict[str, dict[str, Any]]:
        keys = [r.key for r in rules]
        marks = ", ".join("?" * len(keys))
        found = conn.all(f"SELECT * FROM login_failures WHERE key IN ({marks})", keys)
        return {row["key"]: row for row in found}

    def retry_after(self, conn: Conn, email: str, client: str, *, known: bool) -> float:
        """Seconds the client must wait before this login may be checked (0: go on).
        ``known``: the client holds a device cookie of this account."""
        at = self.clock()
        rules: tuple[_Rule, ...] = self._rules(email, client)
        if known:
            rules = rules[:2]
        rows = self._rows(conn, rules)
        return max(rule.wait(rows.get(rule.key), conn, at) for rule in rules)

    def failed(self, conn: Conn, email: str, client: str) -> None:
        """Count one failed login (in the writer); log and store any lockout it starts."""
        at = self.clock()
        rules = self._rules(email, client)
        rows = self._rows(conn, rules)
        ts = conn.dialect.ts(at)
        for rule in rules:
            row = rows.get(rule.key)
            if row is None or rule.stale(row, conn, at):
                row = {"key": rule.key, "failures": 1, "first_at": ts, "last_at": ts}
            else:
                row = {**row, "failures": int(row["failures"]) + 1, "last_at": ts}
            conn.run(
                "INSERT INTO login_failures (key, failures, first_at, last_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                " failures = excluded.failures, first_at = excluded.first_at,"
                " last_at = excluded.last_at",
                (rule.key, row["failures"], row["first_at"], ts),
            )
            wait = rule.wait(row, conn, at)
            if wait > 0:
                self._lockout(conn, rule, email, client, int(row["failures"]), at, wait)

    def _lockout(
        self,
        conn: Conn,
        rule: _Rule,
        email: str,
        client: str,
        failures: int,
        at: datetime,
        wait: float,
    ) -> None:
        log.warning(
            "login throttled (%s): %s from %s after %d failed logins; next try in %.0f s",
            rule.scope,
            email,
            client,
            failures,
            wait,
        )
        conn.run(
            "INSERT INTO login_events (id, at, email, client, scope, failures, until_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                str(uuid.uuid4()),
                conn.dialect.ts(at),
                email,
                client,
                rule.scope,
                failures,
                conn.dialect.ts(at + timedelta(seconds=wait)),
            ),
        )

    def succeeded(self, conn: Conn, email: str, client: str) -> None:
        """Forget this client's failures for the account after a successful login."""
        conn.run("DELETE FROM login_failures WHERE key = ?", (f"pair:{email}|{client}",))


def unlock(conn: Conn, email: str) -> int:
    """Clear every failure counter of an account (``lanterna users unlock``)."""
    literal = email.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return conn.run(
        "DELETE FROM login_failures WHERE key = ? OR key LIKE ? ESCAPE '\\'",
        (f"account:{email}", f"pair:{literal}|%"),
    )


def lockouts(conn: Conn, email: str, limit: int = 20) -> list[dict[str, Any]]:
    """The account's latest lockout events, newest first."""
    rows = conn.all(
        "SELECT at, client, scope, failures, until_at FROM login_events WHERE email = ?"
        " ORDER BY at DESC LIMIT ?",
        (email, limit),
    )
    for row in rows:
        row["at"] = conn.dialect.ts_parse(row["at"])
        row["until_at"] = conn.dialect.ts_parse(row["until_at"])
    return rows


# --- known clients (device cookies) ---------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_known_device(conn: Conn, user_id: str, token: str) -> bool:
    """Whether ``token`` (the device cookie) belongs to an earlier login of the user."""
    if not token or len(token) > 200:
        return False
    found = conn.scalar("SELECT user_id FROM login_devices WHERE token_hash = ?", (_hash(token),))
    return found == user_id


def remember_device(conn: Conn, user_id: str) -> str:
    """A new device cookie value for a successful login (stored hashed)."""
    token = secrets.token_urlsafe(32)
    conn.run(
        "INSERT INTO login_devices (token_hash, user_id, created_at) VALUES (?, ?, ?)",
        (_hash(token), user_id, conn.dialect.ts(now())),
    )
    return token
