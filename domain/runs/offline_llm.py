"""The default model: deterministic, offline, and able to walk every engine path.

Given the conversation, it calls each tool it was given once, in order, then answers. The run
input steers it, so tests and demos can reach every path:

- ``tool_args``: ``{tool name: arguments}`` overrides the default arguments of a call;
  a tool server's tool (``mcp:<server>/<tool>``) otherwise gets the run input's values of the
  properties its input schema names;
- ``output``: an object merged into the final output (e.g. to match a handoff condition);
- ``simulate: "model_error"``: the model fails, as an unreachable endpoint would.

Token usage is a deterministic function of the text it read and wrote.
"""

from __future__ import annotations

import json
from typing import Any

from domain.runs.llm import ModelError, ModelReply, ToolCall, Usage
from domain.tools import default_arguments


def _tokens(value: Any) -> int:
    return max(1, len(json.dumps(value, sort_keys=True)) // 4)


class OfflineLanguageModel:
    """Deterministic and offline: calls each of its tools once, in order, then answers."""

    name = "offline"
    in_process = True  # computes its answer: nothing to wait for

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelReply:
        run_input = _run_input(messages)
        if run_input.get("simulate") == "model_error":
            raise ModelError("The offline model was asked to fail (simulate: model_error).")
        called = [m.get("name") for m in messages if m.get("role") == "tool"]
        tokens_in = _tokens(messages)
        overrides = run_input.get("tool_args")
        overrides = overrides if isinstance(overrides, dict) else {}
        for tool in tools:
            name = tool["function"]["name"]
            if name in called:
                continue
            arguments = overrides.get(name)
            if not isinstance(arguments, dict):
                arguments = default_arguments(name, run_input, tool["function"].get("parameters"))
            call = ToolCall(id=f"call_{len(called) + 1}", name=name, arguments=arguments)
            return ModelReply(tool_calls=(call,), usage=Usage(tokens_in, _tokens(arguments)))
        output: dict[str, Any] = {
            "summary": f"Completed with {len(called)} tool call(s).",
            "tool_calls": len(called),
        }
        extra = run_input.get("output")
        if isinstance(extra, dict):
            output.update(extra)
        return ModelReply(output=output, usage=Usage(tokens_in, _tokens(output)))


def _run_input(messages: list[dict[str, Any]]) -> dict[str, Any]:
    for message in messages:
        if message.get("role") == "user":
            try:
                value = json.loads(message.get("content") or "{}")
            except json.JSONDecodeError:
                return {}
            return value if isinstance(value, dict) else {}
    return {}
