"""Approvals: the queue and the decisions that resume or fail paused runs."""

from __future__ import annotations

from typing import Any

from domain import run_services
from handlers import serialise
from handlers._http import actor, ok, page, page_body, runtime


def list_approvals(
    token_info: dict[str, Any],
    limit: int = 50,
    cursor: str | None = None,
    status: str = "pending",
    run_id: str | None = None,
    member_id: str | None = None,
) -> Any:
    filters = {
        "status": None if status == "all" else status,
        "run_id": run_id,
        "member_id": member_id,
    }
    result = run_services.list_approvals(runtime(), actor(token_info), page(limit, cursor), filters)
    return ok(page_body(result, serialise.approval))


def get_approval(token_info: dict[str, Any], approval_id: str) -> Any:
    approval = run_services.get_approval(runtime(), actor(token_info), approval_id)
    return ok(serialise.approval(approval))


def approve_approval(token_info: dict[str, Any], approval_id: str) -> Any:
    approval = run_services.decide_approval(runtime(), actor(token_info), approval_id, approve=True)
    return ok(serialise.approval(approval))


def reject_approval(token_info: dict[str, Any], approval_id: str, body: dict[str, Any]) -> Any:
    approval = run_services.decide_approval(
        runtime(), actor(token_info), approval_id, approve=False, reason=body["reason"]
    )
    return ok(serialise.approval(approval))
