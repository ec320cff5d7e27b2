"""Workspace membership (admins): list, add, change role, remove."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from domain.kernel import Role
from domain.workspaces import Membership
from handlers._http import actor, ok, page, page_body, timestamp, use_cases
from handlers.context import app_context
from handlers.etags import conditional, if_match, tagged


def _membership(m: Membership) -> dict[str, Any]:
    return {
        "subject": m.subject,
        "role": m.role.label,
        "email": m.email,
        "name": m.name,
        "created_at": timestamp(m.created_at),
    }


def list_workspace_memberships(
    token_info: dict[str, Any],
    limit: int = 50,
    cursor: str | None = None,
    include_total: bool = False,
) -> Any:
    result = use_cases().workspaces.list_workspace_memberships(
        actor(token_info), page(limit, cursor, include_total)
    )
    return ok(page_body(result, _membership))


def add_workspace_membership(token_info: dict[str, Any], body: dict[str, Any]) -> Any:
    membership = use_cases().workspaces.add_workspace_membership(
        actor(token_info), body["subject"], Role.parse(body["role"])
    )
    app_context().credentials.clear()  # this process sees the change at once (ADR 0032)
    location = f"/v1/workspace/members/{quote(membership.subject, safe='')}"
    return ok(_membership(membership), 201, {"Location": location})


def get_workspace_membership(token_info: dict[str, Any], subject: str) -> Any:
    membership = use_cases().workspaces.get_workspace_membership(actor(token_info), subject)
    return conditional(_membership(membership))


def update_workspace_membership(
    token_info: dict[str, Any], subject: str, body: dict[str, Any]
) -> Any:
    membership = use_cases().workspaces.update_workspace_membership(
        actor(token_info), subject, Role.parse(body["role"]), if_match=if_match(_membership)
    )
    app_context().credentials.clear()
    return tagged(_membership(membership))


def remove_workspace_membership(token_info: dict[str, Any], subject: str) -> Any:
    use_cases().workspaces.remove_workspace_membership(actor(token_info), subject)
    app_context().credentials.clear()
    return None, 204
