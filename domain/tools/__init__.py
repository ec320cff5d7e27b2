"""Tools: the catalog a definition may name, effect classes, and running a tool call."""

from domain.tools.catalog import CATALOG, ToolContext, default_arguments, execute, tool_schema
from domain.tools.model import CatalogTool, EffectClass
from domain.tools.ports import HttpPort, ToolError
from domain.tools.repository import NoteRepository

__all__ = [
    "CATALOG",
    "CatalogTool",
    "EffectClass",
    "HttpPort",
    "NoteRepository",
    "ToolContext",
    "ToolError",
    "default_arguments",
    "execute",
    "tool_schema",
]
