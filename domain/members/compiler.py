"""Compile a member definition into its executable program.

Compilation is a pure function of the definition: the same definition always yields
byte-identical artifact bytes and therefore the same hash. Nothing here reads a clock, an id
generator or the environment.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from domain.members.model import Definition, Rigidity, ToolSpec
from domain.tools import EffectClass

PROGRAM_FORMAT = "scaicrew.program/1"


@dataclass(frozen=True)
class Artifact:
    """A compiled program, its canonical bytes and their hash."""

    program: dict[str, object]
    canonical: bytes
    hash: str


def needs_approval(tool: ToolSpec, rigidity: Rigidity) -> bool:
    """Whether calling ``tool`` under ``rigidity`` pauses the run for a human approval.

    ``external_write`` and ``spend`` always do unless whitelisted; ``internal`` never does;
    ``external_read`` does under ``strict`` only (unless whitelisted).
    """
    if tool.effect_class is EffectClass.INTERNAL:
        return False
    if tool.whitelisted:
        return False
    if tool.effect_class is EffectClass.EXTERNAL_READ:
        return rigidity is Rigidity.STRICT
    return True


_RIGIDITY_GUIDANCE = {
    Rigidity.STRICT: "Follow the instructions exactly. Do not improvise steps.",
    Rigidity.GUIDED: "Follow the instructions; use judgement only where they are silent.",
    Rigidity.ADAPTIVE: "Treat the instructions as a plan; adapt steps when the situation needs it.",
    Rigidity.AUTONOMOUS: "Pursue the objective by whatever steps work, within the rules.",
}


def _system_prompt(definition: Definition, checkpoints: list[str]) -> str:
    parts = [f"Objective: {definition.objective}"]
    if definition.instructions:
        parts.append(f"Instructions:\n{definition.instructions}")
    if definition.rules:
        parts.append("Rules:\n" + "\n".join(f"- {rule}" for rule in definition.rules))
    parts.append(
        f"Working style ({definition.rigidity.value}): {_RIGIDITY_GUIDANCE[definition.rigidity]}"
    )
    if checkpoints:
        parts.append(
            "These tools pause for human approval before they run: " + ", ".join(checkpoints)
        )
    return "\n\n".join(parts)


def compile_definition(
    definition: Definition, pinned: Mapping[str, Mapping[str, object]] | None = None
) -> Artifact:
    """Compile ``definition`` into a program; deterministic and side-effect free.

    ``pinned``: the input schemas of tool server tools, by tool name, as the catalog had them
    at publish; each is pinned in its tool's entry (so the artifact hash covers it).
    """
    tools = []
    checkpoints = []
    for tool in definition.tools:
        gated = needs_approval(tool, definition.rigidity)
        if gated:
            checkpoints.append(tool.name)
        entry: dict[str, object] = {
            "name": tool.name,
            "effect_class": tool.effect_class.value,
            "whitelisted": tool.whitelisted,
            "description": tool.description,
            "checkpoint": gated,
        }
        if pinned is not None and tool.name in pinned:
            entry["input_schema"] = dict(pinned[tool.name])
        tools.append(entry)
    program: dict[str, object] = {
        "format": PROGRAM_FORMAT,
        "system_prompt": _system_prompt(definition, checkpoints),
        "rigidity": definition.rigidity.value,
        "tools": tools,
        "checkpoints": checkpoints,
    }
    if definition.input_schema is not None:
        program["input_schema"] = definition.input_schema
    for key, value in (
        ("max_run_seconds", definition.max_run_seconds),
        ("approval_timeout_seconds", definition.approval_timeout_seconds),
        ("on_approval_timeout", definition.on_approval_timeout),
    ):
        if value is not None:  # absent: the deployment's defaults when the run runs
            program[key] = value
    canonical = json.dumps(
        program, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    return Artifact(program, canonical, "sha256:" + hashlib.sha256(canonical).hexdigest())
