"""Budgets: spending limits per scope and calendar period, and their accounting (issue 16)."""

from domain.budgets.accounting import (
    Admission,
    admit_model_call,
    event_data,
    refuse_new_run,
    release,
    settle_model_call,
    spend_needs_approval,
)
from domain.budgets.errors import BudgetExceeded
from domain.budgets.model import (
    Budget,
    BudgetPeriod,
    BudgetScope,
    BudgetState,
    BudgetUsage,
    OnExceeded,
    PeriodWindow,
    Reservation,
)
from domain.budgets.repository import BudgetRepository, BudgetsTx
from domain.budgets.use_cases import Budgets

__all__ = [
    "Admission",
    "Budget",
    "BudgetExceeded",
    "BudgetPeriod",
    "BudgetRepository",
    "BudgetScope",
    "BudgetState",
    "BudgetUsage",
    "Budgets",
    "BudgetsTx",
    "OnExceeded",
    "PeriodWindow",
    "Reservation",
    "admit_model_call",
    "event_data",
    "refuse_new_run",
    "release",
    "settle_model_call",
    "spend_needs_approval",
]
