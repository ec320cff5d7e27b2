"""The compiler: a pure, deterministic function from a definition to a program."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from domain.members import Definition, EffectClass, Rigidity, ToolSpec
from domain.members.compiler import PROGRAM_FORMAT, compile_definition, needs_approval

ROOT = Path(__file__).resolve().parents[3]


def _definition(**overrides: object) -> Definition:
    values: dict[str, object] = {
        "objective": "Summarise new support tickets every morning — für alle Teams.",
        "instructions": "Read the queue, group by product, write a short summary.",
        "rules": ("Never email customers directly.", "Keep it under 200 words."),
        "rigidity": Rigidity.GUIDED,
        "tools": (
            ToolSpec("read_queue", EffectClass.EXTERNAL_READ, description="Reads tickets."),
            ToolSpec("send_email", EffectClass.EXTERNAL_WRITE),
            ToolSpec("buy_credits", EffectClass.SPEND, whitelisted=True),
            ToolSpec("note", EffectClass.INTERNAL),
        ),
    }
    values.update(overrides)
    return Definition(**values)  # type: ignore[arg-type]


class TestDeterminism:
    def test_the_same_definition_compiles_to_byte_identical_canonical_bytes(self):
        first = compile_definition(_definition())
        second = compile_definition(_definition())
        assert first.canonical == second.canonical
        assert first.hash == second.hash

    def test_a_definition_rebuilt_from_its_json_form_compiles_to_the_same_artifact(self):
        original = _definition()
        rebuilt = Definition.from_json(json.loads(json.dumps(original.to_json())))
        assert compile_definition(rebuilt).canonical == compile_definition(original).canonical

    def test_the_hash_is_sha256_of_the_canonical_bytes(self):
        artifact = compile_definition(_definition())
        assert artifact.hash == "sha256:" + hashlib.sha256(artifact.canonical).hexdigest()

    def test_the_canonical_bytes_are_compact_sorted_utf8_json_of_the_program(self):
        artifact = compile_definition(_definition())
        expected = json.dumps(
            artifact.program, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
        assert artifact.canonical == expected
        assert "für".encode() in artifact.canonical
        assert json.loads(artifact.canonical) == artifact.program

    def test_a_pinned_input_schema_is_in_the_tool_entry_and_the_hash(self):
        definition = Definition(
            objective="x", tools=(ToolSpec("mcp:crm/lookup", EffectClass.EXTERNAL_READ),)
        )
        plain = compile_definition(definition)
        schema: dict[str, object] = {"type": "object", "required": ["email"]}
        pinned = compile_definition(definition, {"mcp:crm/lookup": schema})
        [tool] = pinned.program["tools"]  # type: ignore[misc]
        assert tool["input_schema"] == schema
        assert pinned.hash != plain.hash
        changed = compile_definition(definition, {"mcp:crm/lookup": {"type": "object"}})
        assert changed.hash != pinned.hash

    def test_a_different_definition_gives_a_different_hash(self):
        base = compile_definition(_definition())
        changed = compile_definition(_definition(objective="Something else entirely."))
        assert changed.hash != base.hash

    def test_a_separate_interpreter_with_another_hash_seed_produces_the_same_hash(self):
        script = (
            "from tests.unit.members.test_compiler import _definition\n"
            "from domain.members import compile_definition\n"
            "print(compile_definition(_definition()).hash)\n"
        )
        env = {**os.environ, "PYTHONHASHSEED": "12345"}
        out = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == compile_definition(_definition()).hash


class TestProgramShape:
    def test_the_program_names_its_format_and_keeps_the_tool_order(self):
        program = compile_definition(_definition()).program
        assert program["format"] == PROGRAM_FORMAT
        assert [t["name"] for t in program["tools"]] == [  # type: ignore[index, union-attr]
            "read_queue",
            "send_email",
            "buy_credits",
            "note",
        ]

    def test_each_gated_tool_is_marked_with_a_checkpoint_and_listed_in_order(self):
        program = compile_definition(_definition(rigidity=Rigidity.STRICT)).program
        marked = {t["name"]: t["checkpoint"] for t in program["tools"]}  # type: ignore[index, union-attr]
        assert marked == {
            "read_queue": True,
            "send_email": True,
            "buy_credits": False,
            "note": False,
        }
        assert program["checkpoints"] == ["read_queue", "send_email"]

    def test_the_system_prompt_states_objective_rules_and_checkpoints(self):
        prompt = compile_definition(_definition()).program["system_prompt"]
        assert isinstance(prompt, str)
        assert prompt.startswith("Objective: Summarise new support tickets")
        assert "- Never email customers directly." in prompt
        assert "send_email" in prompt.split("approval")[-1]

    def test_a_definition_without_gated_tools_has_no_checkpoints(self):
        program = compile_definition(
            _definition(tools=(ToolSpec("note", EffectClass.INTERNAL),))
        ).program
        assert program["checkpoints"] == []
        assert "approval" not in str(program["system_prompt"])


ALL_RIGIDITIES = list(Rigidity)

# (effect class, whitelisted) -> the rigidities under which the tool needs approval.
APPROVAL_TABLE: dict[tuple[EffectClass, bool], set[Rigidity]] = {
    (EffectClass.INTERNAL, False): set(),
    (EffectClass.INTERNAL, True): set(),
    (EffectClass.EXTERNAL_READ, False): {Rigidity.STRICT},
    (EffectClass.EXTERNAL_READ, True): set(),
    (EffectClass.EXTERNAL_WRITE, False): set(ALL_RIGIDITIES),
    (EffectClass.EXTERNAL_WRITE, True): set(),
    (EffectClass.SPEND, False): set(ALL_RIGIDITIES),
    (EffectClass.SPEND, True): set(),
}


class TestApprovalRule:
    def test_the_table_covers_every_effect_class_and_whitelist_flag(self):
        assert set(APPROVAL_TABLE) == {(e, w) for e in EffectClass for w in (False, True)}

    @pytest.mark.parametrize("rigidity", ALL_RIGIDITIES, ids=lambda r: r.value)
    @pytest.mark.parametrize(
        ("effect", "whitelisted"),
        list(APPROVAL_TABLE),
        ids=lambda v: v.value if isinstance(v, EffectClass) else ("whitelisted" if v else "plain"),
    )
    def test_needs_approval_follows_the_rigidity_by_effect_class_table(
        self, effect, whitelisted, rigidity
    ):
        tool = ToolSpec("tool", effect, whitelisted=whitelisted)
        expected = rigidity in APPROVAL_TABLE[(effect, whitelisted)]
        assert needs_approval(tool, rigidity) is expected
        program = compile_definition(Definition("Do it.", rigidity=rigidity, tools=(tool,))).program
        assert program["checkpoints"] == (["tool"] if expected else [])

    @pytest.mark.parametrize(
        "rigidity", [r for r in Rigidity if r is not Rigidity.STRICT], ids=lambda r: r.value
    )
    def test_external_read_is_not_gated_outside_strict(self, rigidity):
        assert not needs_approval(ToolSpec("read", EffectClass.EXTERNAL_READ), rigidity)

    def test_external_read_is_gated_under_strict(self):
        assert needs_approval(ToolSpec("read", EffectClass.EXTERNAL_READ), Rigidity.STRICT)
