"""The version diff: field by field, tools by name, approvals as the compiler decides them."""

from __future__ import annotations

from domain.members import Definition, EffectClass, Rigidity, ToolSpec, diff_definitions

BASE = Definition(
    objective="Summarise tickets.",
    instructions="Group by product.",
    rules=("Be brief.", "No emails."),
    rigidity=Rigidity.GUIDED,
    tools=(
        ToolSpec("read_queue", EffectClass.EXTERNAL_READ),
        ToolSpec("send_email", EffectClass.EXTERNAL_WRITE),
    ),
)


def test_a_definition_is_identical_to_itself():
    diff = diff_definitions(BASE, BASE)
    assert diff.identical and diff.objective is None and diff.approvals_added == ()


def test_text_rules_and_tools_are_compared_field_by_field():
    after = Definition(
        objective="Summarise tickets.",
        instructions="Group by product and priority.",
        rules=("Be brief.", "Cite ticket ids."),
        rigidity=Rigidity.GUIDED,
        tools=(
            ToolSpec("read_queue", EffectClass.EXTERNAL_READ, description="Reads."),
            ToolSpec("notes_write", EffectClass.INTERNAL),
        ),
    )
    diff = diff_definitions(BASE, after)
    assert not diff.identical
    assert diff.objective is None
    assert diff.instructions is not None and diff.instructions.after.endswith("priority.")
    assert (diff.rules_added, diff.rules_removed) == (("Cite ticket ids.",), ("No emails.",))
    assert [t.name for t in diff.tools_added] == ["notes_write"]
    assert [t.name for t in diff.tools_removed] == ["send_email"]
    assert [c.name for c in diff.tools_changed] == ["read_queue"]
    assert (diff.approvals_added, diff.approvals_removed) == ((), ("send_email",))


def test_a_stricter_rigidity_adds_checkpoints_to_external_reads():
    strict = Definition(**{**BASE.__dict__, "rigidity": Rigidity.STRICT})
    diff = diff_definitions(BASE, strict)
    assert diff.rigidity is not None and (diff.rigidity.before, diff.rigidity.after) == (
        "guided",
        "strict",
    )
    assert diff.approvals_added == ("read_queue",)
