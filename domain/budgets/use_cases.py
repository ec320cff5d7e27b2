"""Use cases of budgets (admin): create, read, update and delete spending limits.

The accounting that model calls and runs go through is in ``domain.budgets.accounting``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from domain.budgets.errors import check_timezone
from domain.budgets.model import (
    Budget,
    BudgetPeriod,
    BudgetScope,
    BudgetUsage,
    OnExceeded,
)
from domain.budgets.repository import BudgetsTx
from domain.kernel.actor import Actor, Role
from domain.kernel.clock import Clock
from domain.kernel.errors import NotFound, ReferencedResourceNotFound, RuleViolation
from domain.kernel.ids import new_id
from domain.kernel.paging import Page, PageRequest, page_of
from domain.kernel.preconditions import Precondition, check
from domain.kernel.unit_of_work import Store
from domain.members import MembersTx


class BudgetsAdminTx(BudgetsTx, MembersTx, Protocol):
    """What the budget use cases need: budgets, and crews and members to scope them to."""


class Budgets:
    """Spending limits of the actor's workspace."""

    def __init__(self, store: Store[BudgetsAdminTx], clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def create_budget(
        self,
        actor: Actor,
        *,
        name: str,
        scope: BudgetScope,
        scope_id: str | None,
        period: BudgetPeriod,
        timezone: str,
        limit_units: float,
        warning_percent: int,
        on_exceeded: OnExceeded,
    ) -> tuple[Budget, BudgetUsage]:
        """Limit what runs in ``scope`` spend per ``period`` (counted from now on).

        :raises PermissionDenied: the actor is below admin.
        :raises InvalidField: ``/timezone`` is unknown to the server.
        :raises ReferencedResourceNotFound: the scope's crew or member is not in the workspace.
        :raises RuleViolation: ``budget-scope``: the scope's id is missing or superfluous.
        """
        actor.require(Role.ADMIN)
        check_timezone(timezone)
        now = self._clock.now()
        with self._store(write=True) as tx:
            _check_scope(tx, actor, scope, scope_id)
            budget = Budget(
                id=new_id("bgt"),
                workspace_id=actor.workspace_id,
                name=name,
                scope=scope,
                scope_id=scope_id,
                period=period,
                timezone=timezone,
                limit_units=limit_units,
                warning_percent=warning_percent,
                on_exceeded=on_exceeded,
                created_by=actor.subject,
                created_at=now,
                updated_at=now,
            )
            tx.budgets.add(budget)
            tx.audit.append(actor, "budget.created", "budget", budget.id, _audit(budget), now)
            usage = _usage(tx, budget, now)
            tx.commit()
        return budget, usage

    def list_budgets(self, actor: Actor, page: PageRequest) -> Page[tuple[Budget, BudgetUsage]]:
        """Budgets of the workspace, oldest first, each with its current period's usage."""
        actor.require(Role.ADMIN)
        now = self._clock.now()
        with self._store() as tx:
            rows = tx.budgets.page(actor.workspace_id, page.cursor, page.limit)
            items = [(budget, _usage(tx, budget, now)) for budget in rows]
        return page_of(items, page, lambda item: item[0].id)

    def get_budget(self, actor: Actor, budget_id: str) -> tuple[Budget, BudgetUsage]:
        """:raises NotFound: no such budget in the actor's workspace."""
        actor.require(Role.ADMIN)
        now = self._clock.now()
        with self._store() as tx:
            budget = _budget_or_404(tx, actor, budget_id)
            return budget, _usage(tx, budget, now)

    def update_budget(
        self,
        actor: Actor,
        budget_id: str,
        *,
        name: str | None = None,
        limit_units: float | None = None,
        warning_percent: int | None = None,
        on_exceeded: OnExceeded | None = None,
        if_match: Precondition[Budget] | None = None,
    ) -> tuple[Budget, BudgetUsage]:
        """Change the name, the limit, the threshold or what happens past the limit; a new
        limit or threshold may be announced again this period once reached.

        :raises NotFound: no such budget.
        :raises PreconditionFailed: the budget changed since the caller read it.
        """
        actor.require(Role.ADMIN)
        now = self._clock.now()
        with self._store(write=True) as tx:
            current = _budget_or_404(tx, actor, budget_id)
            check(if_match, current)
            updated = replace(current, updated_at=now)
            if name is not None:
                updated = replace(updated, name=name)
            if limit_units is not None:
                updated = replace(updated, limit_units=limit_units)
            if warning_percent is not None:
                updated = replace(updated, warning_percent=warning_percent)
            if on_exceeded is not None:
                updated = replace(updated, on_exceeded=on_exceeded)
            tx.budgets.save(updated)
            if (updated.limit_units, updated.warning_percent) != (
                current.limit_units,
                current.warning_percent,
            ):
                tx.budgets.clear_marks(updated.id, updated.window(now).key)
            changes: dict[str, Any] = {
                "name": name,
                "limit_units": limit_units,
                "warning_percent": warning_percent,
                "on_exceeded": None if on_exceeded is None else on_exceeded.value,
            }
            changes = {k: v for k, v in changes.items() if v is not None}
            tx.audit.append(actor, "budget.updated", "budget", updated.id, changes, now)
            usage = _usage(tx, updated, now)
            tx.commit()
        return updated, usage

    def delete_budget(self, actor: Actor, budget_id: str) -> None:
        """Forget a budget and what it counted; runs in its scope are no longer limited by it.

        :raises NotFound: no such budget.
        """
        actor.require(Role.ADMIN)
        now = self._clock.now()
        with self._store(write=True) as tx:
            budget = _budget_or_404(tx, actor, budget_id)
            tx.budgets.remove(budget)
            tx.audit.append(actor, "budget.deleted", "budget", budget.id, _audit(budget), now)
            tx.commit()


def _usage(tx: BudgetsTx, budget: Budget, now: Any) -> BudgetUsage:
    window = budget.window(now)
    usage = tx.budgets.usage(budget, window)
    return usage or BudgetUsage(window, 0.0, 0.0, None, None)


def _check_scope(
    tx: BudgetsAdminTx, actor: Actor, scope: BudgetScope, scope_id: str | None
) -> None:
    if (scope is BudgetScope.WORKSPACE) != (scope_id is None):
        raise RuleViolation(
            "budget-scope",
            "A crew or member scope names its id; a workspace scope names none.",
            "/scope/id",
        )
    if scope is BudgetScope.CREW and scope_id is not None:
        if tx.members.get_crew(actor.workspace_id, scope_id) is None:
            raise ReferencedResourceNotFound("crew", scope_id, "/scope/id")
    if scope is BudgetScope.MEMBER and scope_id is not None:
        if tx.members.get_member(actor.workspace_id, scope_id) is None:
            raise ReferencedResourceNotFound("member", scope_id, "/scope/id")


def _budget_or_404(tx: BudgetsTx, actor: Actor, budget_id: str) -> Budget:
    budget = tx.budgets.get(actor.workspace_id, budget_id)
    if budget is None:
        raise NotFound("budget", budget_id)
    return budget


def _audit(budget: Budget) -> dict[str, Any]:
    return {
        "name": budget.name,
        "scope": budget.scope.value,
        "scope_id": budget.scope_id,
        "period": budget.period.value,
        "limit_units": budget.limit_units,
        "warning_percent": budget.warning_percent,
        "on_exceeded": budget.on_exceeded.value,
    }
