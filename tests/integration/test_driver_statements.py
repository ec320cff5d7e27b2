"""``DriverStatements`` runs a statement on SQLite's cursor with SQLAlchemy's compiled SQL and
type processing: what it writes and reads must be what ``Connection.execute`` writes and reads
(ADR 0064). Each test runs the same statements both ways and compares."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, NoResultFound

from domain.persistence import driver
from domain.persistence.driver import DriverStatements
from domain.persistence.engine import WRITE_OPTION, make_engine

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", String, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("doc", JSON, nullable=True),
    Column("flag", Boolean, nullable=False),
    Column("n", Integer, nullable=False),
    Column("note", String, nullable=False, default=""),
)
INSERT = insert(things)
BY_ID = select(things).where(things.c.id == bindparam("id"))
BY_FLAG = select(things.c.id, things.c.n).where(things.c.flag == True).order_by(things.c.id)  # noqa: E712
BUMP = update(things).where(things.c.id == bindparam("b_id")).values(n=things.c.n + 1)
RETURNING = update(things).where(things.c.id == bindparam("b_id")).values(n=7).returning(things.c.n)
AT = datetime(2026, 12, 1, 20, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'driver.db'}", pool_size=1)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def _writing(engine: Engine) -> Connection:
    connection = engine.connect()
    connection.execution_options(**{WRITE_OPTION: True})
    return connection


def _row(i: int, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": f"t{i}",
        "at": AT,
        "doc": {"k": [i, None, "é"], "big": 2**70},
        "flag": i % 2 == 0,
        "n": i,
        "note": "x",
    }
    values.update(overrides)
    return values


def _both_ways(engine: Engine, work: Any) -> tuple[Any, Any]:
    """``work(execute)`` once through DriverStatements and once through Connection.execute,
    each on a fresh table; both results."""
    results = []
    for fast in (True, False):
        with _writing(engine) as connection, connection.begin():
            connection.execute(things.delete())
            run = DriverStatements(connection).execute if fast else connection.execute
            results.append(work(run))
    return results[0], results[1]


def _stored(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT * FROM things ORDER BY id").all()
    return [tuple(row) for row in rows]


def test_rows_written_and_read_are_sqlalchemys(engine):
    def work(run: Any) -> Any:
        run(INSERT, _row(1))
        run(INSERT, _row(2, doc=None, at=AT.replace(tzinfo=None)))
        run(INSERT, [_row(3), _row(4, flag=True)])  # one execution per row
        read = [run(BY_ID, {"id": f"t{i}"}).first() for i in (1, 2, 3, 4, 5)]
        flagged = run(BY_FLAG, {}).all()
        return [None if r is None else tuple(r) for r in read], [tuple(r) for r in flagged]

    fast, core = _both_ways(engine, work)
    assert fast == core
    (read, flagged) = fast
    doc = {"k": [1, None, "é"], "big": 2**70}
    assert read[0] == ("t1", AT.replace(tzinfo=None), doc, False, 1, "x")
    assert read[1][2] is None
    assert read[4] is None
    assert flagged == [("t2", 2), ("t4", 4)]


def test_the_stored_bytes_are_sqlalchemys(engine):
    texts = []
    for fast in (True, False):
        with _writing(engine) as connection, connection.begin():
            connection.execute(things.delete())
            run = DriverStatements(connection).execute if fast else connection.execute
            run(INSERT, _row(1, doc=None))
            run(INSERT, _row(2))
            texts.append(
                [tuple(r) for r in connection.exec_driver_sql("SELECT * FROM things").all()]
            )
    assert texts[0] == texts[1]
    assert texts[0][0][2] == "null"  # None in a JSON column is JSON null, as SQLAlchemy writes it


def test_rowcount_returning_and_scalars_are_sqlalchemys(engine):
    def work(run: Any) -> Any:
        run(INSERT, _row(1))
        bumped = run(BUMP, {"b_id": "t1"}).rowcount
        missed = run(BUMP, {"b_id": "nope"}).rowcount
        returned = run(RETURNING, {"b_id": "t1"}).scalar_one()
        first = run(BY_ID, {"id": "t1"}).scalar()
        return bumped, missed, returned, first

    fast, core = _both_ways(engine, work)
    assert fast == core == (1, 0, 7, "t1")


def test_a_text_statement_with_typed_columns_returns_its_rows(engine):
    claim = (
        text(
            "INSERT INTO things (id, at, doc, flag, n, note)"
            " VALUES (:id, :at, NULL, 1, 0, '') RETURNING id, at"
        )
        .bindparams(bindparam("at", type_=things.c.at.type))
        .columns(things.c.id, things.c.at)
    )

    def work(run: Any) -> Any:
        return [tuple(r) for r in run(claim, {"id": "t9", "at": AT}).all()]

    fast, core = _both_ways(engine, work)
    assert fast == core == [("t9", AT.replace(tzinfo=None))]


def _errors_are_sqlalchemys(engine: Engine, duplicate: str) -> None:
    """No row where one is required raises NoResultFound; a duplicate key, IntegrityError
    with the driver's message (last: on PostgreSQL it ends the transaction)."""
    with _writing(engine) as connection, connection.begin():
        hot = DriverStatements(connection)
        hot.execute(INSERT, _row(1))
        with pytest.raises(NoResultFound):
            hot.execute(BY_ID, {"id": "none"}).scalar_one()
        with pytest.raises(IntegrityError) as raised:
            hot.execute(INSERT, _row(1))
        assert duplicate in str(raised.value.orig)


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(engine):
    _errors_are_sqlalchemys(engine, "UNIQUE")


def test_it_steps_aside_while_statements_are_listened_to(engine):
    seen: list[str] = []

    def listen(_conn, _cursor, statement, _params, _context, _many) -> None:
        seen.append(statement)

    with _writing(engine) as connection, connection.begin():
        event.listen(connection, "before_cursor_execute", listen)
        try:
            DriverStatements(connection).execute(INSERT, _row(1))
        finally:
            event.remove(connection, "before_cursor_execute", listen)
        DriverStatements(connection).execute(INSERT, _row(2))
    assert len(seen) == 1 and seen[0].startswith("INSERT INTO things")
    assert len(_stored(engine)) == 2


def test_statements_it_cannot_prepare_run_through_sqlalchemy(engine, monkeypatch):
    expanding = select(things.c.id).where(things.c.id.in_(bindparam("ids", expanding=True)))
    with _writing(engine) as connection, connection.begin():
        hot = DriverStatements(connection)
        hot.execute(INSERT, _row(1))
        # note's default is Python-side: SQLAlchemy computes it per execution
        hot.execute(INSERT, {"id": "t2", "at": AT, "doc": None, "flag": True, "n": 2})
        assert [r.id for r in hot.execute(expanding, {"ids": ["t1", "t2"]})] == ["t1", "t2"]
        monkeypatch.setattr(driver, "MAX_PREPARED", 0)  # a statement built per call
        built = select(things.c.n).where(things.c.id == "t2")
        assert hot.execute(built, {}).scalar() == 2
    assert [row[-1] for row in _stored(engine)] == ["x", ""]


def test_outside_a_transaction_sqlalchemy_begins_one(engine):
    with _writing(engine) as connection:
        DriverStatements(connection).execute(INSERT, _row(1))
        assert connection.in_transaction()  # begun by SQLAlchemy, as for any statement
        connection.rollback()
    assert _stored(engine) == []


@pytest.fixture
def postgres(database_url: str) -> Iterator[Engine]:
    """The test database's engine with the ``things`` table, on PostgreSQL only."""
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's driver path (psycopg)")
    engine = make_engine(database_url, pool_size=1)
    metadata.create_all(engine)
    try:
        yield engine
    finally:
        metadata.drop_all(engine)
        engine.dispose()


class TestOnPostgreSQL:
    """The same statements on psycopg's cursor: what SQLAlchemy's path writes and reads."""

    def test_rows_rowcounts_and_returning_are_sqlalchemys(self, postgres):
        def work(run: Any) -> Any:
            run(INSERT, _row(1))
            run(INSERT, _row(2, doc=None))
            run(INSERT, [_row(3), _row(4, flag=True)])  # one execution per row
            read = [run(BY_ID, {"id": f"t{i}"}).first() for i in (1, 2, 3, 4, 5)]
            flagged = run(BY_FLAG, {}).all()
            bumped = run(BUMP, {"b_id": "t1"}).rowcount
            missed = run(BUMP, {"b_id": "nope"}).rowcount
            returned = run(RETURNING, {"b_id": "t1"}).scalar_one()
            rows = [None if r is None else tuple(r) for r in read]
            return rows, [tuple(r) for r in flagged], bumped, missed, returned

        fast, core = _both_ways(postgres, work)
        assert fast == core
        rows, flagged, bumped, missed, returned = fast
        assert rows[0] == ("t1", AT, {"k": [1, None, "é"], "big": 2**70}, False, 1, "x")
        assert rows[1][2] is None and rows[4] is None
        assert flagged == [("t2", 2), ("t4", 4)]
        assert (bumped, missed, returned) == (1, 0, 7)

    def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(self, postgres):
        _errors_are_sqlalchemys(postgres, "duplicate key")

    def test_rows_inserted_together_go_in_one_statement(self, postgres, monkeypatch):
        """psycopg's ``executemany`` enters pipeline mode for each call (ADR 0070): a list of
        rows is one ``INSERT ... VALUES (...), (...)``, one row one plain ``INSERT``; past
        ``MAX_ROWS`` rows, ``executemany``. What is stored is what SQLAlchemy stores."""
        calls: list[tuple[str, str]] = []
        cursor_class = postgres.dialect.loaded_dbapi.Cursor
        for method in ("execute", "executemany"):
            original = getattr(cursor_class, method)

            def spy(self: Any, query: Any, *args: Any, _o: Any = original, _m: str = method) -> Any:
                calls.append((_m, str(query)))
                return _o(self, query, *args)

            monkeypatch.setattr(cursor_class, method, spy)
        monkeypatch.setattr(driver, "MAX_ROWS", 3)

        def work(run: Any) -> Any:
            run(INSERT, [_row(1)])
            run(INSERT, [_row(2), _row(3, doc=None), _row(4, flag=True)])
            run(INSERT, [_row(i) for i in range(5, 9)])  # past MAX_ROWS
            return [tuple(r) for r in run(select(things).order_by(things.c.id), {}).all()]

        fast, core = _both_ways(postgres, work)
        assert fast == core
        assert len(fast) == 8 and fast[2] == ("t3", AT, None, False, 3, "x")
        inserts = [(m, q) for m, q in calls if q.startswith("INSERT INTO things")]
        ours = inserts[: len(inserts) - 3]  # SQLAlchemy's own path ran the last three
        assert [m for m, _q in ours] == ["execute", "execute", "executemany"]
        assert ours[0][1].count("VALUES (") == 1 and ours[1][1].count("), (") == 2
