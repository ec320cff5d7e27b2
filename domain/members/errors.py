"""Errors of members: publishing without a draft, and handoff cycles."""

from __future__ import annotations

from domain.kernel.errors import Conflict, RuleViolation


class NoDraftToPublish(Conflict):
    """Publish was asked of a member whose latest version is already published."""

    slug = "no-draft"

    def __init__(self, member_id: str) -> None:
        super().__init__(f"Member '{member_id}' has no draft to publish; replace its draft first.")
        self.member_id = member_id


class HandoffCycle(RuleViolation):
    """Declaring these handoffs would close a cycle in the workspace handoff graph."""

    def __init__(self, cycle: list[str], pointer: str) -> None:
        path = " -> ".join(cycle)
        super().__init__("handoff-cycle", f"These handoffs would close the cycle {path}.", pointer)
        self.cycle = cycle

    def details(self) -> dict[str, object]:
        return {"pointer": self.pointer, "cycle": list(self.cycle)}
