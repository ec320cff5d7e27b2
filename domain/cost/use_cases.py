"""Use cases of cost: the rollup of the ledger."""

from __future__ import annotations

from datetime import datetime

from domain.cost.model import MemberCost
from domain.cost.repository import CostTx
from domain.kernel.actor import Actor, Role
from domain.kernel.unit_of_work import Store


class Cost:
    """Run counts and cost units of the actor's workspace."""

    def __init__(self, store: Store[CostTx]) -> None:
        self._store = store

    def get_cost(self, actor: Actor, start: datetime, end: datetime) -> list[MemberCost]:
        """Run counts and cost units per member for runs created in ``[start, end)``."""
        actor.require(Role.VIEWER)
        with self._store() as tx:
            return tx.cost.by_member(actor.workspace_id, start, end)
