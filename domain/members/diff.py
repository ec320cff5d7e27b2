"""What changed between two definitions, field by field (pure: no I/O).

Text fields answer their two values when they differ; rules answer which were added and which
removed; tools answer which were added, removed or changed (by name); approvals answer which
tools gained or lost an approval checkpoint, as the compiler decides them from rigidity and
effect class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.members.compiler import needs_approval
from domain.members.model import Definition, ToolSpec


@dataclass(frozen=True)
class Change:
    before: Any = field(hash=False)
    after: Any = field(hash=False)


@dataclass(frozen=True)
class ToolChange:
    name: str
    before: ToolSpec
    after: ToolSpec


@dataclass(frozen=True)
class DefinitionDiff:
    objective: Change | None
    instructions: Change | None
    rigidity: Change | None
    input_schema: Change | None
    rules_added: tuple[str, ...]
    rules_removed: tuple[str, ...]
    tools_added: tuple[ToolSpec, ...]
    tools_removed: tuple[ToolSpec, ...]
    tools_changed: tuple[ToolChange, ...]
    approvals_added: tuple[str, ...]
    approvals_removed: tuple[str, ...]

    @property
    def identical(self) -> bool:
        return not any(
            (
                self.objective,
                self.instructions,
                self.rigidity,
                self.input_schema,
                self.rules_added,
                self.rules_removed,
                self.tools_added,
                self.tools_removed,
                self.tools_changed,
                self.approvals_added,
                self.approvals_removed,
            )
        )


def _change(before: Any, after: Any) -> Change | None:
    return None if before == after else Change(before, after)


def _gated(definition: Definition) -> list[str]:
    return [t.name for t in definition.tools if needs_approval(t, definition.rigidity)]


def diff_definitions(before: Definition, after: Definition) -> DefinitionDiff:
    """What changed from ``before`` to ``after`` (lists keep the order they have in each)."""
    old_tools = {t.name: t for t in before.tools}
    new_tools = {t.name: t for t in after.tools}
    old_gated, new_gated = _gated(before), _gated(after)
    return DefinitionDiff(
        objective=_change(before.objective, after.objective),
        instructions=_change(before.instructions, after.instructions),
        rigidity=_change(before.rigidity.value, after.rigidity.value),
        input_schema=_change(before.input_schema, after.input_schema),
        rules_added=tuple(r for r in after.rules if r not in before.rules),
        rules_removed=tuple(r for r in before.rules if r not in after.rules),
        tools_added=tuple(t for t in after.tools if t.name not in old_tools),
        tools_removed=tuple(t for t in before.tools if t.name not in new_tools),
        tools_changed=tuple(
            ToolChange(t.name, old_tools[t.name], t)
            for t in after.tools
            if t.name in old_tools and old_tools[t.name] != t
        ),
        approvals_added=tuple(n for n in new_gated if n not in old_gated),
        approvals_removed=tuple(n for n in old_gated if n not in new_gated),
    )
