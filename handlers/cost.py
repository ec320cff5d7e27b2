"""Cost: run counts and cost units per member over a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from handlers import serialise
from handlers._http import actor, instant, ok, timestamp, use_cases

_DEFAULT_WINDOW = timedelta(days=30)


def get_cost(token_info: dict[str, Any], group_by: str | None = None, **window: str) -> Any:
    end = instant("to", window.get("to")) or datetime.now(UTC)
    start = instant("from", window.get("from")) or end - _DEFAULT_WINDOW
    dimensions = tuple(group_by.split(",")) if group_by else ()
    members, groups = use_cases().cost.get_cost(actor(token_info), start, end, dimensions)
    body: dict[str, Any] = {
        "from": timestamp(start),
        "to": timestamp(end),
        "members": [serialise.member_cost(m) for m in members],
        "total": {
            "runs": sum(m.runs for m in members),
            "tokens_in": sum(m.tokens_in for m in members),
            "tokens_out": sum(m.tokens_out for m in members),
            "cost_units": round(sum(m.cost_units for m in members), 6),
        },
    }
    if groups is not None:
        body["groups"] = [serialise.cost_group(g) for g in groups]
    return ok(body)
