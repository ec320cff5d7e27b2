"""Tools: the catalog a definition may name, effect classes, running a tool call, and the MCP
tool servers whose tools join the catalog."""

from domain.tools.catalog import (
    CATALOG,
    ToolContext,
    default_arguments,
    execute,
    runs_in_process,
    tool_schema,
)
from domain.tools.errors import ToolServerUnavailable, check_headers, check_server_url
from domain.tools.model import (
    CatalogTool,
    EffectClass,
    RemoteTool,
    ToolServer,
    mcp_tool_name,
    split_mcp_tool_name,
)
from domain.tools.ports import HttpPort, ToolError, ToolServerError, ToolServerPort
from domain.tools.repository import NoteRepository
from domain.tools.servers_repository import ToolServerRepository, ToolServersTx
from domain.tools.use_cases import Tools, ToolServerSettings

__all__ = [
    "CATALOG",
    "CatalogTool",
    "EffectClass",
    "HttpPort",
    "NoteRepository",
    "RemoteTool",
    "ToolContext",
    "ToolError",
    "ToolServer",
    "ToolServerError",
    "ToolServerPort",
    "ToolServerRepository",
    "ToolServerSettings",
    "ToolServerUnavailable",
    "ToolServersTx",
    "Tools",
    "check_headers",
    "check_server_url",
    "default_arguments",
    "execute",
    "runs_in_process",
    "mcp_tool_name",
    "split_mcp_tool_name",
    "tool_schema",
]
