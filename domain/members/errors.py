"""Errors of members: publishing without a draft, handoff cycles, deleting what is in use."""

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


class CrewNotEmpty(Conflict):
    """A crew that still has members (archived ones included), or that an authoring session
    refers to, cannot be deleted."""

    slug = "crew-not-empty"

    def __init__(self, crew_id: str, reasons: list[str]) -> None:
        super().__init__(f"Crew '{crew_id}' cannot be deleted: {'; '.join(reasons)}.")
        self.crew_id = crew_id
        self.reasons = reasons

    def details(self) -> dict[str, object]:
        return {"reasons": list(self.reasons)}


class MemberInUse(Conflict):
    """A member that was published, or that something else refers to, cannot be deleted."""

    slug = "member-in-use"

    def __init__(self, member_id: str, reasons: list[str]) -> None:
        super().__init__(
            f"Member '{member_id}' cannot be deleted: {'; '.join(reasons)}. Archive it instead."
        )
        self.member_id = member_id
        self.reasons = reasons

    def details(self) -> dict[str, object]:
        return {"reasons": list(self.reasons)}
