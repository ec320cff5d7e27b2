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


#: What cost can be grouped by (``day``: the UTC calendar day).
GROUP_DIMENSIONS: tuple[str, ...] = ("member", "crew", "origin", "day")


@dataclass(frozen=True)
class CostGroup:
    """Runs started and tokens and cost units of one group: ``key`` maps each grouped
    dimension's field (``member_id``, ``crew_id``, ``origin``, ``day``) to its value."""

    key: dict[str, str]
    runs: int
    tokens_in: int
    tokens_out: int
    cost_units: float
