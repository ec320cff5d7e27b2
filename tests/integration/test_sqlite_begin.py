"""How transactions begin on SQLite: a writing connection takes the database's write lock at
BEGIN (``BEGIN IMMEDIATE``), a reading one does not, and neither needs a connection event
(ADR 0063: an event on the engine is paid on every statement of every connection)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from domain.persistence.engine import WRITE_OPTION, make_engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'begin.db'}", pool_size=1)
    with engine.connect() as connection, connection.begin():
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    yield engine
    engine.dispose()


def _another_writer_can_begin(engine: Engine) -> bool:
    """Whether a second connection gets the write lock now, without waiting for it."""
    database = engine.url.database
    assert database is not None
    other = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    else:
        other.execute("ROLLBACK")
        return True
    finally:
        other.close()


def test_a_writing_connection_holds_the_write_lock_from_begin(engine):
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            # No statement yet: the lock was taken by BEGIN itself.
            assert not _another_writer_can_begin(engine)
        assert _another_writer_can_begin(engine)


def test_a_reading_connection_begins_without_the_write_lock(engine):
    with engine.connect() as connection, connection.begin():
        assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
        assert _another_writer_can_begin(engine)


def test_the_writing_mode_ends_with_the_checkout(engine):
    """The pool holds one connection: the reader after a writer gets the same one, and must
    not inherit its BEGIN IMMEDIATE."""
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
            writer = connection.connection.dbapi_connection
    with engine.connect() as connection, connection.begin():
        assert connection.connection.dbapi_connection is writer
        assert _another_writer_can_begin(engine)


def test_a_write_is_atomic_and_rolled_back_whole(engine):
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin() as transaction:
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
            connection.exec_driver_sql("INSERT INTO t VALUES (2)")
            transaction.rollback()
        with connection.begin():
            assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0


def test_the_engine_has_no_connection_events(engine):
    # SQLAlchemy checks this flag around every statement; a listener for any connection
    # event (such as "begin") sets it for every connection of the engine.
    assert engine._has_events is False
