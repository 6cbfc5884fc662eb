"""The data lifecycle commands of ``lanterna`` (docs/cli.md): ``delete user|session``,
``export``, ``import``, ``backup`` and ``restore``, and the copy of
``migrate --from/--to``. :func:`add_commands` adds them to
the parser built in :mod:`lanterna.cli`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
Options = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Context:
    """What the commands take from :mod:`lanterna.cli`: the settings of the parsed
    arguments, and ``--project``'s id checked on a connection."""

    settings_of: Callable[[argparse.Namespace], Any]
    project_of: Callable[[Any, str | None], str]


def _open(url: str) -> Any:
    from .store.db import Database
    from .store.migrations import migrate

    db = Database(url)
    migrate(db)
    return db


def _runners(db: Any) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def read(work: Callable[[Any], T]) -> T:
        with db.read() as conn:
            return work(conn)

    def write(work: Callable[[Any], T]) -> T:
        with db.transaction() as conn:
            return work(conn)

    return read, write


def cmd_delete(args: argparse.Namespace, ctx: Context) -> int:
    """``delete user ID`` / ``delete session ID``: the data and the counts, audited."""
    from .lifecycle.deletion import delete_session, delete_user
    from .server.runtime import store_for

    settings = ctx.settings_of(args)
    db = _open(settings.db_url)
    try:
        store = store_for(settings)  # with --events-url: the ClickHouse event store
        read, write = _runners(db)
        pid = read(lambda c: ctx.project_of(c, args.project))
        run = delete_user if args.what == "user" else delete_session
        gone = run(store, read, write, pid, args.id)
        detail = gone.as_json()
        write(lambda c: store.audit.record(c, pid, "cli", f"{args.what}.delete", args.id, detail))
    finally:
        db.close()
    print(
        f"deleted {args.what} {args.id}: {gone.traces} trace(s), {gone.observations}"
        f" observation(s), {gone.scores} score(s), {gone.sessions} session(s)"
    )
    return 0


def cmd_export(args: argparse.Namespace, ctx: Context) -> int:
    """``export``: the project's traces (filtered) as JSONL, CSV or Parquet."""
    from .server.export import JSONL_KINDS, Progress, encode, export_choice, records
    from .server.media import blob_store
    from .server.runtime import store_for
    from .store.filters import parse_filter
    from .store.interface import TraceQuery

    fmt, kind = export_choice(args.format, args.kind)
    query = TraceQuery(
        user_id=args.user_id,
        session_id=args.session_id,
        name=args.name,
        from_timestamp=args.since,
        to_timestamp=args.until,
        tags=tuple(args.tag or ()),
        environments=tuple(args.environment or ()),
        filters=parse_filter(args.filter),
    )
    settings = ctx.settings_of(args)
    db = _open(settings.db_url)
    blobs = blob_store(settings)

    def progress(p: Progress) -> None:
        print(f"exported {p.line()}", file=sys.stderr, flush=True)

    try:
        read, _ = _runners(db)
        pid = read(lambda c: ctx.project_of(c, args.project))
        kinds = JSONL_KINDS if fmt == "jsonl" else (kind,)
        items = records(
            store_for(settings), read, pid, query, kinds=kinds, progress=progress, blobs=blobs.read
        )
        out = open(args.output, "wb") if args.output else nullcontext(sys.stdout.buffer)  # noqa: SIM115
        with out as sink:
            for chunk in encode(items, fmt, kind):
                sink.write(chunk)
    finally:
        db.close()
    return 0


def cmd_import(args: argparse.Namespace, ctx: Context) -> int:
    """``import FILE``: a JSONL export into the project of the given keys."""
    from .lifecycle.importer import ImportFailed, ImportResult, import_file

    public = args.public_key or os.environ.get("LANGFUSE_PUBLIC_KEY")
    secret = os.environ.get("LANGFUSE_SECRET_KEY")
    host = args.host or os.environ.get("LANGFUSE_HOST") or os.environ.get("LANGFUSE_BASE_URL")
    if not (public and secret and host):
        raise SystemExit(
            "lanterna import: set LANGFUSE_HOST (or --host), LANGFUSE_PUBLIC_KEY (or"
            " --public-key) and LANGFUSE_SECRET_KEY for the target project"
        )

    def progress(r: ImportResult) -> None:
        sent = ", ".join(f"{n} {k}(s)" for k, n in r.sent.items())
        print(f"sent {sent}", file=sys.stderr, flush=True)

    try:
        with open(args.file, encoding="utf-8") as source:
            result = import_file(source, host, public, secret, progress=progress)
    except ImportFailed as exc:
        raise SystemExit(f"lanterna import: {exc}") from None
    for error in result.errors[:20]:
        print(f"refused: {error}", file=sys.stderr)
    total = sum(result.sent.values())
    print(f"imported {total - len(result.errors)} of {total} record(s)")
    return 1 if result.errors else 0


def _sqlite_path(args: argparse.Namespace, ctx: Context, verb: str) -> Path:
    from .store.db import Database

    url = ctx.settings_of(args).db_url
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        raise SystemExit(
            f"lanterna {verb}: the database is PostgreSQL: use pg_dump / pg_restore"
            " (docs/operations.md#backup)"
        )
    db = Database(url)
    try:
        assert db.path is not None
        return db.path
    finally:
        db.close()


def _pages(done: int, total: int) -> None:
    print(f"copied {done} of {total} page(s)", file=sys.stderr, flush=True)


def cmd_backup(args: argparse.Namespace, ctx: Context) -> int:
    """``backup DEST``: a consistent copy of the SQLite database, while it serves."""
    from .store.backup import BackupError, backup, copy_media, media_folder_of

    source = _sqlite_path(args, ctx, "backup")
    settings = ctx.settings_of(args)
    try:
        result = backup(source, Path(args.dest), progress=_pages)
        if settings.media_storage == "local":  # S3 media stay in their bucket
            folder = media_folder_of(result.path)
            copied = copy_media(result.path, Path(settings.media_folder), folder)
            print(f"copied {copied} media blob(s) to {folder}", file=sys.stderr)
    except BackupError as exc:
        raise SystemExit(f"lanterna backup: {exc}") from None
    print(f"backed up {source} to {result.path} ({result.pages} pages, {result.bytes} bytes)")
    return 0


def cmd_restore(args: argparse.Namespace, ctx: Context) -> int:
    """``restore BACKUP``: the backup copied over the database (server stopped)."""
    from .store.backup import BackupError, copy_media, media_folder_of, restore

    target = _sqlite_path(args, ctx, "restore")
    settings = ctx.settings_of(args)
    try:
        result = restore(Path(args.backup), target, force=args.force, progress=_pages)
        folder = media_folder_of(Path(args.backup))
        if settings.media_storage == "local" and folder.is_dir():
            copied = copy_media(target, folder, Path(settings.media_folder))
            print(f"restored {copied} media blob(s) from {folder}", file=sys.stderr)
    except BackupError as exc:
        raise SystemExit(f"lanterna restore: {exc}") from None
    print(f"restored {args.backup} to {result.path} ({result.pages} pages)")
    return 0


def cmd_rollups(args: argparse.Namespace, ctx: Context) -> int:
    """``rollups rebuild``: the ClickHouse event store's rollups recomputed from its
    events (after a process died between inserting a batch and its rollup deltas)."""
    from .server.runtime import migrate_events, store_for
    from .store.clickhouse import rollups as ch_rollups
    from .store.clickhouse.store import ClickHouseStore

    settings = ctx.settings_of(args)
    if not settings.events_url:
        raise SystemExit(
            "lanterna rollups: --events-url (or LANTERNA_EVENTS_URL) names the ClickHouse"
            " event store; on SQLite and PostgreSQL the write path keeps the rollups exact"
        )
    db = _open(settings.db_url)
    try:
        store = store_for(settings)
        assert isinstance(store, ClickHouseStore)
        migrate_events(db, store)
        projects = None
        if args.project:
            read, _ = _runners(db)
            projects = [read(lambda c: ctx.project_of(c, args.project))]
        rows = ch_rollups.rebuild(store.events, projects)
    finally:
        db.close()
    print(f"rebuilt the rollups: {rows} row(s)")
    return 0


def _events_option(parser: Any) -> None:
    parser.add_argument(
        "--events-url",
        metavar="URL",
        help="the servers' ClickHouse event store (env LANTERNA_EVENTS_URL; docs/scale-out.md)",
    )


def add_commands(sub: Any, db_options: Options, ctx: Context, when: Callable[[str], Any]) -> None:
    """Add the lifecycle commands to ``lanterna``'s sub-parsers."""

    def bind(command: Callable[[argparse.Namespace, Context], int]) -> Callable[..., int]:
        return lambda args: command(args, ctx)

    delete = sub.add_parser("delete", help="delete a user's or a session's data (audited)")
    delete.add_argument("what", choices=("user", "session"), help="what the id names")
    delete.add_argument("id", help="the user id or session id")
    delete.add_argument("--project", help="project id (needed when there are several)")
    db_options(delete)
    _events_option(delete)
    delete.set_defaults(func=bind(cmd_delete))

    export = sub.add_parser("export", help="export traces, observations and scores")
    export.add_argument("--format", choices=("jsonl", "csv", "parquet"), default="jsonl")
    export.add_argument(
        "--kind",
        choices=("trace", "observation", "score"),
        help="csv and parquet: which records (default trace); jsonl holds every kind",
    )
    export.add_argument("--output", "-o", help="file to write (default standard output)")
    export.add_argument("--project", help="project id (needed when there are several)")
    export.add_argument("--user-id", help="only traces of this user")
    export.add_argument("--session-id", help="only traces of this session")
    export.add_argument("--name", help="only traces of this name")
    export.add_argument("--since", type=when, help="only traces at or after this time")
    export.add_argument("--until", type=when, help="only traces before this time")
    export.add_argument("--tag", action="append", help="only traces with this tag (repeatable)")
    export.add_argument("--environment", action="append", help="only this environment")
    export.add_argument("--filter", help="the trace list's filter JSON")
    db_options(export)
    _events_option(export)
    export.set_defaults(func=bind(cmd_export))

    imp = sub.add_parser("import", help="send a JSONL export to a server's project")
    imp.add_argument("file", help="the JSONL file made by `lanterna export`")
    imp.add_argument(
        "--host", help="the target server's URL (default LANGFUSE_HOST, else LANGFUSE_BASE_URL)"
    )
    imp.add_argument("--public-key", help="the target project's public key")
    imp.set_defaults(func=bind(cmd_import))

    rollups = sub.add_parser("rollups", help="the ClickHouse event store's metrics rollups")
    rollups_sub = rollups.add_subparsers(dest="action", required=True)
    rebuild = rollups_sub.add_parser("rebuild", help="recompute them from the stored events")
    rebuild.add_argument("--project", help="only this project's (default: every project)")
    db_options(rebuild)
    _events_option(rebuild)
    rollups.set_defaults(func=bind(cmd_rollups))

    bak = sub.add_parser("backup", help="copy the SQLite database while it serves")
    bak.add_argument("dest", help="the backup file to write")
    db_options(bak)
    bak.set_defaults(func=bind(cmd_backup))

    res = sub.add_parser("restore", help="copy a backup over the SQLite database")
    res.add_argument("backup", help="the backup file")
    res.add_argument("--force", action="store_true", help="replace an existing database")
    db_options(res)
    res.set_defaults(func=bind(cmd_restore))


def copy_database_command(args: argparse.Namespace) -> int:
    """``migrate --from SOURCE --to TARGET``: the copy, its progress and its verification."""
    import time

    from .store.copy import CopyError, copy_database, source_database
    from .store.db import Database

    refused = None
    if not (args.source and args.target):
        refused = "--from and --to go together (see docs/scale-out.md)"
    elif not args.target.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        refused = "--to must be a PostgreSQL URL (postgresql://...)"
    events = None
    if refused is None and args.events:
        from .errors import DomainError
        from .store.clickhouse import EventsDb

        try:
            events = EventsDb(args.events)
        except DomainError as exc:
            refused = f"--events: {exc}"
    if refused is None:
        try:
            source = source_database(args.source)
        except CopyError as exc:
            refused = str(exc)
    if refused is not None:
        if events is not None:
            events.close()
        print(f"lanterna migrate: {refused}", file=sys.stderr)
        return 2
    target = Database(args.target)
    where = " (traces, observations and scores into the ClickHouse event store)" if events else ""
    print(f"Copying {source.describe()} into {target.describe()}{where}", flush=True)
    shown: dict[str, Any] = {"table": "", "at": 0.0}

    def progress(table: str, copied: int, total: int, done: bool) -> None:
        # Each table's first batch, then at most once a second, and when it is done.
        first = table != shown["table"]
        if done or first or time.monotonic() - shown["at"] >= 1.0:
            shown.update(table=table, at=time.monotonic())
            state = "done" if done else "..."
            print(f"  {table}: {copied:,} / {total:,} rows {state}", flush=True)

    try:
        report = copy_database(
            source, target, batch_size=args.batch_size, progress=progress, events=events
        )
    except CopyError as exc:
        print(f"lanterna migrate: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\nInterrupted: the target holds every batch committed so far; run the same"
            " command again to continue.",
            file=sys.stderr,
        )
        return 130
    finally:
        source.close()
        target.close()
        if events is not None:
            events.close()
    if report.resumed:
        print("Continued an earlier copy.")
    bad = [c for c in report.checks if not c.ok]
    rows = sum(c.source_rows for c in report.checks)
    if bad:
        for c in bad:
            print(
                f"MISMATCH {c.table}: source {c.source_rows:,} rows ({c.source_sum}),"
                f" target {c.target_rows:,} rows ({c.target_sum})",
                file=sys.stderr,
            )
        print(f"Verification failed for {len(bad)} table(s).", file=sys.stderr)
        return 1
    print(f"Verified: {len(report.checks)} tables, {rows:,} rows, counts and checksums equal.")
    return 0
