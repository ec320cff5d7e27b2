"""A model behind any OpenAI-compatible chat-completions endpoint, tool calls included."""

from __future__ import annotations

import json
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
        payload: dict[str, Any] = {"model": self.name, "messages": messages}
        if tools:
            payload["tools"] = tools
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
            return _parse(response.json())
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise ModelError(
                "The model endpoint answered something that is not a chat completion."
            ) from None


def _parse(body: dict[str, Any]) -> ModelReply:
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
            ToolCall(id=str(raw["id"]), name=str(raw["function"]["name"]), arguments=arguments)
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
