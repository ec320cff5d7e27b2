"""Handoff rules: single branch per member, and an acyclic workspace graph."""

from __future__ import annotations

import pytest

from domain.kernel import RuleViolation
from domain.members import Handoff, HandoffCondition, HandoffCycle
from domain.members.handoff_rules import check_acyclic, check_single_branch, find_cycle


def when(field: str, value: object) -> HandoffCondition:
    return HandoffCondition(field, value)  # type: ignore[arg-type]


class TestSingleBranch:
    def test_a_list_of_conditional_handoffs_and_one_unconditional_is_accepted(self):
        accepted = check_single_branch(
            "A",
            [
                Handoff("B", when("kind", "bug")),
                Handoff("C", when("kind", "feature")),
                Handoff("D"),
            ],
        )
        assert accepted is None

    def test_an_empty_list_is_accepted(self):
        assert check_single_branch("A", []) is None

    def test_a_handoff_to_the_member_itself_is_rejected_with_a_pointer(self):
        with pytest.raises(RuleViolation) as caught:
            check_single_branch("A", [Handoff("B", when("x", 1)), Handoff("A", when("x", 2))])
        assert caught.value.rule == "handoff-self"
        assert caught.value.pointer == "/handoffs/1/target_member_id"
        assert caught.value.details() == {"pointer": "/handoffs/1/target_member_id"}

    def test_naming_the_same_target_twice_is_rejected(self):
        with pytest.raises(RuleViolation) as caught:
            check_single_branch("A", [Handoff("B", when("x", 1)), Handoff("B", when("x", 2))])
        assert caught.value.rule == "handoff-duplicate-target"
        assert caught.value.pointer == "/handoffs/1/target_member_id"

    def test_a_second_unconditional_handoff_is_rejected_naming_the_first(self):
        with pytest.raises(RuleViolation) as caught:
            check_single_branch("A", [Handoff("B"), Handoff("C", when("x", 1)), Handoff("D")])
        assert caught.value.rule == "handoff-unconditional"
        assert caught.value.pointer == "/handoffs/2/condition"
        assert "/handoffs/0" in caught.value.message


class TestCycleDetection:
    def test_no_cycle_is_found_in_a_diamond(self):
        graph = {"B": ["D"], "C": ["D"]}
        assert find_cycle(graph, "A", ["B", "C"]) is None

    def test_a_two_member_cycle_is_named_starting_and_ending_with_the_member(self):
        assert find_cycle({"B": ["A"]}, "A", ["B"]) == ["A", "B", "A"]

    def test_a_longer_cycle_is_named_in_full(self):
        graph = {"B": ["C"], "C": ["D"], "D": ["A"], "X": ["B"]}
        assert find_cycle(graph, "A", ["B"]) == ["A", "B", "C", "D", "A"]

    def test_the_cycle_path_is_found_through_branching_members(self):
        graph = {"B": ["E", "C"], "E": ["F"], "C": ["A"]}
        assert find_cycle(graph, "A", ["B"]) == ["A", "B", "C", "A"]

    def test_check_acyclic_points_at_the_entry_that_closes_the_cycle(self):
        graph = {"C": ["D"], "D": ["A"]}
        with pytest.raises(HandoffCycle) as caught:
            check_acyclic(graph, "A", [Handoff("B", when("x", 1)), Handoff("C")])
        assert caught.value.cycle == ["A", "C", "D", "A"]
        assert caught.value.pointer == "/handoffs/1/target_member_id"
        assert caught.value.rule == "handoff-cycle"
        assert caught.value.details() == {
            "pointer": "/handoffs/1/target_member_id",
            "cycle": ["A", "C", "D", "A"],
        }
        assert "A -> C -> D -> A" in caught.value.message

    def test_check_acyclic_accepts_a_chain(self):
        assert check_acyclic({"B": ["C"], "C": ["D"]}, "A", [Handoff("B")]) is None
        assert find_cycle({"B": ["C"], "C": ["D"]}, "A", ["B"]) is None
