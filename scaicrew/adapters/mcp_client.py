"""The MCP tool server port over the official ``mcp`` SDK (streamable HTTP transport).

Each operation opens its own connection (``anyio.run`` on the calling thread: handlers and run
workers are threads without an event loop) under one total deadline, and closes it. Errors
become ``ToolServerError``/``ToolError`` messages that name the problem; any header value a
message might carry (a server echoing a credential) is blanked first.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from domain.tools import RemoteTool, ToolError, ToolServerError

T = TypeVar("T")

_MAX_PAGES = 20
_MAX_TOOLS = 500
_MESSAGE_LIMIT = 500


class McpToolServers:
    """A ``domain.tools.ToolServerPort``: lists and calls the tools of MCP servers."""

    def __init__(self, result_max_chars: int) -> None:
        self._result_max_chars = result_max_chars

    def list_tools(
        self, url: str, headers: dict[str, str], timeout_seconds: float
    ) -> list[RemoteTool]:
        async def work(client: Client) -> list[RemoteTool]:
            tools: list[RemoteTool] = []
            cursor: str | None = None
            for _ in range(_MAX_PAGES):
                page = await client.list_tools(cursor=cursor)
                for tool in page.tools:
                    schema = tool.input_schema if isinstance(tool.input_schema, dict) else {}
                    tools.append(RemoteTool(tool.name, tool.description or "", dict(schema)))
                cursor = page.next_cursor
                if cursor is None or len(tools) >= _MAX_TOOLS:
                    break
            return tools[:_MAX_TOOLS]

        try:
            return self._run(url, headers, timeout_seconds, work)
        except _Failure as failure:
            raise ToolServerError(failure.message) from None

    def call_tool(
        self,
        url: str,
        headers: dict[str, str],
        name: str,
        arguments: dict[str, Any],
        timeout_seconds: float,
    ) -> dict[str, Any]:
        async def work(client: Client) -> Any:
            return await client.call_tool(name, arguments)

        try:
            result = self._run(url, headers, timeout_seconds, work)
        except _Failure as failure:
            raise ToolError(f"Tool server call '{name}' failed: {failure.message}") from None
        body = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        content = body.get("content") or []
        if result.is_error:
            texts = [c.get("text", "") for c in content if isinstance(c, dict)]
            message = _scrub(" ".join(t for t in texts if t) or "no message", headers)
            raise ToolError(f"Tool '{name}' failed: {message[:_MESSAGE_LIMIT]}")
        answer: dict[str, Any] = {"content": content}
        structured = body.get("structuredContent")
        if structured is not None:
            answer["structured_content"] = structured
        text = json.dumps(answer, sort_keys=True, default=str)
        if len(text) > self._result_max_chars:
            return {"truncated": True, "text": text[: self._result_max_chars]}
        return answer

    def _run(
        self,
        url: str,
        headers: dict[str, str],
        timeout_seconds: float,
        work: Callable[[Client], Awaitable[T]],
    ) -> T:
        async def main() -> T:
            with anyio.fail_after(timeout_seconds):
                async with httpx2.AsyncClient(
                    headers=headers, timeout=timeout_seconds, follow_redirects=False
                ) as http:
                    transport = streamable_http_client(url, http_client=http)
                    async with Client(transport, read_timeout_seconds=timeout_seconds) as client:
                        return await work(client)

        try:
            return anyio.run(main)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            raise _Failure(_scrub(_describe(exc, timeout_seconds), headers)) from None


class _Failure(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message[:_MESSAGE_LIMIT]


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException, timeout_seconds: float) -> str:
    leaf = _leaf(exc)
    if isinstance(leaf, TimeoutError | httpx2.TimeoutException):
        return f"no answer within {timeout_seconds:g}s."
    if isinstance(leaf, httpx2.ConnectError):
        return "the server is unreachable (connection failed)."
    if isinstance(leaf, MCPError):
        return f"the server answered an MCP error: {leaf.error.message}"
    if isinstance(leaf, ValidationError):
        return "the server's answer is not valid MCP."
    if isinstance(leaf, httpx2.HTTPError):
        return f"HTTP failure ({type(leaf).__name__})."
    return f"the server's answer is not usable MCP ({type(leaf).__name__})."


def _scrub(message: str, headers: dict[str, str]) -> str:
    for value in headers.values():
        if value:
            message = message.replace(value, "***")
    return message
