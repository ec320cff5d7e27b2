"""The tool catalog: every tool a definition may declare (built-ins and tool servers')."""

from __future__ import annotations

from typing import Any

from handlers._http import actor, ok, use_cases


def list_tools(token_info: dict[str, Any]) -> Any:
    tools = use_cases().tools.list_tools(actor(token_info))
    return ok(
        {
            "items": [
                {
                    "name": tool.name,
                    "source": "mcp" if tool.name.startswith("mcp:") else "builtin",
                    "description": tool.description,
                    "input_schema": tool.parameters,
                    "effect_class": tool.effect_class.value,
                }
                for tool in tools
            ]
        }
    )
