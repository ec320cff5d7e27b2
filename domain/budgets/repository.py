"""Persistence of budgets and their per-period spend rows (nothing here commits).

Every change of a spend row is one conditional ``UPDATE`` of that row: on PostgreSQL the row
lock serialises concurrent writers (a waiting one re-checks the condition against the winner's
committed row), on SQLite the writing unit of work holds the database lock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, case, delete, insert, or_, select, update

from domain.audit import AuditTx
from domain.budgets.model import (
    Budget,
    BudgetPeriod,
    BudgetScope,
    BudgetUsage,
    OnExceeded,
    PeriodWindow,
)
from domain.persistence import tables
from domain.persistence.driver import DriverStatements
from domain.persistence.sql import insert_once, keyset_page, utc, utc_or_none


class BudgetRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection
        self._hot = DriverStatements(connection)  # looked up by every run start and model call

    # -- budgets ---------------------------------------------------------------------------

    def add(self, budget: Budget) -> None:
        self._c.execute(insert(tables.budgets).values(**_values(budget)))

    def save(self, budget: Budget) -> None:
        b = tables.budgets
        self._c.execute(update(b).where(b.c.id == budget.id).values(**_values(budget)))

    def remove(self, budget: Budget) -> None:
        s, b = tables.budget_spends, tables.budgets
        self._c.execute(delete(s).where(s.c.budget_id == budget.id))
        self._c.execute(delete(b).where(b.c.id == budget.id))

    def get(self, workspace_id: str, budget_id: str) -> Budget | None:
        b = tables.budgets
        row = self._c.execute(
            select(b).where(b.c.workspace_id == workspace_id, b.c.id == budget_id)
        ).first()
        return None if row is None else _budget(row)

    def page(self, workspace_id: str, after: str | None, limit: int) -> list[Budget]:
        b = tables.budgets
        stmt = keyset_page(select(b).where(b.c.workspace_id == workspace_id), b.c.id, after, limit)
        return [_budget(row) for row in self._c.execute(stmt)]

    def covering(self, workspace_id: str, crew_id: str, member_id: str) -> list[Budget]:
        """The budgets a run of ``member_id`` (in ``crew_id``) spends from, in lock order
        (``block`` ones first, then by id: every writer locks spend rows in this order)."""
        params = {"workspace_id": workspace_id, "crew_id": crew_id, "member_id": member_id}
        budgets = [_budget(row) for row in self._hot.execute(_COVERING, params).all()]
        return sorted(budgets, key=lambda x: (x.on_exceeded is not OnExceeded.BLOCK, x.id))

    def states(self, now: datetime) -> list[tuple[Budget, BudgetUsage | None]]:
        """Every budget of every workspace with its latest spend row (for the metrics)."""
        b = tables.budgets
        budgets = [_budget(row) for row in self._c.execute(select(b))]
        return [(budget, self.usage(budget, budget.window(now))) for budget in budgets]

    # -- spend rows ------------------------------------------------------------------------

    def usage(self, budget: Budget, window: PeriodWindow) -> BudgetUsage | None:
        s = tables.budget_spends
        row = self._c.execute(
            select(s).where(s.c.budget_id == budget.id, s.c.period == window.key)
        ).first()
        if row is None:
            return None
        return BudgetUsage(
            window=window,
            spent_units=float(row.spent),
            reserved_units=float(row.reserved),
            warned_at=utc_or_none(row.warned_at),
            exceeded_at=utc_or_none(row.exceeded_at),
        )

    def open_period(self, budget: Budget, period: str) -> None:
        """Create the period's spend row unless it exists (one statement, race-free)."""
        insert_once(
            self._c,
            tables.budget_spends,
            ["budget_id", "period"],
            budget_id=budget.id,
            period=period,
            workspace_id=budget.workspace_id,
            spent=0.0,
            reserved=0.0,
        )

    def reserve(self, budget_id: str, period: str, limit_units: float, units: float) -> bool:
        """Reserve ``units`` while settled plus reserved units are below the limit; False
        (nothing changed) when they are not: the last unit goes to one caller only."""
        s = tables.budget_spends
        row = self._c.execute(
            update(s)
            .where(
                s.c.budget_id == budget_id,
                s.c.period == period,
                s.c.spent + s.c.reserved < limit_units,
            )
            .values(reserved=s.c.reserved + units)
            .returning(s.c.budget_id)
        ).first()
        return row is not None

    def settle(self, budget_id: str, period: str, reserved: float, actual: float) -> float | None:
        """Turn a reservation into the actual cost; the period's settled units afterwards
        (None: no such row)."""
        s = tables.budget_spends
        left = s.c.reserved - reserved
        row = self._c.execute(
            update(s)
            .where(s.c.budget_id == budget_id, s.c.period == period)
            .values(spent=s.c.spent + actual, reserved=case((left < 0, 0.0), else_=left))
            .returning(s.c.spent)
        ).first()
        return None if row is None else float(row.spent)

    def mark(self, budget_id: str, period: str, what: str, now: datetime) -> bool:
        """Set ``warned_at`` or ``exceeded_at`` unless set: True for the one caller that did
        (each is announced once per period)."""
        s = tables.budget_spends
        column = s.c[what]
        row = self._c.execute(
            update(s)
            .where(s.c.budget_id == budget_id, s.c.period == period, column.is_(None))
            .values({what: now})
            .returning(s.c.budget_id)
        ).first()
        return row is not None

    def clear_marks(self, budget_id: str, period: str) -> None:
        """Forget the period's announcements (its limit or threshold changed)."""
        s = tables.budget_spends
        self._c.execute(
            update(s)
            .where(s.c.budget_id == budget_id, s.c.period == period)
            .values(warned_at=None, exceeded_at=None)
        )


class BudgetsTx(AuditTx, Protocol):
    """What the budget use cases and the accounting need of a unit of work."""

    budgets: BudgetRepository


def _values(budget: Budget) -> dict[str, Any]:
    return {
        "id": budget.id,
        "workspace_id": budget.workspace_id,
        "name": budget.name,
        "scope": budget.scope.value,
        "scope_id": budget.scope_id,
        "period": budget.period.value,
        "timezone": budget.timezone,
        "limit_units": budget.limit_units,
        "warning_percent": budget.warning_percent,
        "on_exceeded": budget.on_exceeded.value,
        "created_by": budget.created_by,
        "created_at": budget.created_at,
        "updated_at": budget.updated_at,
    }


def _budget(row: Any) -> Budget:
    return Budget(
        id=row.id,
        workspace_id=row.workspace_id,
        name=row.name,
        scope=BudgetScope(row.scope),
        scope_id=row.scope_id,
        period=BudgetPeriod(row.period),
        timezone=row.timezone,
        limit_units=float(row.limit_units),
        warning_percent=int(row.warning_percent),
        on_exceeded=OnExceeded(row.on_exceeded),
        created_by=row.created_by,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )


def _covering() -> Any:
    b = tables.budgets
    return select(b).where(
        b.c.workspace_id == bindparam("workspace_id"),
        or_(
            b.c.scope == BudgetScope.WORKSPACE.value,
            (b.c.scope == BudgetScope.CREW.value) & (b.c.scope_id == bindparam("crew_id")),
            (b.c.scope == BudgetScope.MEMBER.value) & (b.c.scope_id == bindparam("member_id")),
        ),
    )


#: ``covering``'s statement, built once: every run start and model call asks it.
_COVERING = _covering()
