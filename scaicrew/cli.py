"""The ``scaicrew`` command: serve, migrate, token."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from typing import Any

from domain.database import Database
from domain.kernel import DEFAULT_TENANT, Role
from scaicrew.adapters.session_tokens import session_tokens
from scaicrew.migrate import upgrade
from scaicrew.observability import Observability, configure_logging
from scaicrew.settings import Settings, SettingsError


def mint_session_token(
    settings: Settings,
    *,
    workspace_id: str,
    subject: str,
    role: Role,
    tenant_id: str = DEFAULT_TENANT,
    ttl_seconds: int | None = None,
    now: int | None = None,
) -> str:
    """Sign a session token exactly as the login flow does (same signer)."""
    return session_tokens(settings).mint(
        subject=subject,
        tenant_id=tenant_id,
        workspace_id=workspace_id,
        role=role.label,
        ttl_seconds=ttl_seconds,
        now=now,
    )


def serve_refusal(settings: Settings, workers: int) -> str | None:
    """Why ``serve --workers`` cannot run as asked (None: it can)."""
    if workers < 1:
        return "--workers must be at least 1."
    if workers == 1:
        return None
    if settings.database_url.startswith("sqlite"):
        return (
            f"--workers {workers} needs PostgreSQL (DATABASE_URL=postgresql+psycopg://...): "
            "SQLite lets one process write at a time, so more API processes would only queue "
            "on its lock. Serve SQLite with one process (no --workers)."
        )
    if settings.observability.metrics_port:
        return (
            f"--workers {workers} cannot share METRICS_PORT: each process has its own metrics. "
            "Scrape /metrics on the API port instead (METRICS_ENABLED), or serve one process."
        )
    return None


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from scaicrew.affinity import claims_directory, usable_cpus
    from scaicrew.http_protocol import WorkerProtocol, bounded_protocol

    workers = args.workers
    refusal = serve_refusal(settings, workers)
    if refusal is not None:
        print(f"scaicrew serve: {refusal}", file=sys.stderr)
        return 2
    if settings.cpu_affinity:  # checked here too: a --workers process could only log it
        usable_cpus(settings.cpu_affinity)
    configure_logging(settings.observability.log_format, settings.log_level)
    if not args.no_migrate:
        upgrade(settings.database_url)
    options: dict[str, Any] = {
        "host": args.host or settings.host,
        "port": args.port or settings.port,
        "log_level": settings.log_level,
        "log_config": None,  # configure_logging's handler, in LOG_FORMAT
        "access_log": False,  # our request lines replace uvicorn's (scaicrew.request)
    }
    if workers == 1:
        uvicorn.run(
            served_app(settings),
            workers=1,
            http=bounded_protocol(settings.max_header_bytes),
            **options,
        )
        return 0
    # N processes share the listening socket; each builds its app from the same environment
    # (``served_worker_app``), with its own pool, background workers and stream hub (ADR
    # 0050), each pinned to a CPU of its own when CPU_AFFINITY lists some (ADR 0058).
    group = os.environ["SCAICREW_SERVE_GROUP"] = str(os.getpid())
    WorkerProtocol.limit = settings.max_header_bytes
    try:
        uvicorn.run(
            f"{__name__}:served_worker_app",
            factory=True,
            workers=workers,
            http=f"{WorkerProtocol.__module__}:{WorkerProtocol.__name__}",
            # A process builds the whole app before it first answers the supervisor's health
            # check; uvicorn's default of 5 s kills and restarts it in a loop on a busy machine.
            timeout_worker_healthcheck=60,
            **options,
        )
    finally:
        shutil.rmtree(claims_directory(group), ignore_errors=True)
    return 0


def served_app(settings: Settings | None = None) -> Any:
    """The app of one serving process: ``serve`` builds it with its settings, uvicorn's
    factory (``make bench``, ``uvicorn --factory``) from the environment. Tuned for serving
    (``settle_for_serving``) and pinned to ``CPU_AFFINITY`` once built."""
    from scaicrew.affinity import pin_to_cpus

    if settings is None:
        settings = _factory_settings()
    app = _built(settings)
    pin_to_cpus(settings.cpu_affinity)
    return app


def served_worker_app() -> Any:
    """The app of one ``serve --workers`` process (uvicorn imports and calls it there): as
    ``served_app``, but pinned to one CPU of ``CPU_AFFINITY`` that no other process of the
    same ``serve`` holds."""
    from scaicrew.affinity import pin_to_one_of

    settings = _factory_settings()
    app = _built(settings)
    pin_to_one_of(settings.cpu_affinity, os.environ.get("SCAICREW_SERVE_GROUP", "serve"))
    return app


def _factory_settings() -> Settings:
    """The settings of a process uvicorn started: nothing of its parent is set there."""
    from scaicrew.http_protocol import WorkerProtocol

    settings = Settings.from_env()
    configure_logging(settings.observability.log_format, settings.log_level)
    WorkerProtocol.limit = settings.max_header_bytes
    return settings


def _built(settings: Settings) -> Any:
    from scaicrew.app import create_app
    from scaicrew.gc_tuning import settle_for_serving

    app = create_app(settings)
    settle_for_serving()
    return app


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    upgrade(settings.database_url)
    print(f"migrated {settings.database_url.split('@')[-1]} to head")
    return 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    role = Role.parse(args.role)
    upgrade(settings.database_url)
    from scaicrew.app import build_use_cases

    database = Database(settings.database_url)
    try:
        workspace = build_use_cases(settings, database).workspaces.ensure_member(
            args.workspace, args.subject, role, name=args.name
        )
    finally:
        database.dispose()
    print(
        mint_session_token(
            settings,
            workspace_id=workspace.id,
            subject=args.subject,
            role=role,
            tenant_id=workspace.tenant_id,
            ttl_seconds=args.ttl,
        )
    )
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    import signal
    import threading

    from scaicrew.affinity import pin_to_cpus
    from scaicrew.app import build_use_cases
    from scaicrew.gc_tuning import settle_for_serving
    from scaicrew.worker import DeliveryPool, WorkerPool

    configure_logging(settings.observability.log_format, settings.log_level)
    database = Database(settings.database_url, pool_size=settings.db_pool_size)
    observability = _process_observability(settings, database)
    use_cases = build_use_cases(settings, database, observability=observability)
    threads = args.threads or max(1, settings.runs.worker_threads)
    pool = WorkerPool(
        use_cases, threads, settings.runs.worker_poll_seconds, settings.runs.sweep_seconds
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    settle_for_serving()
    pin_to_cpus(settings.cpu_affinity)
    pool.start()
    deliveries = None
    if settings.subscriptions.delivery_threads:
        deliveries = DeliveryPool(
            use_cases, settings.subscriptions.delivery_threads, settings.subscriptions.poll_seconds
        )
    listener = None
    if not database.is_sqlite:
        # Runs queued by other processes wake this one at once (polling stays the fallback),
        # through the work channel; every committed event reaches it only while its
        # deliveries have a subscription to deliver to (ADR 0072).
        from scaicrew.adapters.pg_listener import PgListener

        listener = PgListener(
            settings.database_url,
            on_signals=use_cases.signals.publish,
            on_range=lambda _workspace_id, _through: None,
            on_connect=lambda: None,
            on_work=pool.wake,
            events=deliveries is not None,
        )
        if deliveries is not None:  # told before its threads look for the first time
            deliveries.on_subscribed = listener.want_events
        listener.start()
    if deliveries is not None:
        deliveries.start()
    print(f"worker started ({threads} threads)", flush=True)
    stop.wait()
    if listener is not None:
        listener.stop()
    pool.stop()
    if deliveries is not None:
        deliveries.stop()
    observability.shutdown()
    database.dispose()
    return 0


def _process_observability(settings: Settings, database: Database) -> Observability:
    """A process without the API: its metrics only on ``METRICS_PORT`` (when enabled)."""
    observability = Observability.from_settings(settings)
    port = settings.observability.metrics_port
    if observability.metrics is not None:
        observability.metrics.watch(database, lambda: 0)
        if port:
            observability.serve_metrics_port(port)
    return observability


def _scheduler(settings: Settings, args: argparse.Namespace) -> int:
    import signal
    import threading

    from scaicrew.app import build_use_cases
    from scaicrew.scheduler import SchedulerLoop

    configure_logging(settings.observability.log_format, settings.log_level)
    database = Database(settings.database_url, pool_size=settings.db_pool_size)
    observability = _process_observability(settings, database)
    loop = SchedulerLoop(
        build_use_cases(settings, database, observability=observability).firing,
        args.interval or settings.scheduler.interval_seconds,
        observability.tracing,
    )
    if args.once:
        fired = loop.tick_once()
        print(f"scheduler fired {fired} slot(s)", flush=True)
        database.dispose()
        return 0
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    loop.start()
    print("scheduler started", flush=True)
    stop.wait()
    loop.stop()
    database.dispose()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scaicrew", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate the database and serve the API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--no-migrate", action="store_true", help="do not migrate first")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="API processes sharing the port (PostgreSQL only; default 1)",
    )
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="bring the database schema to the latest")
    migrate.set_defaults(run=_migrate)

    worker = commands.add_parser("worker", help="execute queued runs (no HTTP server)")
    worker.add_argument("--threads", type=int, help="worker threads (default WORKER_THREADS)")
    worker.set_defaults(run=_worker)

    scheduler = commands.add_parser(
        "scheduler", help="fire due schedule triggers (several may share one PostgreSQL)"
    )
    scheduler.add_argument("--interval", type=float, help="seconds between ticks")
    scheduler.add_argument("--once", action="store_true", help="tick once and exit")
    scheduler.set_defaults(run=_scheduler)

    token = commands.add_parser(
        "token",
        help="mint a session token (creating the workspace and membership if missing)",
    )
    token.add_argument("--workspace", required=True, help="workspace id, e.g. wsp_local")
    token.add_argument("--subject", default="local-user")
    token.add_argument("--role", default="admin", choices=[r.label for r in Role])
    token.add_argument("--name", help="workspace name when it is created")
    token.add_argument("--ttl", type=int, help="lifetime in seconds")
    token.set_defaults(run=_token)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.run(settings, args))
    except SettingsError as exc:  # read at start-up, or found unusable (CPU_AFFINITY)
        print(f"scaicrew: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
