"""What the built-in tools need from the outside world."""

from __future__ import annotations

from typing import Any, Protocol

from domain.tools.model import RemoteTool


class ToolError(Exception):
    """A tool call failed; the message is safe to show to the workspace's users."""


class HttpPort(Protocol):
    def get(self, url: str, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """:raises ToolError: malformed, not allowed, unreachable, timed out."""
        ...

    def post(self, url: str, body: Any, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """:raises ToolError: malformed, not allowed, unreachable, timed out."""
        ...


class ToolServerError(Exception):
    """A tool server could not be reached or answered garbage; the message names the problem
    (never a header value) and is safe to show."""


class ToolServerPort(Protocol):
    """A client of tool servers speaking the Model Context Protocol (streamable HTTP)."""

    def list_tools(
        self, url: str, headers: dict[str, str], timeout_seconds: float
    ) -> list[RemoteTool]:
        """Every tool the server lists. :raises ToolServerError:"""
        ...

    def call_tool(
        self,
        url: str,
        headers: dict[str, str],
        name: str,
        arguments: dict[str, Any],
        timeout_seconds: float,
    ) -> dict[str, Any]:
        """Call tool ``name``; its result as JSON (``content``, ``structured_content``).

        :raises ToolError: the tool answered an error (with the server's message), the
            server is unreachable, or the call outlasted ``timeout_seconds``.
        """
        ...
