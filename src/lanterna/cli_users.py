"""``lanterna users``: the web UI's accounts (``create``, ``reset-password``,
``unlock``). :mod:`lanterna.cli` adds these commands and hands them its helpers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Options = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class _Env:
    """What the commands take from :mod:`lanterna.cli`: the settings of the parsed
    arguments, ``--project``'s id checked on a connection, and one committed
    transaction on the migrated database (``in_transaction(url, work)``)."""

    settings_of: Callable[[argparse.Namespace], Any]
    project_of: Callable[[Any, str | None], str]
    in_transaction: Callable[[str, Callable[[Any], Any]], Any]


def _one_time_password(args: argparse.Namespace) -> tuple[str, bool]:
    """The password for ``users create``/``reset-password``: one line of stdin with
    ``--password-stdin``, else a generated one; and whether it was generated."""
    from .accounts.passwords import generate_password

    if not args.password_stdin:
        return generate_password(), True
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise SystemExit("lanterna: --password-stdin: no password on standard input")
    return line, False


def cmd_create(args: argparse.Namespace, env: _Env) -> int:
    """``users create EMAIL``: an account with a one-time password, in a project."""
    from .accounts import store as accounts

    email = accounts.normalize_email(args.email)
    if "@" not in email or len(email) > 320:
        raise SystemExit(f"lanterna: {args.email!r} is not an email address")
    password, generated = _one_time_password(args)

    def work(conn):  # type: ignore[no-untyped-def]
        if accounts.find_user(conn, email) is not None:
            return None
        project_id = env.project_of(conn, args.project)
        user_id = accounts.create_user(conn, email, password, must_change_password=True)
        accounts.set_member(conn, user_id, project_id, args.role)
        return project_id

    project_id = env.in_transaction(env.settings_of(args).db_url, work)
    if project_id is None:
        print(
            f"An account {email} exists already (`lanterna users reset-password` gives it"
            " a new password).",
            file=sys.stderr,
        )
        return 1
    print(f"Created {email} ({args.role} of project {project_id}).")
    _print_one_time(password if generated else None)
    return 0


def cmd_reset_password(args: argparse.Namespace, env: _Env) -> int:
    """``users reset-password EMAIL``: a one-time password, to change at the next login."""
    from .accounts import store as accounts
    from .accounts.ratelimit import unlock

    email = accounts.normalize_email(args.email)
    password, generated = _one_time_password(args)

    def work(conn):  # type: ignore[no-untyped-def]
        if not accounts.reset_password(conn, email, password):
            return False
        unlock(conn, email)  # a lost password often comes with a lockout
        return True

    if not env.in_transaction(env.settings_of(args).db_url, work):
        print(f"No account {email}.", file=sys.stderr)
        return 1
    print(f"Reset the password of {email}; its sessions were logged out.")
    _print_one_time(password if generated else None)
    return 0


def _print_one_time(password: str | None) -> None:
    if password is not None:
        print(f"One-time password (shown only now): {password}")
    print("It must be changed at the next login.")


def _password_stdin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the one-time password from the first line of standard input"
        " instead of generating one (it never appears in the process list)",
    )


def cmd_unlock(args: argparse.Namespace, env: _Env) -> int:
    """``users unlock EMAIL``: clear the failed-login limits of an account."""
    from .accounts import store as accounts
    from .accounts.ratelimit import unlock

    email = accounts.normalize_email(args.email)

    def work(conn):  # type: ignore[no-untyped-def]
        return accounts.find_user(conn, email) is not None, unlock(conn, email)

    exists, cleared = env.in_transaction(env.settings_of(args).db_url, work)
    if not exists:
        print(f"No account {email}.", file=sys.stderr)
        return 1
    print(f"Unlocked {email} ({cleared} failed-login counter(s) cleared).")
    return 0


def add_commands(
    sub: Any,
    db_options: Options,
    settings_of: Callable[[argparse.Namespace], Any],
    project_of: Callable[[Any, str | None], str],
    in_transaction: Callable[[str, Callable[[Any], Any]], Any],
) -> None:
    """Add ``users`` to ``lanterna``'s sub-parsers."""
    from .accounts.roles import ROLES

    env = _Env(settings_of, project_of, in_transaction)

    def bind(command: Callable[[argparse.Namespace, _Env], int]) -> Callable[..., int]:
        return lambda args: command(args, env)

    users = sub.add_parser("users", help="manage dashboard accounts")
    users_sub = users.add_subparsers(dest="action", required=True)
    unlock = users_sub.add_parser(
        "unlock", help="clear an account's failed-login limits (see docs/security.md)"
    )
    unlock.add_argument("email", help="the account's email")
    db_options(unlock)
    unlock.set_defaults(func=bind(cmd_unlock))

    create_user = users_sub.add_parser(
        "create", help="create an account with a one-time password (changed at first login)"
    )
    create_user.add_argument("email", help="the account's email")
    create_user.add_argument(
        "--role", choices=ROLES, default="member", help="role in the project (default member)"
    )
    create_user.add_argument("--project", help="project id (needed when there are several)")
    _password_stdin(create_user)
    db_options(create_user)
    create_user.set_defaults(func=bind(cmd_create))
    reset = users_sub.add_parser(
        "reset-password", help="give an account a new one-time password (changed at next login)"
    )
    reset.add_argument("email", help="the account's email")
    _password_stdin(reset)
    db_options(reset)
    reset.set_defaults(func=bind(cmd_reset_password))
