"""Cost: what model calls consumed, rolled up."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MemberCost:
    """Runs started and tokens and cost units consumed by one member in a period."""

    member_id: str
    runs: int
    tokens_in: int
    tokens_out: int
    cost_units: float
