"""MCP tool servers of the workspace (admin): register, read, update, refresh, delete.

Header values are write-only: the answers name the headers, never their values.
"""

from __future__ import annotations

from typing import Any

from domain.tools import ToolServer
from handlers._http import actor, ok, page, page_body, timestamp, use_cases


def _tool_server(server: ToolServer) -> dict[str, Any]:
    return {
        "id": server.id,
        "name": server.name,
        "url": server.url,
        "header_names": list(server.header_names),
        "tools": [
            {
                "name": tool.name,
                "catalog_name": entry.name,
                "description": tool.description,
                "input_schema": tool.input_schema,
                "effect_class": entry.effect_class.value,
            }
            for tool, entry in zip(server.tools, server.catalog(), strict=True)
        ],
        "refreshed_at": timestamp(server.refreshed_at),
        "created_by": server.created_by,
        "created_at": timestamp(server.created_at),
        "updated_at": timestamp(server.updated_at),
    }


def create_tool_server(token_info: dict[str, Any], body: dict[str, Any]) -> Any:
    server = use_cases().tools.create_tool_server(
        actor(token_info), name=body["name"], url=body["url"], headers=body.get("headers")
    )
    return ok(_tool_server(server), 201, {"Location": f"/v1/tool-servers/{server.id}"})


def list_tool_servers(
    token_info: dict[str, Any], limit: int = 50, cursor: str | None = None
) -> Any:
    result = use_cases().tools.list_tool_servers(actor(token_info), page(limit, cursor))
    return ok(page_body(result, _tool_server))


def get_tool_server(token_info: dict[str, Any], tool_server_id: str) -> Any:
    return ok(_tool_server(use_cases().tools.get_tool_server(actor(token_info), tool_server_id)))


def update_tool_server(
    token_info: dict[str, Any], tool_server_id: str, body: dict[str, Any]
) -> Any:
    server = use_cases().tools.update_tool_server(
        actor(token_info),
        tool_server_id,
        effect_classes=body.get("effect_classes"),
        headers=body.get("headers"),
    )
    return ok(_tool_server(server))


def refresh_tool_server(token_info: dict[str, Any], tool_server_id: str) -> Any:
    server = use_cases().tools.refresh_tool_server(actor(token_info), tool_server_id)
    return ok(_tool_server(server))


def delete_tool_server(token_info: dict[str, Any], tool_server_id: str) -> Any:
    use_cases().tools.delete_tool_server(actor(token_info), tool_server_id)
    return None, 204
