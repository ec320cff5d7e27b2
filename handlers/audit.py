"""The audit log (admins)."""

from __future__ import annotations

from typing import Any

from domain.audit import AuditEntry, AuditFilter
from handlers._http import actor, instant, ok, page, page_body, timestamp, use_cases


def _entry(e: AuditEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": timestamp(e.at),
        "actor": e.actor_subject,
        "actor_kind": e.actor_kind,
        "action": e.action,
        "target_type": e.subject_type,
        "target_id": e.subject_id,
        "data": e.data,
    }


def list_audit_entries(
    token_info: dict[str, Any],
    limit: int = 50,
    cursor: str | None = None,
    include_total: bool = False,
    **filters: str,
) -> Any:
    # ``actor`` and ``from`` name query parameters, so they arrive as keywords.
    where = AuditFilter(
        actor=filters.get("actor"),
        action=filters.get("action"),
        target_type=filters.get("target_type"),
        target_id=filters.get("target_id"),
        at_or_after=instant("from", filters.get("from")),
        before=instant("to", filters.get("to")),
    )
    result = use_cases().audit.list_audit_entries(
        actor(token_info), page(limit, cursor, include_total), where
    )
    return ok(page_body(result, _entry))
