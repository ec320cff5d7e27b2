"""The engine: one per database URL, with the settings this project relies on per dialect.

SQLite: foreign keys on, a 30 s busy timeout, WAL for files; a writing transaction starts with
``BEGIN IMMEDIATE`` (so concurrent writers queue on the database lock instead of failing when
they upgrade a read snapshot), a reading one with a plain deferred ``BEGIN``. The writers of one
process first queue on an in-process lock per database file (see ``sqlite_write_lock``).
PostgreSQL: pre-ping, a pool sized by the caller, and a bounded connect (an unreachable server
fails a request in seconds, as a 503, instead of hanging it).
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import StaticPool

#: Execution option that marks a connection as opened for a writing unit of work.
WRITE_OPTION = "scaicrew_write"

#: Seconds a new PostgreSQL connection may take before it fails.
CONNECT_TIMEOUT_SECONDS = 5

#: Connections a SQLite file's pool keeps open at least: as many as the threads that may hold
#: one at once (Starlette's thread pool runs up to 40 sync handlers), so a burst of concurrent
#: requests reuses connections instead of opening and closing overflow ones (each new one costs
#: its PRAGMAs). SQLite connections are file handles, not server sessions: cheap to keep.
SQLITE_MIN_POOL_SIZE = 40

_SQLITE_WRITE_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    """Create an engine with the settings this project relies on for ``url``'s dialect.

    The one engine factory: the app, the workers, the CLI and the bench's baseline
    (``bench/bare_app.py``) all build their engines here, so they share pool and driver settings.
    """
    if url.startswith("sqlite"):
        in_memory = url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if in_memory:
            # One shared connection, or each thread would see its own empty database.
            kwargs["poolclass"] = StaticPool
        else:
            kwargs["pool_size"] = max(pool_size, SQLITE_MIN_POOL_SIZE)
            kwargs["max_overflow"] = pool_size
        engine = create_engine(url, echo=echo, **kwargs)
        _configure_sqlite(engine, wal=not in_memory)
        return engine
    return create_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=10,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )


def sqlite_write_lock(url: str) -> threading.Lock:
    """The in-process lock the writers of one SQLite database queue on.

    SQLite allows one writer at a time. Writers that queue inside SQLite's busy handler sleep
    in growing steps, which gave a p99 of 0.5 s under load in `make bench`; queueing the
    writers of this process on a lock first keeps the tail short. One lock per database file,
    shared by every Database object of the process that points at it.
    """
    with _LOCKS_GUARD:
        return _SQLITE_WRITE_LOCKS.setdefault(url, threading.Lock())


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not the driver, decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")
