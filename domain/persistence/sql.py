"""Small helpers every repository uses: UTC instants back from the database, keyset pages,
case-insensitive search, single-statement inserts that tell whether they inserted."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

T = TypeVar("T")


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC instant (SQLite hands back naive datetimes; we store UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def keyset_page(stmt: Select[Any], id_column: Any, after: str | None, limit: int) -> Select[Any]:
    """``stmt`` ordered by ``id_column`` after ``after``, with one row more than ``limit`` (the
    extra row tells ``page_of`` that another page exists)."""
    if after is not None:
        stmt = stmt.where(id_column > after)
    return stmt.order_by(id_column).limit(limit + 1)


def count_rows(connection: Connection, stmt: Select[Any]) -> int:
    """How many rows ``stmt`` (a filtered select, unordered and unlimited) selects."""
    counted = select(func.count()).select_from(stmt.order_by(None).subquery())
    return int(connection.execute(counted).scalar_one())


def contains(column: Any, text: str) -> Any:
    """A case-insensitive substring test with ``%`` and ``_`` taken literally."""
    return func.lower(column).contains(text.lower(), autoescape=True)


def upsert_statement(connection: Connection) -> Any:
    """The dialect's ``insert`` that knows ``ON CONFLICT`` (PostgreSQL or SQLite)."""
    return _upsert(connection.dialect.name)


def _upsert(dialect: str) -> Any:
    return postgresql_insert if dialect == "postgresql" else sqlite_insert


def per_dialect(build: Callable[[Connection], T]) -> Callable[[Connection], T]:
    """``build`` run once per SQL dialect: the statement it builds for the first connection of
    a dialect is kept for every later one. Building a statement (and SQLAlchemy's cache key for
    it) costs more CPU than the database takes to run it; execute it with the values."""
    built: dict[str, T] = {}

    def statement(connection: Connection) -> T:
        found = built.get(connection.dialect.name)
        if found is None:
            found = built[connection.dialect.name] = build(connection)
        return found

    return statement


def insert_once(connection: Connection, table: Any, key_columns: list[str], **values: Any) -> bool:
    """``INSERT ... ON CONFLICT DO NOTHING``; True when this statement inserted the row.

    Of two concurrent inserts of one key exactly one inserts (on PostgreSQL the loser waits for
    the winner's commit, then inserts nothing).
    """
    stmt = _insert_once(connection.dialect.name, table, tuple(key_columns))
    return connection.execute(stmt, values).first() is not None


@functools.cache  # one statement per dialect, table and key, as per_dialect does
def _insert_once(dialect: str, table: Any, key_columns: tuple[str, ...]) -> Any:
    return (
        _upsert(dialect)(table)
        .on_conflict_do_nothing(index_elements=list(key_columns))
        # rowcount is not reliable here (psycopg reports -1): ask for the inserted key.
        .returning(table.c[key_columns[0]])
    )
