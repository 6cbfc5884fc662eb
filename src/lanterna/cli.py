"""The ``lanterna`` command: ``serve``, ``worker``, ``keys``, ``migrate`` and ``costs
recompute``; ``users`` is in :mod:`lanterna.cli_users`; ``delete``, ``export``,
``import``, ``backup`` and ``restore`` are in :mod:`lanterna.cli_data`."""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from . import __version__

if TYPE_CHECKING:
    from .server.settings import Settings

T = TypeVar("T")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .server.settings import Settings, SettingsError

    try:
        return Settings.from_env(
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            data_dir=args.data_dir,
            database_url=args.database_url,
            forwarded_allow_ips=getattr(args, "forwarded_allow_ips", None),
            public_url=getattr(args, "public_url", None),
            otlp_grpc_port=getattr(args, "otlp_grpc_port", None),
            events_url=getattr(args, "events_url", None),
        )
    except SettingsError as exc:
        raise SystemExit(f"lanterna: {exc}") from None


def _in_transaction(url: str, work: Callable[..., T]) -> T:
    """Run ``work(conn)`` in one committed transaction on a migrated database."""
    from .store.db import Database
    from .store.migrations import migrate

    db = Database(url)
    try:
        migrate(db)
        with db.transaction() as conn:
            return work(conn)
    finally:
        db.close()


def _lanterna_logs(level: str) -> None:
    """Show the ``lanterna.*`` loggers' lines (the retention job's counts, warnings) on
    standard error at ``level`` (uvicorn configures only its own loggers)."""
    import logging

    logger = logging.getLogger("lanterna")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        logger.addHandler(handler)
    number = logging.getLevelName(level.upper())  # uvicorn's "trace" is below DEBUG
    logger.setLevel(number if isinstance(number, int) else logging.DEBUG)


def _tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a long-running server.

    Ingestion allocates many short-lived dicts and lists; with the default thresholds
    the collector ran about 1,200 times per 60,000 observations ingested (8% of the
    server's CPU), rescanning every long-lived object (modules, price tables) on each
    full pass. Objects that exist at startup are frozen out of the scan, and young
    collections start after 10,000 net allocations instead of 700.
    """
    import gc

    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def _switch_interval(settings: Settings) -> None:
    """Apply ``switch_interval_us`` (docs/settings.md) to this process."""
    if settings.switch_interval_us > 0:
        sys.setswitchinterval(settings.switch_interval_us / 1e6)


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the server; on an empty database bootstrap a project and print its keys."""
    import uvicorn

    from .accounts.store import bootstrap_owner
    from .server.app import create_app
    from .store import projects
    from .store.db import Database

    settings = _settings(args)
    _switch_interval(settings)
    if args.no_auth:
        settings.no_auth = True
        if settings.host not in _LOOPBACK:
            print(f"--no-auth: ignoring --host {settings.host}; binding 127.0.0.1 only.")
        settings.host = "127.0.0.1"

    try:
        sock = _bind(settings.host, settings.port)
    except OSError as exc:
        print(_bind_error(settings.host, settings.port, exc), file=sys.stderr)
        return 2
    settings.port = sock.getsockname()[1]  # the one bound when --port 0

    def first_start(conn):  # type: ignore[no-untyped-def]
        key = projects.bootstrap(conn)
        owner = bootstrap_owner(conn, settings.admin_email, settings.admin_password)
        return key, owner

    key, owner = _in_transaction(settings.db_url, first_start)
    db = Database(settings.db_url)
    where = db.describe()
    db.close()
    print(f"Lanterna {__version__}: data in {where}")
    if key is not None:
        print("Created an organization, a project and an API key. Put these lines in your .env:")
        print()
        print(f"LANGFUSE_PUBLIC_KEY={key.public_key}")
        print(f"LANGFUSE_SECRET_KEY={key.secret_key}")
        print(f"LANGFUSE_HOST={settings.base_url}")
        print()
        print("The secret key is shown only this once; `lanterna keys create` makes another.")
    else:
        print("Existing project(s) found; `lanterna keys list` shows their public keys.")
    if owner is not None:
        email, password = owner
        if password is None:
            print(f"Created the owner account {email} (password from LANTERNA_ADMIN_PASSWORD).")
        else:
            print(f"Created the owner account for the web UI: {email}")
            print(f"One-time password (shown only now; set your own at first login): {password}")
    if settings.no_auth:
        print(
            "WARNING: --no-auth: the web UI has no login; anyone who can reach"
            " 127.0.0.1 on this machine acts as the owner. Use it only for local, single-user work."
        )
    print(f"Listening on {settings.base_url}", flush=True)
    _lanterna_logs(args.log_level)
    app = create_app(settings)
    _tune_gc()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        access_log=args.access_log,
        # Forwarded headers are handled by the app, from forwarded_allow_ips only:
        # uvicorn's default would believe them from any local peer.
        proxy_headers=False,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _bind(host: str, port: int) -> socket.socket:
    """The server's listening socket, bound before anything is written or printed, so a
    port in use stops ``serve`` before it bootstraps a project or claims to listen."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _bind_error(host: str, port: int, exc: OSError) -> str:
    """What to tell the user when the listening socket cannot be bound."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"Port {port} on {host} is in use (another lanterna serve?): pick another with"
            f" --port N or LANTERNA_PORT=N, or stop what listens there."
        )
    if exc.errno == errno.EACCES:
        return f"No permission to listen on {host}:{port}: pick a port above 1023 with --port N."
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"{host} is not an address of this machine: set --host (LANTERNA_HOST) to one that is."
        )
    return f"Cannot listen on {host}:{port}: {exc.strerror or exc}."


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply pending schema migrations; with ``--from``/``--to``, copy a whole database
    into a new PostgreSQL database (:mod:`lanterna.store.copy`)."""
    from .store.db import Database
    from .store.migrations import migrate

    if args.source or args.target or args.events:
        from .cli_data import copy_database_command

        return copy_database_command(args)
    db = Database(_settings(args).db_url)
    try:
        done = migrate(db)
    finally:
        db.close()
    print(f"applied {len(done)} migration(s)" + (": " + ", ".join(done) if done else ""))
    return 0


def _stored_channels(db, store, settings):  # type: ignore[no-untyped-def]
    """The worker's ``channels_for``: a rule's stored channels, opened with the server
    key and sent with the SSRF allowlist (as ``lanterna serve`` does)."""
    from .alerts.channels import Delivery
    from .alerts.outbound import RetryPolicy
    from .alerts.stored import channel_lookup, outbound_policy, secret_box

    def fetch(project_id, ids):  # type: ignore[no-untyped-def]
        with db.read() as conn:
            rows = (store.channels.get_channel(conn, project_id, i) for i in dict.fromkeys(ids))
            return [r for r in rows if r is not None]

    made = []

    def channels_for(rule):  # type: ignore[no-untyped-def]
        if not rule.get("channel_ids"):
            return []
        if not made:  # the key file is read (or made) only when a rule names a channel
            box = secret_box(settings.secret_key, settings.data_dir)
            delivery = Delivery(
                policy=outbound_policy(settings.outbound_allow), retry=RetryPolicy()
            )
            made.append(channel_lookup(fetch, box, delivery))
        return made[0](rule)

    return channels_for


def cmd_worker(args: argparse.Namespace) -> int:
    """Evaluate alert rules and run online evaluation rules: every ``--interval``
    seconds until stopped, or once."""
    import signal
    from datetime import timedelta

    from .alerts.evaluator import Evaluator, EvaluatorLoop, file_clock
    from .alerts.secretbox import SecretBox
    from .alerts.stored import outbound_policy, secret_box
    from .evaluation.llm import Caller
    from .evaluation.worker import Evaluate, EvaluationWorker
    from .lifecycle.retention import RetentionJob, RetentionLoop
    from .server.media import blob_store
    from .server.runtime import migrate_events, store_for
    from .server.scheduled_exports import ExportJob, ExportLoop
    from .store.db import Database
    from .store.interface import purge_freed
    from .store.migrations import migrate
    from .store.writer import Writer

    settings = _settings(args)
    _switch_interval(settings)
    _lanterna_logs("info")
    # A worker runs every background job whatever the settings that turn them off in
    # `serve` (API processes set them to 0 so the workers run them; one environment may
    # be shared): a 0 there means the default period here.
    periods = _worker_periods(settings)
    interval = args.interval if args.interval is not None else periods["alert_tick_seconds"]
    if interval <= 0 and not args.once:
        raise SystemExit("lanterna: --interval must be a positive number of seconds")
    db = Database(settings.db_url)
    writer = Writer(db)
    try:
        migrate(db)
        store = store_for(settings)  # with --events-url: the ClickHouse event store
        migrate_events(db, store)
        writer.start()
        evaluator = Evaluator(
            db,
            store,
            writer.run_sync,
            channels_for=_stored_channels(db, store, settings),
            base_url=settings.base_url,
        )
        every = periods["retention_interval_seconds"]
        media = store.media
        blobs = blob_store(settings)
        retention = RetentionJob(
            db,
            store,
            writer.run_sync,
            interval=timedelta(seconds=max(every, 1)),
            purge_media=lambda: purge_freed(
                writer.run_sync, media.freed_blobs, media.forget_freed, blobs
            ),
        )

        def read(query):  # type: ignore[no-untyped-def]
            with db.read() as conn:
                return query(conn)

        caller = Caller(
            policy=outbound_policy(settings.outbound_allow),
            timeout=float(settings.llm_timeout_seconds),
        )

        def box() -> SecretBox:
            return secret_box(settings.secret_key, settings.data_dir)

        evaluations = EvaluationWorker(
            db, store, writer.run_sync, Evaluate(store, read, box, caller)
        )
        exports = ExportJob(
            db, store, writer.run_sync, box, outbound_policy(settings.outbound_allow)
        )
        if settings.alert_clock_file:  # testing only (docs/settings.md)
            evaluator.clock = file_clock(settings.alert_clock_file)
        if args.once:
            outcomes = evaluator.tick()
            print(f"evaluated {len(outcomes)} rule(s)")
            run = retention.tick()
            if run is not None:
                gone = run.total
                print(f"retention: deleted {gone.traces} trace(s), {gone.scores} score(s)")
            turns = evaluations.tick()
            if turns:  # quiet when the project has no evaluation rules
                done = sum(t.evaluated + t.errors for t in turns)
                print(f"ran {len(turns)} evaluation rule(s): {done} evaluation(s)")
            exported = exports.tick()
            if exported:
                print(f"ran {len(exported)} scheduled export(s) to object storage")
            return 0
        loop = EvaluatorLoop(evaluator, interval)
        evaluation_loop = EvaluatorLoop(
            evaluations, periods["evaluation_tick_seconds"], "lanterna-evaluation"
        )
        cleaner = RetentionLoop(retention, min(every, 300))
        exporter = ExportLoop(exports, periods["export_tick_seconds"])

        def stop(*_: object) -> None:
            evaluation_loop.stop(timeout=0)
            loop.stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, stop)
        print(
            f"lanterna worker: alert rules every {interval:g} s, evaluation rules every"
            f" {periods['evaluation_tick_seconds']:g} s, retention every {every:g} s,"
            f" scheduled exports every {periods['export_tick_seconds']:g} s on {db.describe()}"
        )
        cleaner.start()  # the retention job, once across processes (a lease)
        exporter.start()  # scheduled exports, a lease per integration
        evaluation_loop.start()
        try:
            loop.run_forever()
        finally:
            evaluation_loop.stop()
            cleaner.stop()
            exporter.stop()
        return 0
    finally:
        writer.stop()
        db.close()


def _worker_periods(settings: Settings) -> dict[str, float]:
    """Seconds between runs of each job of ``lanterna worker``: the setting, or its
    default where the setting is 0 (off in `serve`, never in a worker)."""
    from .server.settings import Settings

    names = (
        "alert_tick_seconds",
        "evaluation_tick_seconds",
        "retention_interval_seconds",
        "export_tick_seconds",
    )
    # A dataclass keeps each field's default as the class attribute.
    return {
        n: getattr(settings, n) if getattr(settings, n) > 0 else getattr(Settings, n) for n in names
    }


def _project_id(conn, given: str | None) -> str:  # type: ignore[no-untyped-def]
    """``--project``'s id, checked; without it the only project (or exit)."""
    from .store import projects

    if given is None:
        all_projects = projects.list_projects(conn)
        if len(all_projects) != 1:
            raise SystemExit("more than one project (or none): name one with --project ID")
        return str(all_projects[0]["id"])
    if projects.get_project(conn, given) is None:
        raise SystemExit(f"no project {given}")
    return given


def _create_org_key(args: argparse.Namespace, url: str) -> int:
    """``lanterna keys create --org ORG``: an organisation key (audited in each of the
    organisation's projects)."""
    from .store import audit, projects

    def create(conn):  # type: ignore[no-untyped-def]
        org = projects.get_organization(conn, args.org)
        if org is None:
            raise SystemExit(f"no organization {args.org} (give its id, or a unique name)")
        key = projects.create_org_key(conn, org["id"], note=args.note)
        for project in projects.org_projects(conn, org["id"]):
            audit.record(conn, project["id"], "cli", "org_api_key.create", key.public_key)
        return key

    key = _in_transaction(url, create)
    _print_pair(
        f"organization: {key.org_id} (organization key: only the organization-level API)",
        key.public_key,
        key.secret_key,
    )
    return 0


def _print_pair(head: str, public_key: str, secret_key: str) -> None:
    """A new key pair, as ``LANGFUSE_*`` lines (the only time the secret is shown)."""
    print(head)
    print(f"LANGFUSE_PUBLIC_KEY={public_key}")
    print(f"LANGFUSE_SECRET_KEY={secret_key}")
    print("The secret key is shown only this once.")


def cmd_keys(args: argparse.Namespace) -> int:
    """Create, list or revoke API keys (creating and revoking are audited)."""
    from .store import audit, projects

    url = _settings(args).db_url
    if args.action == "create":
        if args.org is not None:
            if args.project is not None or args.role is not None:
                raise SystemExit("--org makes an organization key: no --project or --role")
            return _create_org_key(args, url)
        role = args.role or "admin"

        def create(conn):  # type: ignore[no-untyped-def]
            project_id = _project_id(conn, args.project)
            key = projects.create_key(conn, project_id, note=args.note, role=role)
            audit.record(conn, key.project_id, "cli", "api_key.create", key.public_key)
            return key

        key = _in_transaction(url, create)
        _print_pair(f"project: {key.project_id} (key role {role})", key.public_key, key.secret_key)
        return 0
    if args.action == "list":

        def listing(c):  # type: ignore[no-untyped-def]
            if args.org is not None:
                return [], projects.list_org_keys(c, args.org)
            keys = projects.list_keys(c, args.project)
            return keys, ([] if args.project else projects.list_org_keys(c))

        rows, org_rows = _in_transaction(url, listing)
        lines = [
            (r, f"project={r['project_id']} ({r['project_name']})  role={r['role']}") for r in rows
        ] + [(r, f"org={r['org_id']} ({r['org_name']})") for r in org_rows]
        for row, owner in lines:
            state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
            print(
                f"{row['public_key']}  {row['display_secret']}  {owner}"
                f"  created={row['created_at']}  {state}"
                + (f"  note={row['note']}" if row["note"] else "")
            )
        return 0

    def revoke(conn):  # type: ignore[no-untyped-def]
        mine = [k for k in projects.list_keys(conn) if args.key in (k["public_key"], k["id"])]
        done = projects.revoke_key(conn, args.key)
        if done and mine:
            key = mine[0]
            audit.record(conn, key["project_id"], "cli", "api_key.revoke", key["public_key"])
        if not done:
            org_id = projects.revoke_org_key(conn, args.key)
            for project in projects.org_projects(conn, org_id) if org_id else []:
                audit.record(conn, project["id"], "cli", "org_api_key.revoke", args.key)
            done = org_id is not None
        return done

    revoked = _in_transaction(url, revoke)
    if not revoked:
        print(f"no active key {args.key}", file=sys.stderr)
        return 1
    print(f"revoked {args.key}")
    return 0


def cmd_costs(args: argparse.Namespace) -> int:
    """Recalculate calculated costs of past observations (provided costs stay)."""
    from .store.db import Database
    from .store.migrations import migrate
    from .store.recompute import Result, recompute

    settings = _settings(args)
    db = Database(settings.db_url)
    try:
        migrate(db)
        walk: Callable[..., Result] = recompute
        if settings.events_url:  # the observations are in the ClickHouse event store
            from .server.runtime import migrate_events, store_for
            from .store.clickhouse.recompute import recompute_events
            from .store.clickhouse.store import ClickHouseStore

            store = store_for(settings)
            assert isinstance(store, ClickHouseStore)
            migrate_events(db, store)
            walk = partial(recompute_events, events=store.events)
        result = walk(
            db,
            since=args.since,
            until=args.until,
            project_id=args.project,
            batch_size=args.batch_size,
            progress=lambda r: print(f"{r.scanned} observation(s) checked", flush=True),
        )
    finally:
        db.close()
    print(
        f"recomputed {result.scanned} observation(s): {result.changed} changed"
        + (f", {result.failed} failed (see the log)" if result.failed else "")
    )
    return 1 if result.failed else 0


def _when(value: str):  # type: ignore[no-untyped-def]
    """A ``--since``/``--until`` value: ISO-8601 with offset, or a date (UTC midnight)."""
    from datetime import date, datetime, timezone

    from .timeutil import parse_ts

    try:
        return parse_ts(value)
    except ValueError:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{value!r}: expected a date (2024-05-01) or a timestamp with offset"
            ) from None
        return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _db_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        help="folder of the SQLite database (default ~/.lanterna, env LANTERNA_DATA_DIR)",
    )
    parser.add_argument(
        "--database-url",
        help="postgresql://user:pass@host/db instead of SQLite (env LANTERNA_DATABASE_URL)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (documented in docs/cli.md)."""
    parser = argparse.ArgumentParser(prog="lanterna", description="Self-hosted LLM observability.")
    parser.add_argument("--version", action="version", version=f"lanterna {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server (API and UI)")
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1, env LANTERNA_HOST)")
    serve.add_argument("--port", type=int, help="port (default 3000, env LANTERNA_PORT)")
    _db_options(serve)
    serve.add_argument(
        "--log-level",
        default="info",
        type=str.lower,
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="uvicorn log level (default info)",
    )
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="log every request (default off)",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="comma-separated proxies (addresses or networks) whose X-Forwarded-For/-Proto"
        " headers are believed (default none; env LANTERNA_FORWARDED_ALLOW_IPS)",
    )
    serve.add_argument(
        "--public-url",
        metavar="URL",
        help="URL clients reach the server at; https turns on HSTS (env LANTERNA_PUBLIC_URL)",
    )
    serve.add_argument(
        "--otlp-grpc-port",
        type=int,
        nargs="?",
        const=4317,
        metavar="PORT",
        help="also receive OTLP traces over gRPC on this port (4317 when given alone;"
        " default off; env LANTERNA_OTLP_GRPC_PORT)",
    )
    serve.add_argument(
        "--events-url",
        metavar="URL",
        help="keep traces, observations and scores in ClickHouse: clickhouse://user:pass@host:8123/db"
        " (env LANTERNA_EVENTS_URL; see docs/scale-out.md)",
    )
    serve.add_argument(
        "--no-auth",
        action="store_true",
        help="no login in the web UI, for one local user: binds 127.0.0.1 only (prints a warning)",
    )
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser(
        "worker",
        help="evaluate alert rules and online evaluation rules (beside or instead of the"
        " servers' background loops)",
    )
    _db_options(worker)
    worker.add_argument(
        "--interval",
        type=float,
        help="seconds between looks for due alert rules (default: LANTERNA_ALERT_TICK_SECONDS,"
        " or 15 where that is 0)",
    )
    worker.add_argument(
        "--once", action="store_true", help="one look for due rules and new traces, then exit"
    )
    worker.add_argument(
        "--public-url",
        help="the server's URL, for links in notifications (env LANTERNA_PUBLIC_URL)",
    )
    worker.add_argument(
        "--events-url",
        metavar="URL",
        help="the servers' ClickHouse event store, where rules and budgets read the traces"
        " (env LANTERNA_EVENTS_URL; see docs/scale-out.md)",
    )
    worker.set_defaults(func=cmd_worker)

    migrate = sub.add_parser(
        "migrate",
        help="apply pending schema migrations; with --from/--to copy a database into PostgreSQL",
    )
    _db_options(migrate)
    migrate.add_argument(
        "--from",
        dest="source",
        metavar="URL",
        help="copy this database (sqlite:///path/lanterna.db, a data folder, or postgresql://)",
    )
    migrate.add_argument(
        "--to",
        dest="target",
        metavar="URL",
        help="into this new, empty PostgreSQL database (postgresql://...); rerun to resume",
    )
    migrate.add_argument(
        "--events",
        metavar="URL",
        help="with --from/--to: traces, observations and scores into this ClickHouse event"
        " store instead (clickhouse://user:pass@host:8123/db; see docs/scale-out.md)",
    )
    migrate.add_argument(
        "--batch-size",
        type=int,
        default=1000,
        help="rows per committed batch of the copy (default 1000)",
    )
    migrate.set_defaults(func=cmd_migrate)

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    create = keys_sub.add_parser("create", help="create a key pair (prints the secret once)")
    create.add_argument("--project", help="project id (needed when there are several)")
    create.add_argument(
        "--org",
        help="make an organization key instead (organization id or unique name): it opens"
        " only the organization-level API (projects, their keys and members, SCIM)",
    )
    create.add_argument("--note", help="a note to remember the key by")
    from .accounts.roles import ROLES

    create.add_argument(
        "--role",
        choices=ROLES,
        default=None,
        help="what the key may change: viewer and member keys only read alert rules,"
        " channels and budgets (default admin: everything)",
    )
    _db_options(create)
    listing = keys_sub.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--project", help="only this project's keys")
    listing.add_argument("--org", help="only this organization's organization keys (its id)")
    _db_options(listing)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by public key or id")
    revoke.add_argument("key", help="public key (pk-lf-...) or key id")
    _db_options(revoke)
    keys.set_defaults(func=cmd_keys)

    from .cli_users import add_commands as add_user_commands

    add_user_commands(sub, _db_options, _settings, _project_id, _in_transaction)

    costs = sub.add_parser("costs", help="cost tracking maintenance")
    costs_sub = costs.add_subparsers(dest="action", required=True)
    recompute = costs_sub.add_parser(
        "recompute", help="recalculate calculated costs of past observations"
    )
    recompute.add_argument(
        "--since", required=True, type=_when, help="observations that started at or after this"
    )
    recompute.add_argument("--until", type=_when, help="and before this (default: no end)")
    recompute.add_argument("--project", help="only this project's observations")
    recompute.add_argument(
        "--batch-size", type=int, default=500, help="observations per transaction (default 500)"
    )
    recompute.add_argument(
        "--events-url",
        metavar="URL",
        help="the ClickHouse event store holding the observations (env LANTERNA_EVENTS_URL)",
    )
    _db_options(recompute)
    costs.set_defaults(func=cmd_costs)
    from .cli_data import Context, add_commands

    add_commands(sub, _db_options, Context(_settings, _project_id), _when)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lanterna`` command."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
