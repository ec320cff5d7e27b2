"""Use cases of cost: the rollup of the ledger."""

from __future__ import annotations

from datetime import datetime

from domain.cost.model import CostGroup, MemberCost
from domain.cost.repository import CostTx
from domain.kernel.actor import Actor, Role
from domain.kernel.unit_of_work import Store


class Cost:
    """Run counts and cost units of the actor's workspace."""

    def __init__(self, store: Store[CostTx]) -> None:
        self._store = store

    def get_cost(
        self, actor: Actor, start: datetime, end: datetime, group_by: tuple[str, ...] = ()
    ) -> tuple[list[MemberCost], list[CostGroup] | None]:
        """Run counts and cost units per member for runs created in ``[start, end)``, and
        per group of ``group_by`` (dimensions of ``GROUP_DIMENSIONS``; None: not asked)."""
        actor.require(Role.VIEWER)
        dimensions = tuple(dict.fromkeys(group_by))
        with self._store() as tx:
            members = tx.cost.by_member(actor.workspace_id, start, end)
            groups = (
                tx.cost.grouped(actor.workspace_id, start, end, dimensions) if dimensions else None
            )
        return members, groups
