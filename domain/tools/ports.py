"""What the built-in tools need from the outside world."""

from __future__ import annotations

from typing import Any, Protocol


class ToolError(Exception):
    """A tool call failed; the message is safe to show to the workspace's users."""


class HttpPort(Protocol):
    def get(self, url: str) -> dict[str, Any]:
        """:raises ToolError: not allowed, unreachable, timed out."""
        ...

    def post(self, url: str, body: Any) -> dict[str, Any]:
        """:raises ToolError: not allowed, unreachable, timed out."""
        ...
