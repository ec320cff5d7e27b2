"""A SQLite file's writers share one connection, taken under the process's write lock, so its
page cache stays valid from one write to the next (ADR 0066); readers use the general pool."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import domain.database as database_module
from domain.database import Database, SqlUnitOfWork


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'writer.db'}")
    with database(write=True) as tx:
        tx.connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        tx.commit()
    yield database
    database.dispose()


def _driver_connection(tx: SqlUnitOfWork) -> Any:
    return tx.connection.connection.dbapi_connection


def test_writers_share_one_connection_and_readers_use_the_pool(db):
    with db(write=True) as tx:
        first = _driver_connection(tx)
        tx.connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        tx.commit()
    with db(write=True) as tx:
        assert _driver_connection(tx) is first
        tx.connection.exec_driver_sql("INSERT INTO t VALUES (2)")
        tx.commit()
    with db() as tx:
        assert _driver_connection(tx) is not first
        assert tx.connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 2


def test_concurrent_writers_take_turns_on_it_and_every_write_lands(db):
    def write(n: int) -> None:
        for i in range(25):
            with db(write=True) as tx:
                tx.connection.exec_driver_sql(f"INSERT INTO t VALUES ({n * 100 + i})")
                tx.commit()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with db() as tx:
        assert tx.connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 200


def test_a_writer_that_cannot_have_the_lock_in_time_writes_through_the_pool(db, monkeypatch):
    """Past the lock's bound the writer proceeds as before the shared connection existed (SQLite
    still serialises it): the shared connection stays with whoever holds the lock."""
    with db(write=True) as tx:
        shared = _driver_connection(tx)
        tx.commit()
    monkeypatch.setattr(database_module, "_WRITE_LOCK_TIMEOUT", 0.05)
    lock = db._write_lock
    assert lock is not None and lock.acquire(timeout=5)
    try:
        with db(write=True) as tx:
            assert _driver_connection(tx) is not shared
            tx.connection.exec_driver_sql("INSERT INTO t VALUES (7)")
            tx.commit()
    finally:
        lock.release()
    with db() as tx:
        assert tx.connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1


def test_only_a_sqlite_file_has_a_writer_connection(database_url):
    in_memory = Database("sqlite://")
    try:
        assert in_memory.writer_engine is None
    finally:
        in_memory.dispose()
    other = Database(database_url)
    try:
        assert (other.writer_engine is not None) == (
            database_url.startswith("sqlite") and "memory" not in database_url
        )
    finally:
        other.dispose()
