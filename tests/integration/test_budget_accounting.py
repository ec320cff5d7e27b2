"""Budget accounting under concurrency (issue 16): workers admitting model calls from many
threads at once never spend past the limit (two cannot both take the last unit), and the
warning and the limit are each announced exactly once per period. Runs on SQLite and, with
TEST_DATABASE_URL, on PostgreSQL (row locks on the spend row)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from domain.budgets import (
    BudgetPeriod,
    BudgetScope,
    OnExceeded,
    admit_model_call,
    settle_model_call,
)

THREADS = 8


def _budget(use_cases: Any, actor: Any, limit: float) -> Any:
    budget, _usage = use_cases.budgets.create_budget(
        actor,
        name="Concurrent",
        scope=BudgetScope.WORKSPACE,
        scope_id=None,
        period=BudgetPeriod.MONTH,
        timezone="UTC",
        limit_units=limit,
        warning_percent=50,
        on_exceeded=OnExceeded.BLOCK,
    )
    return budget


def _call(use_cases: Any, actor: Any, start: threading.Barrier, cost: float) -> bool:
    """One model call: admitted (reserving one unit) or not; settled at ``cost`` if admitted."""
    database = use_cases.database
    start.wait(timeout=30)
    now = datetime.now(UTC)
    with database(write=True) as tx:
        admission = admit_model_call(
            tx, actor.workspace_id, "crw_x", "mem_x", now, 1.0, lambda _b: False
        )
        tx.commit()
    if admission.refused_by is not None:
        return False
    with database(write=True) as tx:
        settle_model_call(
            tx, actor.workspace_id, "crw_x", "mem_x", now, admission.reservations, cost
        )
        tx.commit()
    return True


def _events(use_cases: Any, workspace_id: str) -> list[str]:
    with use_cases.database() as tx:
        return [s.kind for s in tx.events.read(workspace_id, 0, 1000)]


def _race(use_cases: Any, actor: Any, cost: float) -> list[bool]:
    start = threading.Barrier(THREADS)
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(_call, use_cases, actor, start, cost) for _ in range(THREADS)]
        return [f.result(timeout=120) for f in futures]


def test_concurrent_calls_never_spend_past_the_limit(use_cases, actor):
    budget = _budget(use_cases, actor, 3.0)
    admitted = _race(use_cases, actor, 1.0)
    assert sum(admitted) == 3
    _b, usage = use_cases.budgets.get_budget(actor, budget.id)
    assert usage.spent_units == 3.0 and usage.reserved_units == 0.0
    assert _events(use_cases, actor.workspace_id) == ["budget.warning", "budget.exceeded"]


def test_the_last_unit_goes_to_exactly_one_worker(use_cases, actor):
    budget = _budget(use_cases, actor, 3.0)
    start = threading.Barrier(1)
    assert _call(use_cases, actor, start, 2.5)  # 2.5 of 3 spent: one unit is left
    admitted = _race(use_cases, actor, 0.5)
    assert sum(admitted) == 1
    _b, usage = use_cases.budgets.get_budget(actor, budget.id)
    assert usage.spent_units == 3.0 and usage.reserved_units == 0.0
    assert _events(use_cases, actor.workspace_id) == ["budget.warning", "budget.exceeded"]
