"""The SQL unit of work: one transaction on one pooled connection, every repository over it.

It is the one module that knows every capability's repository: it satisfies each capability's
unit-of-work protocol (``MembersTx``, ``RunsTx``...), and the composition root hands it (through
``Database``) to the use cases as their store. Use cases never import it.

Signals: ``commit()`` writes the recorded signals to the workspace event log right before
committing (same transaction: if the change commits, its events exist), and once the unit of
work has closed (and released any SQLite write lock) the stored signals, now numbered, are
published on the database's ``SignalBus``. A rolled-back unit of work publishes nothing.
Writing units of work must not nest (SQLite: one writer at a time).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Connection, Engine, text

from domain.access.repository import AccessRepository
from domain.audit.repository import AuditLog
from domain.authoring.repository import AuthoringRepository
from domain.budgets.repository import BudgetRepository
from domain.cost.repository import CostLedger
from domain.identity.repository import IdentityRepository
from domain.kernel.clock import Clock, SystemClock
from domain.kernel.signals import Signal, SignalBus
from domain.members.repository import MemberRepository
from domain.persistence.checkpoints import WalCheckpointer
from domain.persistence.engine import (
    WRITE_OPTION,
    make_engine,
    make_sqlite_writer_engine,
    sqlite_write_lock,
)
from domain.runs.repository import RunRepository
from domain.stream.repository import EventLog
from domain.subscriptions.repository import SubscriptionRepository
from domain.tools.repository import NoteRepository
from domain.tools.servers_repository import ToolServerRepository
from domain.triggers.repository import TriggerRepository
from domain.workspaces.repository import WorkspaceRepository

_WRITE_LOCK_TIMEOUT = 60.0


class SqlUnitOfWork:
    """A transaction on one pooled connection, exposing every repository over it."""

    access: AccessRepository
    audit: AuditLog
    authoring: AuthoringRepository
    budgets: BudgetRepository
    cost: CostLedger
    events: EventLog
    identity: IdentityRepository
    members: MemberRepository
    notes: NoteRepository
    runs: RunRepository
    subscriptions: SubscriptionRepository
    tool_servers: ToolServerRepository
    triggers: TriggerRepository
    workspaces: WorkspaceRepository

    def __init__(
        self,
        engine: Engine,
        *,
        write: bool = False,
        write_lock: threading.Lock | None = None,
        writer: Engine | None = None,
        checkpoints: WalCheckpointer | None = None,
        signals: SignalBus | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._engine = engine
        self._checkpoints = checkpoints if write else None
        # SQLite file: the writers' one connection, used while holding the write lock.
        self._writer = writer if write and write_lock is not None else None
        self._bus = signals
        self._clock = clock or SystemClock()
        self._recorded: list[Signal] = []
        self._stored: list[Signal] = []
        self._write = write
        self._write_lock = write_lock if write else None
        self._locked = False
        self._connection: Connection | None = None
        self._committed = False

    def __enter__(self) -> SqlUnitOfWork:
        if self._writer is not None:
            return self._enter_as_the_writer(self._writer)
        # The connection is checked out and the repositories built before a writer queues for
        # the write lock: the lock is held from BEGIN to COMMIT (or ROLLBACK) and no longer,
        # since every other writer of the process waits on it.
        return self._begin(self._engine.connect(), lock=self._write_lock is not None)

    def _enter_as_the_writer(self, writer: Engine) -> SqlUnitOfWork:
        """SQLite file: take the write lock, then the writers' one connection, whose page
        cache is still valid from the last write (``make_sqlite_writer_engine``). If the lock
        is not had in time, a connection of the general pool, as before: SQLite's own busy
        handling still serialises the writers, and the shared one stays with its holder."""
        assert self._write_lock is not None
        self._locked = self._write_lock.acquire(timeout=_WRITE_LOCK_TIMEOUT)
        try:
            connection = (writer if self._locked else self._engine).connect()
        except BaseException:
            self._release()
            raise
        return self._begin(connection, lock=False)

    def _begin(self, connection: Connection, *, lock: bool) -> SqlUnitOfWork:
        """Build the repositories over ``connection``, queue for the write lock if ``lock``,
        and begin the transaction; on any failure the lock is released and the connection
        closed."""
        try:
            if self._write:
                connection = connection.execution_options(**{WRITE_OPTION: True})
            self._repositories(connection)
            if lock:
                assert self._write_lock is not None
                # Bounded: past it, SQLite's own busy handling still serialises the writers.
                self._locked = self._write_lock.acquire(timeout=_WRITE_LOCK_TIMEOUT)
            self._transaction = connection.begin()
        except BaseException:
            self._release()
            connection.close()
            raise
        self._connection = connection
        return self

    def _repositories(self, connection: Connection) -> None:
        lock = self._write
        self.access = AccessRepository(connection)
        self.audit = AuditLog(connection)
        self.authoring = AuthoringRepository(connection, for_update=lock)
        self.budgets = BudgetRepository(connection)
        self.cost = CostLedger(connection)
        self.events = EventLog(connection)
        self.identity = IdentityRepository(connection, for_update=lock)
        self.members = MemberRepository(connection, for_update=lock)
        self.notes = NoteRepository(connection)
        self.runs = RunRepository(connection, for_update=lock)
        self.subscriptions = SubscriptionRepository(connection)
        self.tool_servers = ToolServerRepository(connection)
        self.triggers = TriggerRepository(connection, for_update=lock)
        self.workspaces = WorkspaceRepository(connection, for_update=lock)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._connection is not None
        try:
            if not self._committed and self._transaction.is_active:
                if self._write or exc_type is not None:
                    self._transaction.rollback()
                else:
                    # A read has nothing to undo, and on PostgreSQL a ROLLBACK costs more than a
                    # COMMIT: psycopg forgets every statement it prepared on the connection
                    # (DEALLOCATE ALL), so a statement read again is parsed and planned again
                    # (ADR 0061).
                    self._transaction.commit()
        finally:
            self._release()  # the transaction is over: the next writer may begin
            self._connection.close()
            self._connection = None
        if self._stored and self._bus is not None:
            stored, self._stored = self._stored, []
            self._bus.publish(stored)

    @property
    def connection(self) -> Connection:
        """The transaction's connection, for raw SQL in migrations and tests."""
        assert self._connection is not None
        return self._connection

    def record(self, signal: Signal) -> None:
        """Write ``signal`` to the event log with this unit of work's commit; publish it after."""
        self._recorded.append(signal)

    def commit(self) -> None:
        stored: list[Signal] = []
        if self._recorded:
            stored = self.events.append(self._recorded, self._clock.now())
            self._recorded = []
        self._transaction.commit()
        self._committed = True
        self._stored = stored
        if self._checkpoints is not None and self._checkpoints.committed() and self._locked:
            # Still the only writer: the rest of the thread's checkpoint, so that the WAL is
            # started over (domain.persistence.checkpoints).
            assert self._connection is not None
            self._checkpoints.finish(self._connection.connection.dbapi_connection)
        self._release()  # committed: the next writer need not wait for this one to close

    def _release(self) -> None:
        if self._locked and self._write_lock is not None:
            self._locked = False
            self._write_lock.release()


class Database:
    """The engine and the unit-of-work factory (the use cases' store) for one database URL."""

    def __init__(
        self, url: str, *, pool_size: int = 10, echo: bool = False, clock: Clock | None = None
    ) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size, echo=echo)
        self._write_lock = sqlite_write_lock(url) if url.startswith("sqlite") else None
        #: SQLite file: the one connection writing units of work share (None otherwise).
        self.writer_engine = make_sqlite_writer_engine(url, echo=echo)
        #: SQLite file: checkpoints its WAL off the writers' path (None otherwise).
        self.checkpoints = None if self.writer_engine is None else WalCheckpointer(self.engine)
        self._clock = clock or SystemClock()
        #: Where committed signals of this database's units of work are published.
        self.signals = SignalBus()
        #: Maps ``engine`` or ``writer_engine`` to the engine a unit of work connects through
        #: (default: itself). Tracing routes traced work through an instrumented view of the
        #: same pool, so that untraced work pays nothing for statement spans.
        self.choose_engine: Callable[[Engine], Engine] | None = None

    def __call__(self, *, write: bool = False) -> SqlUnitOfWork:
        choose = self.choose_engine
        writer = self.writer_engine if write else None
        if choose is not None:
            writer = None if writer is None else choose(writer)
        return SqlUnitOfWork(
            self.engine if choose is None else choose(self.engine),
            write=write,
            write_lock=self._write_lock,
            writer=writer,
            checkpoints=self.checkpoints,
            signals=self.signals,
            clock=self._clock,
        )

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (None: never migrated).

        :raises sqlalchemy.exc.OperationalError: the database cannot be reached.
        """
        with self.engine.connect() as connection:
            if not self.engine.dialect.has_table(connection, "alembic_version"):
                return None
            row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
        return None if row is None else str(row[0])

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def dispose(self) -> None:
        if self.checkpoints is not None:
            self.checkpoints.stop()
        self.engine.dispose()
        if self.writer_engine is not None:
            self.writer_engine.dispose()
