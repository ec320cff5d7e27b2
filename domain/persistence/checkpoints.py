"""Checkpoints of a SQLite file's write-ahead log, from a thread of their own.

SQLite copies the WAL back into the database file ("checkpoints") when a commit leaves it over
``wal_autocheckpoint`` pages (1,000 by default), in the committing connection, inside its
commit. Under ``synchronous=NORMAL`` that is the only time SQLite waits for the disk: it syncs
the WAL and then the database file. The process's writers take turns on one lock and one
connection (``make_sqlite_writer_engine``), so every other writer waited behind those syncs.
Webhook deliveries in a loop on one thread: p99 7.6-10.6 ms against a median under 1 ms, the
worst 0.2-1.1 s (ADR 0067).

The writers' connection now checkpoints itself only past ``WRITER_AUTOCHECKPOINT_PAGES`` (a
safety net); a thread checkpoints ``PASSIVE``ly (never waiting for readers or writers) after
every ``COMMITS_PER_CHECKPOINT`` commits, or ``CHECKPOINT_SECONDS`` after the last one it has
not covered, on a connection of the general pool. Writers go on while it copies and syncs;
the next one copies the few pages they appended meanwhile (``WalCheckpointer``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import Engine

logger = logging.getLogger("scaicrew.checkpoints")

#: The writers' connection checkpoints itself only past this many WAL pages: never while the
#: thread keeps up (about 20 pages per webhook delivery, 50 deliveries per checkpoint).
WRITER_AUTOCHECKPOINT_PAGES = 10_000

#: Commits after which the thread checkpoints (about 1,000 pages of a webhook delivery's).
COMMITS_PER_CHECKPOINT = 50

#: At most this long after a commit the thread checkpoints it, however few commits came.
CHECKPOINT_SECONDS = 1.0


class WalCheckpointer:
    """Checkpoints one SQLite file's WAL from a daemon thread, started at the first commit
    it is told of and stopped by ``stop`` (``Database.dispose``).

    The thread's checkpoint runs while the writers go on, so it cannot copy what they append
    meanwhile, and SQLite starts a WAL over only once it was copied to its end: the next
    writer, between its commit and releasing the write lock, copies that little rest
    (``committed`` says when, ``finish`` does it). Without it the WAL would only grow while
    writes keep coming.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        commits: int = COMMITS_PER_CHECKPOINT,
        seconds: float = CHECKPOINT_SECONDS,
    ) -> None:
        self._engine = engine
        self._commits = commits
        self._seconds = seconds
        self._pending = 0  # commits since the last checkpoint began
        self._finish = False  # the thread checkpointed: the next writer copies the rest
        self._due = threading.Event()
        self._stopping = threading.Event()
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        #: Checkpoints run so far by the thread, and finished by writers (for tests).
        self.checkpoints = 0
        self.finished = 0

    def committed(self) -> bool:
        """A writing unit of work committed: checkpoint soon. True when the caller, if it
        still holds the write lock, should ``finish`` the thread's last checkpoint."""
        with self._guard:
            if self._stopping.is_set():
                return False
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="scaicrew-wal-checkpoints", daemon=True
                )
                self._thread.start()
            if self._pending >= self._commits:
                self._due.set()
            finish, self._finish = self._finish, False
        return finish

    def finish(self, dbapi_connection: Any) -> None:
        """Copy what the writers appended during the thread's last checkpoint, on the
        committing writer's own driver connection (no transaction open on it)."""
        if _checkpoint(dbapi_connection):
            self.finished += 1

    def stop(self) -> None:
        """Stop the thread (after a checkpoint it is running finishes)."""
        with self._guard:
            self._stopping.set()
            thread = self._thread
        self._due.set()
        if thread is not None:
            thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._due.wait(self._seconds)
            self._due.clear()
            if self._stopping.is_set():
                return
            with self._guard:
                pending, self._pending = self._pending, 0
            if pending:
                self.checkpoint()

    def checkpoint(self) -> bool:
        """Copy what the WAL holds into the database file, as far as no reader still needs it,
        without waiting for anyone, and have the next writer copy the rest; False if it failed
        (logged: the next one, or the writers' own automatic checkpoint past
        ``WRITER_AUTOCHECKPOINT_PAGES``, catches up). The thread's work; public for tests."""
        try:
            # The driver's connection directly: SQLAlchemy's would BEGIN a transaction first,
            # and a checkpoint cannot copy what that transaction's snapshot still reads.
            connection = self._engine.raw_connection()
        except Exception:
            logger.warning("WAL checkpoint failed", exc_info=True)
            return False
        try:
            done = _checkpoint(connection)
        finally:
            connection.close()
        if done:
            with self._guard:
                self.checkpoints += 1
                self._finish = True
        return done


def _checkpoint(dbapi_connection: Any) -> bool:
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            cursor.fetchall()
        finally:
            cursor.close()
    except Exception:  # never fail a commit or kill the thread over it
        logger.warning("WAL checkpoint failed", exc_info=True)
        return False
    return True
