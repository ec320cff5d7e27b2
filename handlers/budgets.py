"""Budgets of the workspace (admin): spending limits per scope and calendar period.

A budget's ``ETag`` covers its settings, not its usage: spending does not invalidate an
``If-Match`` taken from an earlier read.
"""

from __future__ import annotations

from typing import Any

from domain.budgets import Budget, BudgetPeriod, BudgetScope, BudgetUsage, OnExceeded
from handlers._http import actor, ok, page, page_body, timestamp, use_cases
from handlers.etags import etag_of, if_match


def _settings(budget: Budget) -> dict[str, Any]:
    scope = {"type": budget.scope.value, "id": budget.scope_id}
    return {
        "id": budget.id,
        "name": budget.name,
        "scope": scope,
        "period": budget.period.value,
        "timezone": budget.timezone,
        "limit_units": budget.limit_units,
        "warning_percent": budget.warning_percent,
        "on_exceeded": budget.on_exceeded.value,
        "created_by": budget.created_by,
        "created_at": timestamp(budget.created_at),
        "updated_at": timestamp(budget.updated_at),
    }


def _budget(item: tuple[Budget, BudgetUsage]) -> dict[str, Any]:
    budget, usage = item
    return _settings(budget) | {
        "usage": {
            "period": usage.window.key,
            "period_start": timestamp(usage.window.start),
            "period_end": timestamp(usage.window.end),
            "spent_units": round(usage.spent_units, 6),
            "reserved_units": round(usage.reserved_units, 6),
            "state": usage.state(budget).value,
        }
    }


def _answer(item: tuple[Budget, BudgetUsage], status: int = 200, **headers: str) -> Any:
    return ok(_budget(item), status, {**headers, "ETag": etag_of(_settings(item[0]))})


def create_budget(token_info: dict[str, Any], body: dict[str, Any]) -> Any:
    scope = body.get("scope") or {"type": "workspace"}
    item = use_cases().budgets.create_budget(
        actor(token_info),
        name=body["name"],
        scope=BudgetScope(scope["type"]),
        scope_id=scope.get("id"),
        period=BudgetPeriod(body["period"]),
        timezone=body.get("timezone", "UTC"),
        limit_units=float(body["limit_units"]),
        warning_percent=body.get("warning_percent", 80),
        on_exceeded=OnExceeded(body.get("on_exceeded", "block")),
    )
    return _answer(item, 201, Location=f"/v1/budgets/{item[0].id}")


def list_budgets(token_info: dict[str, Any], limit: int = 50, cursor: str | None = None) -> Any:
    result = use_cases().budgets.list_budgets(actor(token_info), page(limit, cursor))
    return ok(page_body(result, _budget))


def get_budget(token_info: dict[str, Any], budget_id: str) -> Any:
    return _answer(use_cases().budgets.get_budget(actor(token_info), budget_id))


def update_budget(token_info: dict[str, Any], budget_id: str, body: dict[str, Any]) -> Any:
    on_exceeded = body.get("on_exceeded")
    item = use_cases().budgets.update_budget(
        actor(token_info),
        budget_id,
        name=body.get("name"),
        limit_units=None if body.get("limit_units") is None else float(body["limit_units"]),
        warning_percent=body.get("warning_percent"),
        on_exceeded=None if on_exceeded is None else OnExceeded(on_exceeded),
        if_match=if_match(_settings),
    )
    return _answer(item)


def delete_budget(token_info: dict[str, Any], budget_id: str) -> Any:
    use_cases().budgets.delete_budget(actor(token_info), budget_id)
    return None, 204
