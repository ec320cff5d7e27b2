"""A model behind any OpenAI-compatible chat-completions endpoint, tool calls included."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

import httpx

from domain.runs import ModelError, ModelReply, ToolCall, Usage


class ChatCompletionsModel:
    def __init__(self, base_url: str, api_key: str, model: str, timeout_seconds: float) -> None:
        self.name = model
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout_seconds

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelReply:
        names = WireNames(tool["function"]["name"] for tool in tools)
        payload: dict[str, Any] = {"model": self.name, "messages": names.messages(messages)}
        if tools:
            payload["tools"] = names.tools(tools)
        try:
            response = httpx.post(
                self._url, json=payload, headers=self._headers, timeout=self._timeout
            )
        except httpx.TimeoutException:
            raise ModelError(f"The model endpoint timed out after {self._timeout:g}s.") from None
        except httpx.HTTPError as exc:
            raise ModelError(f"The model endpoint is unreachable ({type(exc).__name__}).") from None
        if response.status_code != 200:
            raise ModelError(f"The model endpoint answered HTTP {response.status_code}.")
        try:
            return _parse(response.json(), names)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise ModelError(
                "The model endpoint answered something that is not a chat completion."
            ) from None


_WIRE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class WireNames:
    """Tool names as chat-completions endpoints accept them (``^[A-Za-z0-9_-]{1,64}$``), and
    back: ``mcp:crm/lookup`` goes out as ``mcp_crm_lookup`` (with a short hash when that is
    taken, too long, or the name was changed), and the model's calls come back by their real
    names. A name the endpoint accepts as it is goes out unchanged."""

    def __init__(self, names: Iterable[str]) -> None:
        self._wire: dict[str, str] = {}
        self._real: dict[str, str] = {}
        for name in names:
            wire = name
            if not _WIRE_NAME.match(name):
                readable = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:55]
                wire = f"{readable}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"
            self._wire[name] = wire
            self._real[wire] = name

    def tools(self, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {**t, "function": {**t["function"], "name": self.wire(t["function"]["name"])}}
            for t in tools
        ]

    def messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The conversation with the names in earlier tool calls as the endpoint saw them."""
        out = []
        for message in messages:
            calls = message.get("tool_calls")
            if calls:
                message = {
                    **message,
                    "tool_calls": [
                        {
                            **c,
                            "function": {**c["function"], "name": self.wire(c["function"]["name"])},
                        }
                        for c in calls
                    ],
                }
            out.append(message)
        return out

    def wire(self, name: str) -> str:
        return self._wire.get(name, name)

    def real(self, wire: str) -> str:
        return self._real.get(wire, wire)


def _parse(body: dict[str, Any], names: WireNames) -> ModelReply:
    message = body["choices"][0]["message"]
    usage_raw = body.get("usage") or {}
    usage = Usage(
        int(usage_raw.get("prompt_tokens", 0)), int(usage_raw.get("completion_tokens", 0))
    )
    calls = []
    for raw in message.get("tool_calls") or []:
        arguments = json.loads(raw["function"].get("arguments") or "{}")
        if not isinstance(arguments, dict):
            raise ValueError("tool arguments must be an object")
        calls.append(
            ToolCall(
                id=str(raw["id"]),
                name=names.real(str(raw["function"]["name"])),
                arguments=arguments,
            )
        )
    if calls:
        return ModelReply(tool_calls=tuple(calls), usage=usage)
    content = message.get("content")
    if not isinstance(content, str):
        raise ValueError("no content and no tool calls")
    try:
        output = json.loads(content)
    except json.JSONDecodeError:
        output = None
    if not isinstance(output, dict):
        output = {"text": content}
    return ModelReply(output=output, usage=usage)
