"""Unit of work: one use case, one transaction.

A use case opens ``uow(write=...)`` as a context manager, works through ``tx.repo`` and calls
``tx.commit()`` once at the end. Leaving the block without committing (early return or an
exception) rolls everything back. Repositories never commit.

Signals: a use case records what it changed with ``tx.record(signal)``. ``commit()`` writes the
recorded signals to the workspace event log right before committing (same transaction: if the
change commits, its events exist), and once the unit of work has closed (and released any
SQLite write lock) the stored signals, now numbered, are published on the factory's
``SignalBus``. A rolled-back unit of work publishes nothing.

On SQLite a writing unit of work starts with ``BEGIN IMMEDIATE`` so that concurrent writers queue
on the database lock (bounded by ``busy_timeout``) instead of failing when they upgrade a read
snapshot, and the writers of one process first queue on an in-process lock; reading units of
work use a plain deferred ``BEGIN`` and never block. Writing units of work must not nest.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import StaticPool

from domain.event_repository import EventRepository
from domain.identity_repository import IdentityRepository
from domain.repository import Repository
from domain.run_repository import RunRepository
from domain.signals import Signal, SignalBus
from domain.trigger_repository import TriggerRepository

_WRITE_OPTION = "scaicrew_write"
_WRITE_LOCK_TIMEOUT = 60.0
_SQLITE_WRITE_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class UnitOfWork(Protocol):
    repo: Repository
    runs: RunRepository
    identity: IdentityRepository
    events: EventRepository
    triggers: TriggerRepository

    def record(self, signal: Signal) -> None: ...

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    signals: SignalBus

    def __call__(self, *, write: bool = False) -> UnitOfWork: ...


class SqlUnitOfWork:
    """A transaction on one pooled connection, exposing the repository over it."""

    repo: Repository
    runs: RunRepository
    identity: IdentityRepository
    events: EventRepository
    triggers: TriggerRepository

    def __init__(
        self,
        engine: Engine,
        *,
        write: bool = False,
        write_lock: threading.Lock | None = None,
        signals: SignalBus | None = None,
    ) -> None:
        self._engine = engine
        self._bus = signals
        self._recorded: list[Signal] = []
        self._stored: list[Signal] = []
        self._write = write
        self._write_lock = write_lock if write else None
        self._locked = False
        self._connection: Connection | None = None
        self._committed = False

    def __enter__(self) -> SqlUnitOfWork:
        if self._write_lock is not None:
            # Bounded: past it, SQLite's own busy handling still serialises the writers.
            self._locked = self._write_lock.acquire(timeout=_WRITE_LOCK_TIMEOUT)
        try:
            connection = self._engine.connect()
        except BaseException:
            self._release()
            raise
        if self._write:
            connection = connection.execution_options(**{_WRITE_OPTION: True})
        self._connection = connection
        self._transaction = connection.begin()
        self.repo = Repository(connection, for_update=self._write)
        self.runs = RunRepository(connection, for_update=self._write)
        self.identity = IdentityRepository(connection, for_update=self._write)
        self.events = EventRepository(connection)
        self.triggers = TriggerRepository(connection, for_update=self._write)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._connection is not None
        try:
            if not self._committed and self._transaction.is_active:
                self._transaction.rollback()
        finally:
            self._connection.close()
            self._connection = None
            self._release()
        if self._stored and self._bus is not None:
            stored, self._stored = self._stored, []
            self._bus.publish(stored)

    def record(self, signal: Signal) -> None:
        """Write ``signal`` to the event log with this unit of work's commit; publish it after."""
        self._recorded.append(signal)

    def commit(self) -> None:
        stored: list[Signal] = []
        if self._recorded:
            stored = self.events.append(self._recorded, datetime.now(UTC))
            self._recorded = []
        self._transaction.commit()
        self._committed = True
        self._stored = stored

    def _release(self) -> None:
        if self._locked and self._write_lock is not None:
            self._locked = False
            self._write_lock.release()


class Database:
    """The engine and the unit-of-work factory built from one database URL."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size, echo=echo)
        self._write_lock = _sqlite_write_lock(url) if url.startswith("sqlite") else None
        #: Where committed signals of this database's units of work are published.
        self.signals = SignalBus()

    def __call__(self, *, write: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            self.engine, write=write, write_lock=self._write_lock, signals=self.signals
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_write_lock(url: str) -> threading.Lock:
    # SQLite allows one writer at a time. Writers that queue inside SQLite's busy handler sleep
    # in growing steps, which gave a p99 of 0.5 s under load in `make bench`; queueing the
    # writers of this process on a lock first keeps the tail short. One lock per database
    # file, shared by every Database object of the process that points at it.
    with _LOCKS_GUARD:
        return _SQLITE_WRITE_LOCKS.setdefault(url, threading.Lock())


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    """Create an engine with the settings this project relies on for ``url``'s dialect."""
    if url.startswith("sqlite"):
        in_memory = url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if in_memory:
            # One shared connection, or each thread would see its own empty database.
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, echo=echo, **kwargs)
        _configure_sqlite(engine, wal=not in_memory)
        return engine
    return create_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
    )


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
        if connection.get_execution_options().get(_WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")
