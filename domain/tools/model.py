"""Tools: what a member may call, and how far its effects reach."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class EffectClass(enum.Enum):
    """How far a tool call reaches; it decides whether the call waits for a human approval."""

    INTERNAL = "internal"
    EXTERNAL_READ = "external_read"
    EXTERNAL_WRITE = "external_write"
    SPEND = "spend"


@dataclass(frozen=True)
class CatalogTool:
    """A tool this deployment implements: its honest effect class and its argument schema."""

    name: str
    effect_class: EffectClass
    description: str
    parameters: dict[str, Any] = field(hash=False)
    #: Runs on this process's own database, waiting on nothing outside it (the notes tools).
    in_process: bool = False


MCP_PREFIX = "mcp:"


def mcp_tool_name(server_name: str, tool_name: str) -> str:
    """The catalog name of tool ``tool_name`` of tool server ``server_name``."""
    return f"{MCP_PREFIX}{server_name}/{tool_name}"


def split_mcp_tool_name(name: str) -> tuple[str, str] | None:
    """``(server name, tool name)`` of an ``mcp:<server>/<tool>`` name; None for any other."""
    if not name.startswith(MCP_PREFIX) or "/" not in name:
        return None
    server, _, tool = name[len(MCP_PREFIX) :].partition("/")
    return (server, tool) if server and tool else None


@dataclass(frozen=True)
class RemoteTool:
    """A tool a tool server lists: its name there, description and input schema."""

    name: str
    description: str
    input_schema: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class ToolServer:
    """An MCP tool server registered in a workspace, with the tools it last listed.

    ``headers_ciphertext`` holds the request headers (their values are secrets) sealed with the
    deployment's key material; only ``header_names`` is ever shown.
    """

    id: str
    workspace_id: str
    name: str
    url: str
    header_names: tuple[str, ...]
    headers_ciphertext: str | None
    tools: tuple[RemoteTool, ...]
    effect_classes: dict[str, EffectClass] = field(hash=False)
    refreshed_at: datetime
    created_by: str
    created_at: datetime
    updated_at: datetime

    def effect_class(self, tool_name: str) -> EffectClass:
        """The admin's effect class for the tool; ``external_write`` until one is set."""
        return self.effect_classes.get(tool_name, EffectClass.EXTERNAL_WRITE)

    def catalog(self) -> list[CatalogTool]:
        return [
            CatalogTool(
                mcp_tool_name(self.name, t.name),
                self.effect_class(t.name),
                t.description,
                t.input_schema,
            )
            for t in self.tools
        ]
