"""Errors of budgets: a run refused because its budget is spent (409 ``BudgetExceeded``) and
a time zone the server does not know (400, pointer ``/timezone``)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.kernel.errors import Conflict, InvalidField


class BudgetExceeded(Conflict):
    """A budget with ``on_exceeded: block`` has reached its limit for the current period."""

    slug = "budget-exceeded"
    code = "BudgetExceeded"

    def __init__(self, budget_id: str, name: str, period: str) -> None:
        super().__init__(f"Budget '{name[:100]}' ({budget_id}) has reached its limit for {period}.")
        self.budget_id = budget_id
        self.period = period

    def details(self) -> dict[str, object]:
        return {"budget_id": self.budget_id, "period": self.period}


def check_timezone(name: str) -> None:
    """:raises InvalidField: ``/timezone`` names no IANA zone known to the server."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidField(
            "/timezone", "timezone", f"'{name[:64]}' is not an IANA time zone."
        ) from None
