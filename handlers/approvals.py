"""Approvals: the queue and the decisions that resume or fail paused runs."""

from __future__ import annotations

from typing import Any

from domain.runs import ApprovalFilter, ApprovalStatus
from handlers import serialise
from handlers._http import actor, ok, page, page_body, use_cases


def list_approvals(
    token_info: dict[str, Any],
    limit: int = 50,
    cursor: str | None = None,
    status: str = "pending",
    run_id: str | None = None,
    member_id: str | None = None,
    include_total: bool = False,
) -> Any:
    where = ApprovalFilter(
        status=None if status == "all" else ApprovalStatus(status),
        run_id=run_id,
        member_id=member_id,
    )
    result = use_cases().runs.list_approvals(
        actor(token_info), page(limit, cursor, include_total), where
    )
    return ok(page_body(result, serialise.approval))


def get_approval(token_info: dict[str, Any], approval_id: str) -> Any:
    approval = use_cases().runs.get_approval(actor(token_info), approval_id)
    return ok(serialise.approval(approval))


def approve_approval(token_info: dict[str, Any], approval_id: str) -> Any:
    approval = use_cases().runs.approve_approval(actor(token_info), approval_id)
    return ok(serialise.approval(approval))


def reject_approval(token_info: dict[str, Any], approval_id: str, body: dict[str, Any]) -> Any:
    approval = use_cases().runs.reject_approval(actor(token_info), approval_id, body["reason"])
    return ok(serialise.approval(approval))
