"""Derive member drafts with an OpenAI-compatible chat-completions model (structured output).

The model is asked for one JSON object matching the definition schema; its answer is validated,
and an unusable answer is retried once with the validation error, then rejected with
``ModelUnusable``. Nothing is stored by this module.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from jsonschema import Draft7Validator

from domain.authoring import Derivation, ModelUnusable
from domain.kernel import RuleViolation
from domain.members import Definition, check_definition

_TOOL = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "effect_class"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"},
        "effect_class": {"enum": ["internal", "external_read", "external_write", "spend"]},
        "whitelisted": {"type": "boolean"},
        "description": {"type": "string", "maxLength": 500},
    },
}
DRAFT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "reply", "definition"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "reply": {"type": "string", "minLength": 1, "maxLength": 4000},
        "definition": {
            "type": "object",
            "additionalProperties": False,
            "required": ["objective"],
            "properties": {
                "objective": {"type": "string", "minLength": 1, "maxLength": 2000},
                "instructions": {"type": "string", "maxLength": 20000},
                "rules": {
                    "type": "array",
                    "maxItems": 50,
                    "items": {"type": "string", "minLength": 1, "maxLength": 1000},
                },
                "rigidity": {"enum": ["strict", "guided", "adaptive", "autonomous"]},
                "tools": {"type": "array", "maxItems": 32, "items": _TOOL},
            },
        },
    },
}

_SYSTEM = (
    "You turn a conversation into the complete definition of an AI crew member. Answer with "
    "one JSON object only, matching this JSON Schema: "
    + json.dumps(DRAFT_SCHEMA)
    + ". Built-in tools: http_get (external_read), http_post (external_write), notes_read and "
    "notes_write (internal). Re-derive the whole definition from the whole conversation."
)


class ChatCompletionsDeriver:
    def __init__(self, base_url: str, api_key: str, model: str, timeout_seconds: float) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._model = model
        self._timeout = timeout_seconds

    def derive(self, conversation: list[str], base: Definition | None) -> Derivation:
        messages: list[dict[str, Any]] = [{"role": "system", "content": _SYSTEM}]
        if base is not None:
            messages.append(
                {"role": "system", "content": "Current definition: " + json.dumps(base.to_json())}
            )
        messages += [{"role": "user", "content": text} for text in conversation]
        problem = ""
        for _attempt in range(2):
            if problem:
                messages.append(
                    {
                        "role": "user",
                        "content": f"Your answer was unusable ({problem}). "
                        "Answer again with the JSON object only.",
                    }
                )
            content = self._ask(messages)
            try:
                data = json.loads(content)
            except json.JSONDecodeError:
                problem = "not valid JSON"
                continue
            errors = sorted(Draft7Validator(DRAFT_SCHEMA).iter_errors(data), key=str)
            if errors:
                problem = errors[0].message[:200]
                continue
            if "\\u0000" in json.dumps(data):  # no store (PostgreSQL text) can hold NUL
                problem = "a NUL character in a string"
                continue
            definition = Definition.from_json(data["definition"])
            try:  # the rules beyond shape (e.g. a built-in tool with the wrong effect class)
                check_definition(definition, "/definition")
            except RuleViolation as exc:
                problem = exc.message[:200]
                continue
            return Derivation(str(data["name"]), definition, str(data["reply"]))
        raise ModelUnusable(f"The model's draft was unusable twice: {problem}.")

    def _ask(self, messages: list[dict[str, Any]]) -> str:
        payload = {
            "model": self._model,
            "messages": messages,
            "response_format": {"type": "json_object"},
        }
        try:
            response = httpx.post(
                self._url, json=payload, headers=self._headers, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            raise ModelUnusable(
                f"The model endpoint could not be reached ({type(exc).__name__})."
            ) from None
        if response.status_code != 200:
            raise ModelUnusable(f"The model endpoint answered HTTP {response.status_code}.")
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ModelUnusable(
                "The model endpoint answered something that is not a chat completion."
            ) from None
        if not isinstance(content, str):
            raise ModelUnusable("The model answered no text.")
        return content
