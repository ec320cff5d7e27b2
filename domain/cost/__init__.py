"""Cost: the ledger of model calls (one row each) and its rollups."""

from domain.cost.model import GROUP_DIMENSIONS, CostGroup, MemberCost
from domain.cost.repository import CostLedger, CostTx
from domain.cost.use_cases import Cost

__all__ = ["GROUP_DIMENSIONS", "Cost", "CostGroup", "CostLedger", "CostTx", "MemberCost"]
