"""The built-in tool catalog: names, honest effect classes, argument schemas, execution.

Definitions may declare other tool names (capabilities this deployment does not implement);
calling one fails the run with a readable error. A catalog tool must be declared with its
catalog effect class. Tools of MCP tool servers (``mcp:<server>/<tool>``) run through the same
``execute``: their arguments are checked against the input schema pinned at publish, then the
call goes to the server through ``ToolContext.call_remote``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jsonschema import Draft7Validator

from domain.tools.model import CatalogTool, EffectClass, split_mcp_tool_name
from domain.tools.ports import HttpPort, ToolError

_URL = {"type": "string", "minLength": 1, "maxLength": 2000}
_KEY = {"type": "string", "minLength": 1, "maxLength": 128}

CATALOG: dict[str, CatalogTool] = {
    tool.name: tool
    for tool in (
        CatalogTool(
            "http_get",
            EffectClass.EXTERNAL_READ,
            "Fetch a URL with HTTP GET (allow-listed hosts only).",
            {
                "type": "object",
                "required": ["url"],
                "properties": {"url": _URL},
                "additionalProperties": False,
            },
        ),
        CatalogTool(
            "http_post",
            EffectClass.EXTERNAL_WRITE,
            "Send a JSON body to a URL with HTTP POST (allow-listed hosts only).",
            {
                "type": "object",
                "required": ["url"],
                "properties": {"url": _URL, "body": {}},
                "additionalProperties": False,
            },
        ),
        CatalogTool(
            "notes_read",
            EffectClass.INTERNAL,
            "Read a workspace note by key.",
            {
                "type": "object",
                "required": ["key"],
                "properties": {"key": _KEY},
                "additionalProperties": False,
            },
            in_process=True,
        ),
        CatalogTool(
            "notes_write",
            EffectClass.INTERNAL,
            "Write a workspace note (a string value under a key).",
            {
                "type": "object",
                "required": ["key", "value"],
                "properties": {"key": _KEY, "value": {"type": "string", "maxLength": 20000}},
                "additionalProperties": False,
            },
            in_process=True,
        ),
    )
}


#: The catalog tools' argument validators, built once (not on every call).
_VALIDATORS = {name: Draft7Validator(tool.parameters) for name, tool in CATALOG.items()}


def tool_schema(
    name: str, description: str, pinned: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The function description handed to a model for tool ``name`` (``pinned``: the input
    schema a published program pinned for a tool server's tool)."""
    catalog = CATALOG.get(name)
    parameters = (
        pinned if pinned is not None else (catalog.parameters if catalog else {"type": "object"})
    )
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description or (catalog.description if catalog else name),
            "parameters": parameters,
        },
    }


def default_arguments(
    name: str, run_input: dict[str, Any], parameters: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Arguments the offline model uses when the input names none for ``name``: for a tool
    server's tool, the run input's values of the properties its schema (``parameters``) names.
    """
    if split_mcp_tool_name(name) is not None:
        properties = (parameters or {}).get("properties")
        if not isinstance(properties, dict):
            return {}
        return {key: run_input[key] for key in properties if key in run_input}
    if name in ("http_get", "http_post"):
        args: dict[str, Any] = {"url": run_input.get("url", "")}
        if name == "http_post":
            args["body"] = run_input
        return args
    if name == "notes_read":
        return {"key": "last_input"}
    if name == "notes_write":
        return {"key": "last_input", "value": json.dumps(run_input, sort_keys=True)[:20000]}
    return {}


@dataclass
class ToolContext:
    workspace_id: str
    http: HttpPort
    read_note: Callable[[str], str | None]
    write_note: Callable[[str, str], None]
    now: Callable[[], datetime]
    #: Calls a tool server's tool by its catalog name (``mcp:<server>/<tool>``).
    call_remote: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None
    #: The call's stable id (the same for every attempt of the call): HTTP tools send it as
    #: ``Idempotency-Key`` so targets that honour it de-duplicate a repeated call.
    idempotency_key: str | None = None


def runs_in_process(name: str) -> bool:
    """Whether tool ``name`` runs without waiting on anything outside the process (a catalog
    tool over the database; not HTTP, not a tool server's)."""
    tool = CATALOG.get(name)
    return tool is not None and tool.in_process


def execute(
    name: str,
    arguments: dict[str, Any],
    ctx: ToolContext,
    pinned: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run catalog tool ``name`` (``pinned``: a tool server tool's pinned input schema).

    :raises ToolError: unknown tool, arguments that do not fit, or the tool failed.
    """
    if split_mcp_tool_name(name) is not None:
        return _execute_remote(name, arguments, ctx, pinned or {"type": "object"})
    tool = CATALOG.get(name)
    if tool is None:
        raise ToolError(f"Tool '{name}' has no built-in implementation in this deployment.")
    problems = sorted(_VALIDATORS[name].iter_errors(arguments), key=str)
    if problems:
        raise ToolError(f"Tool '{name}' got invalid arguments: {problems[0].message[:200]}")
    if name == "http_get":
        return ctx.http.get(str(arguments["url"]), idempotency_key=ctx.idempotency_key)
    if name == "http_post":
        return ctx.http.post(
            str(arguments["url"]), arguments.get("body"), idempotency_key=ctx.idempotency_key
        )
    if name == "notes_read":
        value = ctx.read_note(str(arguments["key"]))
        return {"key": arguments["key"], "found": value is not None, "value": value}
    ctx.write_note(str(arguments["key"]), str(arguments["value"]))
    return {"key": arguments["key"], "written": True}


def _execute_remote(
    name: str, arguments: dict[str, Any], ctx: ToolContext, schema: dict[str, Any]
) -> dict[str, Any]:
    try:
        problems = sorted(Draft7Validator(schema).iter_errors(arguments), key=str)
    except Exception:  # a server's schema jsonschema cannot use: call without checking
        problems = []
    if problems:
        raise ToolError(f"Tool '{name}' got invalid arguments: {problems[0].message[:200]}")
    if ctx.call_remote is None:
        raise ToolError(f"Tool '{name}' cannot be called: no tool server client is configured.")
    return ctx.call_remote(name, arguments)
