"""The engine: one per database URL, with the settings this project relies on per dialect.

SQLite: foreign keys on, a 30 s busy timeout, WAL for files; a writing transaction starts with
``BEGIN IMMEDIATE`` (so concurrent writers queue on the database lock instead of failing when
they upgrade a read snapshot), a reading one with a plain deferred ``BEGIN``. The writers of one
process first queue on an in-process lock per database file (see ``sqlite_write_lock``), then
write through one shared connection (see ``make_sqlite_writer_engine``).
PostgreSQL: a pool sized by the caller, a ping before reusing a connection that sat idle in it
(see ``PING_AFTER_IDLE_SECONDS``), and a bounded connect (an unreachable server fails a request
in seconds, as a 503, instead of hanging it).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection, StaticPool

from domain.persistence.checkpoints import WRITER_AUTOCHECKPOINT_PAGES

#: Execution option that marks a connection as opened for a writing unit of work.
WRITE_OPTION = "scaicrew_write"

#: Seconds a new PostgreSQL connection may take before it fails.
CONNECT_TIMEOUT_SECONDS = 5

#: Connections a SQLite file's pool keeps open at least: as many as the threads that may hold
#: one at once (Starlette's thread pool runs up to 40 sync handlers), so a burst of concurrent
#: requests reuses connections instead of opening and closing overflow ones (each new one costs
#: its PRAGMAs). SQLite connections are file handles, not server sessions: cheap to keep.
SQLITE_MIN_POOL_SIZE = 40

#: A PostgreSQL connection idle in the pool longer than this is pinged before it is handed out
#: (a dead one is replaced, and the caller never sees it). A connection used more recently is
#: trusted: pinging on every checkout cost a round trip per transaction, 9 per run (ADR 0061).
#: If the server went away within this window, the first statement on such a connection fails
#: as a disconnect, which invalidates the whole pool: that request answers 503, the next ones
#: connect afresh.
PING_AFTER_IDLE_SECONDS = 1.0

_SQLITE_WRITE_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    """Create an engine with the settings this project relies on for ``url``'s dialect.

    The one engine factory: the app, the workers, the CLI and the bench's baseline
    (``bench/bare_app.py``) all build their engines here, so they share pool and driver settings.
    """
    if url.startswith("sqlite"):
        if _sqlite_in_memory(url):
            # One shared connection, or each thread would see its own empty database.
            return _sqlite_engine(url, echo=echo, wal=False, poolclass=StaticPool)
        return _sqlite_engine(
            url,
            echo=echo,
            wal=True,
            pool_size=max(pool_size, SQLITE_MIN_POOL_SIZE),
            max_overflow=pool_size,
        )
    engine = create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=10,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        json_serializer=json_text,
    )
    _ping_after_idle(engine, PING_AFTER_IDLE_SECONDS)
    return engine


def make_sqlite_writer_engine(url: str, *, echo: bool = False) -> Engine | None:
    """The engine of a SQLite file's one writing connection; None for any other database.

    A process's writers take turns anyway (``sqlite_write_lock``), so they can share one
    connection, and its page cache then stays valid from one write to the next: SQLite drops
    a connection's whole cache whenever another connection wrote since its last transaction.
    Spread over the general pool's 40 connections, every writing transaction began with a
    cold cache and read its pages again (48 ``pread`` calls per webhook delivery, against 3
    on one connection; ADR 0066). Only the holder of the write lock may use it: its pool has
    one connection and no overflow.
    """
    if not url.startswith("sqlite") or _sqlite_in_memory(url):
        return None  # in memory, every unit of work shares the one connection already
    engine = _sqlite_engine(url, echo=echo, wal=True, pool_size=1, max_overflow=0)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Checkpoints come from their own thread (domain.persistence.checkpoints, ADR 0067):
        # a writer checkpointing inside its commit made every other writer wait for the disk.
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    return engine


def _sqlite_engine(url: str, *, echo: bool, wal: bool, **pool: Any) -> Engine:
    """A SQLite engine with this project's driver settings and PRAGMAs; ``pool`` sizes it."""
    engine = create_engine(
        url,
        echo=echo,
        json_serializer=json_text,
        connect_args={"check_same_thread": False, "timeout": 30},
        **pool,
    )
    _configure_sqlite(engine, wal=wal)
    return engine


def _sqlite_in_memory(url: str) -> bool:
    return url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url


def json_text(value: Any) -> str:
    """The text of a value for a JSON column, as compact JSON.

    orjson writes it several times faster than the standard library (a run's state is written
    with every run start and step; ADR 0063). What orjson refuses (an integer over 64 bits, a
    non-string key, a lone surrogate) is written by the standard library, as before, so
    nothing that was stored before fails now. A NaN or infinite float is written as null,
    as every response body already shows it (ADR 0049); before, SQLite stored a token that is
    not JSON and PostgreSQL refused the write. Reading stays the standard library's: orjson
    reads an integer over 64 bits as a float.
    """
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value)


def sqlite_write_lock(url: str) -> threading.Lock:
    """The in-process lock the writers of one SQLite database queue on.

    SQLite allows one writer at a time. Writers that queue inside SQLite's busy handler sleep
    in growing steps, which gave a p99 of 0.5 s under load in `make bench`; queueing the
    writers of this process on a lock first keeps the tail short. One lock per database file,
    shared by every Database object of the process that points at it.
    """
    with _LOCKS_GUARD:
        return _SQLITE_WRITE_LOCKS.setdefault(url, threading.Lock())


def _ping_after_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping a pooled connection before handing it out if it sat idle over ``idle_seconds``.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout; this is its recipe for pessimistic
    disconnect handling, limited to connections that may have gone stale unnoticed. Raising
    ``DisconnectionError`` makes the pool discard the connection and check out another.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(
        dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since <= idle_seconds:
            return  # new, or used a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError("stale pooled connection") from exc
            raise
        if not alive:
            raise DisconnectionError("stale pooled connection")


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let the dialect's do_begin (below), not the driver, decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    # The transaction's BEGIN is emitted by the dialect, not by a "begin" event listener: any
    # connection event on the engine makes SQLAlchemy dispatch events around every statement
    # of every connection (before/after execute, before/after cursor execute), which cost
    # 11% of a webhook delivery's instructions (ADR 0063). The dialect learns that a connection
    # writes from its execution options, and remembers it on the pooled connection until
    # the connection goes back to the pool.
    dialect = engine.dialect
    set_connection_execution_options = dialect.set_connection_execution_options

    def _set_options(connection: Connection, opts: Any) -> None:
        if WRITE_OPTION in opts:
            connection.connection.info[WRITE_OPTION] = bool(opts[WRITE_OPTION])
        set_connection_execution_options(connection, opts)

    def _do_begin(dbapi_connection: PoolProxiedConnection) -> None:
        writing = dbapi_connection.info.get(WRITE_OPTION, False)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE" if writing else "BEGIN")
        finally:
            cursor.close()

    dialect.set_connection_execution_options = _set_options  # type: ignore[method-assign]
    dialect.do_begin = _do_begin  # type: ignore[method-assign]

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info.pop(WRITE_OPTION, None)  # the next checkout starts as a reader
