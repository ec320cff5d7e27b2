"""Handoff declarations between members."""

from __future__ import annotations

from typing import Any

from domain.members import Handoff, HandoffCondition
from handlers import serialise
from handlers._http import actor, use_cases
from handlers.etags import conditional, if_match, tagged


def get_member_handoffs(token_info: dict[str, Any], member_id: str) -> Any:
    handoffs = use_cases().members.get_member_handoffs(actor(token_info), member_id)
    return conditional(serialise.handoff_set(handoffs))


def replace_member_handoffs(
    token_info: dict[str, Any], member_id: str, body: dict[str, Any]
) -> Any:
    handoffs = [
        Handoff(
            target_member_id=item["target_member_id"],
            condition=None
            if item.get("condition") is None
            else HandoffCondition(item["condition"]["output_field"], item["condition"]["equals"]),
        )
        for item in body["handoffs"]
    ]
    result = use_cases().members.replace_member_handoffs(
        actor(token_info), member_id, handoffs, if_match=if_match(serialise.handoff_set)
    )
    return tagged(serialise.handoff_set(result))
