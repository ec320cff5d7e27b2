"""Budgets: spending limits in cost units per scope and calendar period (issue 16).

Pure data and the calendar rules; persistence is in ``repository``, the accounting that model
calls go through in ``accounting``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class BudgetScope(StrEnum):
    WORKSPACE = "workspace"
    CREW = "crew"
    MEMBER = "member"


class BudgetPeriod(StrEnum):
    DAY = "day"
    MONTH = "month"


class OnExceeded(StrEnum):
    #: New runs in scope are refused, running ones fail at their next model call.
    BLOCK = "block"
    #: Every further model call and ``spend`` tool call in scope waits for a human.
    APPROVE = "approve"


class BudgetState(StrEnum):
    OK = "ok"
    WARNING = "warning"
    EXCEEDED = "exceeded"


@dataclass(frozen=True)
class PeriodWindow:
    """One calendar period of a budget: its key (``2026-11-30`` or ``2026-11``) and bounds."""

    key: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Budget:
    id: str
    workspace_id: str
    name: str
    scope: BudgetScope
    #: The crew or member the budget covers (None: the whole workspace).
    scope_id: str | None
    period: BudgetPeriod
    #: The IANA time zone whose calendar days or months are counted.
    timezone: str
    limit_units: float
    warning_percent: int
    on_exceeded: OnExceeded
    created_by: str
    created_at: datetime
    updated_at: datetime

    def covers(self, crew_id: str, member_id: str) -> bool:
        """Whether a run of ``member_id`` (in ``crew_id``) spends from this budget."""
        if self.scope is BudgetScope.WORKSPACE:
            return True
        if self.scope is BudgetScope.CREW:
            return self.scope_id == crew_id
        return self.scope_id == member_id

    @property
    def warning_units(self) -> float:
        return self.limit_units * self.warning_percent / 100

    def window(self, now: datetime) -> PeriodWindow:
        """The period ``now`` falls in, in the budget's time zone."""
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        if self.period is BudgetPeriod.DAY:
            start = datetime(local.year, local.month, local.day, tzinfo=zone)
            following = (start + timedelta(days=1, hours=3)).date()  # past any DST shift
            end = datetime(following.year, following.month, following.day, tzinfo=zone)
            key = f"{local.year:04d}-{local.month:02d}-{local.day:02d}"
        else:
            start = datetime(local.year, local.month, 1, tzinfo=zone)
            year, month = (
                (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
            )
            end = datetime(year, month, 1, tzinfo=zone)
            key = f"{local.year:04d}-{local.month:02d}"
        return PeriodWindow(key, start.astimezone(UTC), end.astimezone(UTC))


@dataclass(frozen=True)
class BudgetUsage:
    """What a budget spent in one period."""

    window: PeriodWindow
    #: Settled cost units (model calls whose cost is known).
    spent_units: float
    #: Units reserved by model calls in flight (settled when their cost is known).
    reserved_units: float
    warned_at: datetime | None
    exceeded_at: datetime | None

    def state(self, budget: Budget) -> BudgetState:
        if self.spent_units >= budget.limit_units:
            return BudgetState.EXCEEDED
        if self.spent_units >= budget.warning_units:
            return BudgetState.WARNING
        return BudgetState.OK


@dataclass(frozen=True)
class Reservation:
    """Units a model call reserved from one budget's period before it was made."""

    budget_id: str
    period: str
    units: float
