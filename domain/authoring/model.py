"""Authoring sessions and what a turn answers: plain, immutable domain objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.members import Definition, needs_approval
from domain.tools import EffectClass

_EFFECT_WORDS = {
    EffectClass.INTERNAL: "only touches this workspace",
    EffectClass.EXTERNAL_READ: "reads from outside systems",
    EffectClass.EXTERNAL_WRITE: "changes things in outside systems",
    EffectClass.SPEND: "spends money",
}


@dataclass(frozen=True)
class AuthoringSession:
    id: str
    workspace_id: str
    crew_id: str
    member_id: str | None
    messages: list[dict[str, Any]] = field(hash=False)
    draft: dict[str, Any] | None = field(hash=False)
    created_by: str
    created_at: datetime
    updated_at: datetime

    def approval_preview(self) -> list[dict[str, Any]]:
        return [] if self.draft is None else approval_preview(Definition.from_json(self.draft))

    def user_messages(self) -> list[str]:
        return [str(m["content"]) for m in self.messages if m["role"] == "user"]


@dataclass(frozen=True)
class TurnResult:
    reply: str
    definition: Definition
    session: AuthoringSession


def approval_preview(definition: Definition) -> list[dict[str, Any]]:
    """Which tools will pause for approval, and why, in plain language."""
    preview = []
    for tool in definition.tools:
        pauses = needs_approval(tool, definition.rigidity)
        what = _EFFECT_WORDS[tool.effect_class]
        if pauses:
            why = f"'{tool.name}' {what}, so each call waits for a person to approve it."
        elif tool.whitelisted and tool.effect_class is not EffectClass.INTERNAL:
            why = f"'{tool.name}' {what} but is whitelisted: it runs without approval."
        else:
            why = (
                f"'{tool.name}' {what}; it runs without approval under {definition.rigidity.value}."
            )
        preview.append(
            {
                "tool": tool.name,
                "effect_class": tool.effect_class.value,
                "pauses_for_approval": pauses,
                "explanation": why,
            }
        )
    return preview
