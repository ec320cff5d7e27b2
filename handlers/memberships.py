"""Workspace membership (admins): list, add, change role, remove."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from domain import workspace_members
from domain.identity import WorkspaceMember
from domain.model import Role
from handlers._http import actor, ok, page, page_body, timestamp, uow


def _member(m: WorkspaceMember) -> dict[str, Any]:
    return {
        "subject": m.subject,
        "role": m.role.label,
        "email": m.email,
        "name": m.name,
        "created_at": timestamp(m.created_at),
    }


def list_workspace_memberships(
    token_info: dict[str, Any], limit: int = 50, cursor: str | None = None
) -> Any:
    result = workspace_members.list_members(uow(), actor(token_info), page(limit, cursor))
    return ok(page_body(result, _member))


def add_workspace_membership(token_info: dict[str, Any], body: dict[str, Any]) -> Any:
    member = workspace_members.add_member(
        uow(), actor(token_info), body["subject"], Role.parse(body["role"])
    )
    location = f"/v1/workspace/members/{quote(member.subject, safe='')}"
    return ok(_member(member), 201, {"Location": location})


def get_workspace_membership(token_info: dict[str, Any], subject: str) -> Any:
    return ok(_member(workspace_members.get_member(uow(), actor(token_info), subject)))


def update_workspace_membership(
    token_info: dict[str, Any], subject: str, body: dict[str, Any]
) -> Any:
    member = workspace_members.change_role(
        uow(), actor(token_info), subject, Role.parse(body["role"])
    )
    return ok(_member(member))


def remove_workspace_membership(token_info: dict[str, Any], subject: str) -> Any:
    workspace_members.remove_member(uow(), actor(token_info), subject)
    return None, 204
