"""A SQLite file's WAL is checkpointed by a thread of its own, not inside a writer's commit,
and still started over while writes keep coming (ADR 0067)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.database import Database
from domain.persistence.checkpoints import WRITER_AUTOCHECKPOINT_PAGES, WalCheckpointer


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'wal.db'}")
    assert database.checkpoints is not None
    # Checkpoint every 3 commits (or 50 ms after one), so that the test sees several.
    database.checkpoints = WalCheckpointer(database.engine, commits=3, seconds=0.05)
    with database(write=True) as tx:
        tx.connection.exec_driver_sql("CREATE TABLE t (x TEXT)")
        tx.commit()
    yield database
    database.dispose()


def _write(db: Database, rows: int) -> None:
    for i in range(rows):
        with db(write=True) as tx:
            tx.connection.exec_driver_sql(f"INSERT INTO t VALUES ('{'x' * 3000}{i}')")
            tx.commit()


def _autocheckpoint(connection) -> int:
    return int(connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar())


def test_only_the_writers_connection_leaves_checkpoints_to_the_thread(db):
    with db(write=True) as writer:
        assert _autocheckpoint(writer.connection) == WRITER_AUTOCHECKPOINT_PAGES
    with db() as reader:
        assert _autocheckpoint(reader.connection) == 1000  # SQLite's own, for a fallback writer


def _frames_in_wal(db: Database) -> int:
    """Frames the WAL holds now (what a checkpoint reports as the log's length)."""
    with db.engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        busy, frames, _copied = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0
    return int(frames)


def _wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert condition()


def test_the_thread_checkpoints_and_the_wal_starts_over_while_writes_keep_coming(db):
    checkpoints = db.checkpoints
    assert checkpoints is not None
    _write(db, 300)  # about 2 pages each, each its own commit
    _wait_for(lambda: checkpoints.checkpoints >= 3)
    thread_ran = checkpoints.checkpoints
    _wait_for(lambda: checkpoints.checkpoints > thread_ran)  # one after the last write
    _write(db, 1)  # copies the rest of that checkpoint before releasing the write lock
    assert checkpoints.finished >= 1
    _write(db, 1)  # begins on a WAL copied to its end: starts it over
    # Without the thread's checkpoints the WAL would hold all 600 pages or so (the writers'
    # own checkpoint comes only past 10,000); started over, it holds the last write's.
    assert _frames_in_wal(db) < 10
    with db() as tx:
        assert tx.connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 302


def test_dispose_stops_the_thread(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'stop.db'}")
    with database(write=True) as tx:
        tx.connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        tx.commit()
    checkpoints = database.checkpoints
    assert checkpoints is not None and checkpoints._thread is not None
    database.dispose()
    assert not checkpoints._thread.is_alive()
    checkpoints.committed()  # after stop: nothing starts again
    assert not checkpoints._thread.is_alive()
