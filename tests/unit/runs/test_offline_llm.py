"""The offline model: deterministic, steered by the run input, walks every tool once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain.runs import ModelError, OfflineLanguageModel
from domain.tools import CATALOG, default_arguments, tool_schema

TOOLS = [tool_schema(name, "") for name in ("notes_write", "http_get", "custom_tool")]


def conversation(run_input: Any, *tool_results: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Objective: test."},
        {"role": "user", "content": json.dumps(run_input)},
    ]
    for index, name in enumerate(tool_results, start=1):
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"call_{index}",
                        "type": "function",
                        "function": {"name": name, "arguments": "{}"},
                    }
                ],
            }
        )
        messages.append(
            {"role": "tool", "tool_call_id": f"call_{index}", "name": name, "content": "{}"}
        )
    return messages


class TestOfflineModel:
    def test_it_calls_each_tool_once_in_order_then_answers(self):
        model = OfflineLanguageModel()
        run_input = {"url": "http://example.test/x"}
        first = model.complete(conversation(run_input), TOOLS)
        assert [(c.id, c.name) for c in first.tool_calls] == [("call_1", "notes_write")]
        assert first.output is None
        assert first.tool_calls[0].arguments == {
            "key": "last_input",
            "value": json.dumps(run_input, sort_keys=True),
        }
        second = model.complete(conversation(run_input, "notes_write"), TOOLS)
        assert [(c.id, c.name) for c in second.tool_calls] == [("call_2", "http_get")]
        assert second.tool_calls[0].arguments == {"url": "http://example.test/x"}
        third = model.complete(conversation(run_input, "notes_write", "http_get"), TOOLS)
        assert third.tool_calls[0].name == "custom_tool"
        assert third.tool_calls[0].arguments == {}
        final = model.complete(
            conversation(run_input, "notes_write", "http_get", "custom_tool"), TOOLS
        )
        assert final.tool_calls == ()
        assert final.output == {"summary": "Completed with 3 tool call(s).", "tool_calls": 3}

    def test_tool_args_override_the_default_arguments(self):
        args = {"key": "k", "value": "v"}
        reply = OfflineLanguageModel().complete(
            conversation({"tool_args": {"notes_write": args}}), TOOLS
        )
        assert reply.tool_calls[0].arguments == args

    @pytest.mark.parametrize("bad", [None, "text", ["list"], {"notes_write": "text"}])
    def test_malformed_tool_args_fall_back_to_the_defaults(self, bad):
        reply = OfflineLanguageModel().complete(conversation({"tool_args": bad}), TOOLS)
        assert reply.tool_calls[0].arguments["key"] == "last_input"

    def test_the_output_key_is_merged_into_the_final_answer(self):
        reply = OfflineLanguageModel().complete(
            conversation({"output": {"category": "urgent"}}), []
        )
        assert reply.output == {
            "summary": "Completed with 0 tool call(s).",
            "tool_calls": 0,
            "category": "urgent",
        }
        ignored = OfflineLanguageModel().complete(conversation({"output": "urgent"}), [])
        assert "urgent" not in json.dumps(ignored.output)

    def test_simulate_model_error_fails(self):
        with pytest.raises(ModelError, match="simulate: model_error"):
            OfflineLanguageModel().complete(conversation({"simulate": "model_error"}), TOOLS)

    @pytest.mark.parametrize("content", ["not json", "[1, 2]", None, "42"])
    def test_an_input_that_is_not_an_object_is_treated_as_empty(self, content):
        messages = [{"role": "user", "content": content}]
        reply = OfflineLanguageModel().complete(messages, [])
        assert reply.output == {"summary": "Completed with 0 tool call(s).", "tool_calls": 0}

    def test_it_is_deterministic_and_counts_tokens(self):
        messages = conversation({"a": 1}, "notes_write")
        one, two = (
            OfflineLanguageModel().complete(messages, TOOLS),
            OfflineLanguageModel().complete(messages, TOOLS),
        )
        assert one == two
        assert one.usage.tokens_in >= 1 and one.usage.tokens_out >= 1
        longer = conversation({"a": "x" * 4000}, "notes_write")
        assert OfflineLanguageModel().complete(longer, TOOLS).usage.tokens_in > one.usage.tokens_in


class TestCatalog:
    def test_every_catalog_tool_has_an_object_schema_and_defaults_that_fit_it(self):
        from jsonschema import Draft7Validator

        for name, tool in CATALOG.items():
            Draft7Validator.check_schema(tool.parameters)
            assert tool.parameters["type"] == "object"
            args = default_arguments(name, {"url": "http://x.test/"})
            assert not list(Draft7Validator(tool.parameters).iter_errors(args)), name
            assert tool_schema(name, "")["function"]["parameters"] == tool.parameters

    def test_effect_classes_are_honest(self):
        assert {n: t.effect_class.value for n, t in CATALOG.items()} == {
            "http_get": "external_read",
            "http_post": "external_write",
            "notes_read": "internal",
            "notes_write": "internal",
        }
