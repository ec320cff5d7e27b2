"""The query plan of a statement a repository method runs, for tests that assert an index."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event

_ANY = object()


def plan_of(tx: Any, call: Callable[[], Any], table: str, *, expect: Any = _ANY) -> str:
    """The query plan, as one line, of the one statement on ``table`` that ``call`` runs in
    ``tx`` (which must return ``expect``, when given): SQLite's ``EXPLAIN QUERY PLAN`` or
    PostgreSQL's ``EXPLAIN``."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(tx.connection, "before_cursor_execute", capture)
    try:
        result = call()
    finally:
        event.remove(tx.connection, "before_cursor_execute", capture)
    if expect is not _ANY:
        assert result == expect
    ((statement, parameters),) = [s for s in seen if table in s[0]]
    sqlite = tx.connection.dialect.name == "sqlite"
    explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
    plan = tx.connection.exec_driver_sql(explain + statement, parameters)
    return " ".join(str(row[-1]) for row in plan)
