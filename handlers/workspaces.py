"""Workspaces: the caller's memberships, the caller's workspace, new workspaces."""

from __future__ import annotations

from typing import Any

from handlers import serialise
from handlers._http import actor, ok, page, page_body, use_cases
from handlers.etags import conditional, if_match, tagged


def list_my_workspaces(
    token_info: dict[str, Any], limit: int = 50, cursor: str | None = None
) -> Any:
    who = actor(token_info)
    result = use_cases().workspaces.list_my_workspaces(who, page(limit, cursor))
    return ok(page_body(result, lambda m: serialise.workspace_access(m, who.workspace_id)))


def get_workspace(token_info: dict[str, Any]) -> Any:
    workspace = use_cases().workspaces.get_workspace(actor(token_info))
    return conditional(serialise.workspace(workspace))


def update_workspace(token_info: dict[str, Any], body: dict[str, Any]) -> Any:
    workspace = use_cases().workspaces.update_workspace(
        actor(token_info),
        name=body.get("name"),
        description=body.get("description"),
        if_match=if_match(serialise.workspace),
    )
    return tagged(serialise.workspace(workspace))


def create_workspace(token_info: dict[str, Any], body: dict[str, Any]) -> Any:
    workspace = use_cases().workspaces.create_workspace(
        actor(token_info), body["name"], body.get("description", "")
    )
    return ok(serialise.workspace(workspace), 201, {"Location": "/v1/workspace"})
