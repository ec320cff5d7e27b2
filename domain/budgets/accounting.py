"""Budget accounting: what a model call or a run must get past, and what it spent.

A model call is admitted in its own transaction by reserving units from every budget that
covers the run (one conditional ``UPDATE`` per spend row: settled plus reserved units must be
below the limit), so of two workers competing for the last unit exactly one gets it. Once the
call's cost is known it is settled in the transaction that writes the cost ledger row: the
reservation is replaced by the actual cost, and the first settlement that reaches the warning
threshold or the limit in a period announces ``budget.warning`` / ``budget.exceeded`` (each
marked on the spend row with a conditional ``UPDATE``: once per period). Rows are locked in
one order (``BudgetRepository.covering``), so two writers never wait on each other in a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.budgets.errors import BudgetExceeded
from domain.budgets.model import Budget, OnExceeded, PeriodWindow, Reservation
from domain.budgets.repository import BudgetsTx
from domain.kernel.signals import Signal


@dataclass(frozen=True)
class Admission:
    """The outcome of admitting a model call: the reservations it holds, or the budget that
    refused it (``block``: the run fails; ``approve``: a human must approve the call)."""

    reservations: tuple[Reservation, ...] = ()
    refused_by: Budget | None = None


def refuse_new_run(
    tx: BudgetsTx, workspace_id: str, crew_id: str, member_id: str, now: datetime
) -> None:
    """:raises BudgetExceeded: a ``block`` budget covering the run has reached its limit."""
    for budget in tx.budgets.covering(workspace_id, crew_id, member_id):
        if budget.on_exceeded is not OnExceeded.BLOCK:
            continue
        window = budget.window(now)
        usage = tx.budgets.usage(budget, window)
        if usage is not None and usage.spent_units >= budget.limit_units:
            raise BudgetExceeded(budget.id, budget.name, window.key)


def admit_model_call(
    tx: BudgetsTx,
    workspace_id: str,
    crew_id: str,
    member_id: str,
    now: datetime,
    units: float,
    approved: Callable[[str], bool],
) -> Admission:
    """Reserve ``units`` from every budget covering the run. ``approved(budget_id)`` says
    whether a human approved this call over an ``approve`` budget (it then reserves nothing
    there and is settled afterwards). On refusal the reservations made are given back in
    ``tx`` and the refusing budget is named; the caller commits either way."""
    held: list[Reservation] = []
    for budget in tx.budgets.covering(workspace_id, crew_id, member_id):
        window = budget.window(now)
        tx.budgets.open_period(budget, window.key)
        if budget.on_exceeded is OnExceeded.APPROVE and approved(budget.id):
            continue
        if tx.budgets.reserve(budget.id, window.key, budget.limit_units, units):
            held.append(Reservation(budget.id, window.key, units))
            continue
        for reservation in held:
            tx.budgets.settle(reservation.budget_id, reservation.period, reservation.units, 0.0)
        _announce(tx, budget, window, now)
        return Admission((), budget)
    return Admission(tuple(held))


def release(tx: BudgetsTx, reservations: tuple[Reservation, ...]) -> None:
    """Give back reservations whose call's cost will never be recorded."""
    for reservation in reservations:
        tx.budgets.settle(reservation.budget_id, reservation.period, reservation.units, 0.0)


def settle_model_call(
    tx: BudgetsTx,
    workspace_id: str,
    crew_id: str,
    member_id: str,
    now: datetime,
    reservations: tuple[Reservation, ...],
    cost_units: float,
) -> None:
    """Charge a model call's actual cost to every budget covering the run, in place of its
    reservations, and announce a threshold or limit reached for the first time this period."""
    held = {r.budget_id: r for r in reservations}
    for budget in tx.budgets.covering(workspace_id, crew_id, member_id):
        window = budget.window(now)
        reservation = held.get(budget.id)
        period = window.key if reservation is None else reservation.period
        if period != window.key:  # reserved before midnight: settle where it was reserved
            window = PeriodWindow(period, window.start, window.end)
        tx.budgets.open_period(budget, period)
        tx.budgets.settle(
            budget.id, period, 0.0 if reservation is None else reservation.units, cost_units
        )
        _announce(tx, budget, window, now)


def spend_needs_approval(
    tx: BudgetsTx, workspace_id: str, crew_id: str, member_id: str, now: datetime
) -> Budget | None:
    """The ``approve`` budget covering the run whose limit is reached (settled plus reserved
    units), which a ``spend`` tool call must then be approved over; None when there is none."""
    for budget in tx.budgets.covering(workspace_id, crew_id, member_id):
        if budget.on_exceeded is not OnExceeded.APPROVE:
            continue
        usage = tx.budgets.usage(budget, budget.window(now))
        if usage is not None and usage.spent_units + usage.reserved_units >= budget.limit_units:
            return budget
    return None


def _announce(tx: BudgetsTx, budget: Budget, window: PeriodWindow, now: datetime) -> None:
    """Record ``budget.warning`` and ``budget.exceeded`` once per period each, when reached."""
    usage = tx.budgets.usage(budget, window)
    if usage is None:
        return
    spent = usage.spent_units
    if spent >= budget.warning_units and tx.budgets.mark(budget.id, window.key, "warned_at", now):
        tx.record(Signal(budget.workspace_id, "budget.warning", event_data(budget, window, spent)))
    if spent >= budget.limit_units and tx.budgets.mark(budget.id, window.key, "exceeded_at", now):
        tx.record(Signal(budget.workspace_id, "budget.exceeded", event_data(budget, window, spent)))


def event_data(budget: Budget, window: PeriodWindow, spent: float) -> dict[str, Any]:
    """The data of a ``budget.warning`` or ``budget.exceeded`` event."""
    return {
        "budget_id": budget.id,
        "name": budget.name,
        "scope": budget.scope.value,
        "scope_id": budget.scope_id,
        "period": window.key,
        "limit_units": budget.limit_units,
        "warning_percent": budget.warning_percent,
        "spent_units": round(spent, 6),
        "on_exceeded": budget.on_exceeded.value,
    }
