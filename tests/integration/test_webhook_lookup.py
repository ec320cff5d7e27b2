"""A webhook delivery's duplicate check looks its keys up by primary key, whatever the window.

With the window's bound in the statement, SQLite's planner (no statistics) chose the
``(trigger_id, created_at)`` index and scanned every key of the de-duplication window on each
delivery: 11 ms per delivery with 100,000 keys in the window, against 0.07 ms by key.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.plans import plan_of


def test_the_duplicate_check_searches_by_key_not_by_the_window(database):
    if not database.is_sqlite:
        pytest.skip("the query plan asserted is SQLite's")
    since = datetime.now(UTC) - timedelta(hours=1)
    with database() as tx:
        details = plan_of(
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
        details = plan_of(
            tx,
            lambda: tx.triggers.count_rejections("trg_nowhere", since, 60),
            "trigger_invocations",
            expect=0,
        )
    # The index holds rejections only: at most ``up_to`` entries are read, whatever else the
    # trigger logged in the minute.
    assert "INDEX ix_trigger_invocations_rejected (trigger_id=? AND at>?)" in details, details
