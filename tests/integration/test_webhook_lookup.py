"""A webhook delivery's duplicate check looks its keys up by primary key, whatever the window.

With the window's bound in the statement, SQLite's planner (no statistics) chose the
``(trigger_id, created_at)`` index and scanned every key of the de-duplication window on each
delivery: 11 ms per delivery with 100,000 keys in the window, against 0.07 ms by key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event


def _plan_of(tx: Any, call: Callable[[], Any], table: str, *, expect: Any) -> str:
    """SQLite's query plan, as one line, of the first statement on ``table`` that ``call``
    runs (which must return ``expect``)."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        seen.append((statement, parameters))

    event.listen(tx.connection, "before_cursor_execute", capture)
    try:
        assert call() == expect
    finally:
        event.remove(tx.connection, "before_cursor_execute", capture)
    (statement, parameters), *_ = [s for s in seen if table in s[0]]
    plan = tx.connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
    return " ".join(str(row[-1]) for row in plan)


def test_the_duplicate_check_searches_by_key_not_by_the_window(database):
    if not database.is_sqlite:
        pytest.skip("the query plan asserted is SQLite's")
    since = datetime.now(UTC) - timedelta(hours=1)
    with database() as tx:
        details = _plan_of(
            tx,
            lambda: tx.triggers.find_delivery("trg_nowhere", ("sig:ab", "body:cd"), since),
            "webhook_deliveries",
            expect=None,
        )
    assert "sqlite_autoindex_webhook_deliveries_1" in details, details
    assert "created_at" not in details, details


def test_counting_a_triggers_refusals_reads_only_the_index_of_rejections(database):
    """The bound on logging forged deliveries counts the last minute's refusals. With every
    invocation in the index it walked the minute's accepted deliveries too, so a forged
    delivery cost more the busier the trigger (ADR 0065)."""
    if not database.is_sqlite:
        pytest.skip("the query plan asserted is SQLite's")
    since = datetime.now(UTC) - timedelta(minutes=1)
    with database() as tx:
        details = _plan_of(
            tx,
            lambda: tx.triggers.count_rejections("trg_nowhere", since, 60),
            "trigger_invocations",
            expect=0,
        )
    # The index holds rejections only: at most ``up_to`` entries are read, whatever else the
    # trigger logged in the minute.
    assert "INDEX ix_trigger_invocations_rejected (trigger_id=? AND at>?)" in details, details
