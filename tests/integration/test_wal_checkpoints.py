"""A SQLite file's WAL is checkpointed by a thread of its own, not inside a writer's commit,
and still started over while writes keep coming (ADR 0067)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.database import Database
from domain.persistence.checkpoints import WRITER_AUTOCHECKPOINT_PAGES, WalCheckpointer


def _database(tmp_path: Path, *, commits: int, seconds: float) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'wal.db'}")
    assert database.checkpoints is not None
    database.checkpoints = WalCheckpointer(database.engine, commits=commits, seconds=seconds)
    with database(write=True) as tx:
        tx.connection.exec_driver_sql("CREATE TABLE t (x TEXT)")
        tx.commit()
    return database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    # Checkpoint every 3 commits (or 50 ms after one), so that the test sees one soon.
    database = _database(tmp_path, commits=3, seconds=0.05)
    yield database
    database.dispose()


@pytest.fixture
def still(tmp_path: Path) -> Iterator[Database]:
    """A database whose thread never checkpoints on its own: the test decides when."""
    database = _database(tmp_path, commits=10**9, seconds=3600.0)
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


def test_the_thread_checkpoints_while_writes_keep_coming(db):
    checkpoints = db.checkpoints
    assert checkpoints is not None
    _write(db, 30)
    # How many checkpoints a number of commits gets depends on how fast the disk syncs (a
    # slow sync covers more commits), so only the first is certain.
    _wait_for(lambda: checkpoints.checkpoints >= 1, seconds=30.0)
    with db() as tx:
        assert tx.connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 30


def test_a_lone_commit_is_checkpointed_when_the_interval_passes(tmp_path):
    database = _database(tmp_path, commits=10**9, seconds=0.05)
    try:
        checkpoints = database.checkpoints
        assert checkpoints is not None
        _write(database, 1)
        _wait_for(lambda: checkpoints.checkpoints >= 1, seconds=30.0)
    finally:
        database.dispose()


def test_the_next_writer_copies_the_rest_so_the_wal_starts_over(still):
    checkpoints = still.checkpoints
    assert checkpoints is not None
    _write(still, 300)  # about 2 pages each, each its own commit
    assert checkpoints.checkpoints == 0
    with still(write=True) as tx:  # a writer that began before the thread's checkpoint
        tx.connection.exec_driver_sql("INSERT INTO t VALUES ('during')")
        assert checkpoints.checkpoint()  # the thread's: copies all but what tx appends
        tx.commit()  # ... which tx copies itself before releasing the write lock
    assert checkpoints.finished == 1
    _write(still, 1)  # begins on a WAL copied to its end: starts it over
    # Without the rest copied, the WAL would hold all 600 pages or so (the writers' own
    # checkpoint comes only past 10,000): SQLite starts a WAL over only once it is all copied.
    assert _frames_in_wal(still) < 10
    with still() as tx:
        assert tx.connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 302


def test_without_a_checkpoint_the_wal_only_grows(still):
    _write(still, 300)
    _write(still, 1)
    assert _frames_in_wal(still) > 300


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
