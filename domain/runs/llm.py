"""The language model a run talks to, as a port: the adapters speak to real endpoints, and
``offline_llm`` is the deterministic default."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ToolCall:
    """One tool call a model asked for (kept in the run's queue until it is done)."""

    id: str
    name: str
    arguments: dict[str, Any] = field(hash=False)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ToolCall:
        return cls(str(data["id"]), str(data["name"]), dict(data["arguments"]))


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


class LanguageModel(Protocol):
    """A model that answers a conversation. One may say ``in_process = True`` when it answers
    without waiting on anything outside the process (the offline model): a dispatcher then
    keeps its turn through the call (``DispatchTurns``)."""

    name: str

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelReply:
        """Answer the conversation ``messages`` given the callable ``tools``.

        :raises ModelError: on any failure.
        """
        ...


def answers_in_process(model: LanguageModel) -> bool:
    """Whether ``model`` answers without waiting on anything outside the process; one that
    does not say is taken to wait."""
    return bool(getattr(model, "in_process", False))
