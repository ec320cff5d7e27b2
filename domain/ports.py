"""What the engine needs from the outside world, as protocols the adapters implement.

The domain calls models and HTTP through these ports only; ``scaicrew.adapters`` holds the
implementations that speak HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class Usage:
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass(frozen=True)
class ModelReply:
    """Either tool calls to make, or the final output object of the run."""

    tool_calls: tuple[ToolCall, ...] = ()
    output: dict[str, Any] | None = field(default=None, hash=False)
    usage: Usage = Usage()


class ModelError(Exception):
    """The model could not answer usefully (timeout, HTTP error, garbage); readable message."""


class ToolError(Exception):
    """A tool call failed; the message is safe to show to the workspace's users."""


class Model(Protocol):
    name: str

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelReply:
        """Answer the conversation ``messages`` given the callable ``tools``.

        :raises ModelError: on any failure.
        """
        ...


class HttpPort(Protocol):
    def get(self, url: str) -> dict[str, Any]:
        """:raises ToolError: not allowed, unreachable, timed out."""
        ...

    def post(self, url: str, body: Any) -> dict[str, Any]:
        """:raises ToolError: not allowed, unreachable, timed out."""
        ...
