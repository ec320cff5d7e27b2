"""Domain model rules: handoff conditions, roles and role gating."""

from __future__ import annotations

import pytest

from domain.kernel import Actor, ActorKind, PermissionDenied, Role
from domain.members import Definition, HandoffCondition


class TestHandoffConditionMatches:
    def test_an_equal_string_field_matches(self):
        assert HandoffCondition("kind", "bug").matches({"kind": "bug", "other": 1})

    def test_a_different_value_does_not_match(self):
        assert not HandoffCondition("kind", "bug").matches({"kind": "feature"})

    def test_true_does_not_match_one(self):
        assert not HandoffCondition("flag", 1).matches({"flag": True})
        assert not HandoffCondition("flag", True).matches({"flag": 1})

    def test_false_does_not_match_zero(self):
        assert not HandoffCondition("flag", 0).matches({"flag": False})
        assert not HandoffCondition("flag", False).matches({"flag": 0})

    def test_booleans_match_booleans(self):
        assert HandoffCondition("flag", True).matches({"flag": True})
        assert not HandoffCondition("flag", True).matches({"flag": False})

    def test_an_integer_matches_the_equal_float(self):
        assert HandoffCondition("score", 3).matches({"score": 3.0})

    def test_a_number_does_not_match_its_string_form(self):
        assert not HandoffCondition("score", 3).matches({"score": "3"})

    def test_a_missing_field_does_not_match(self):
        assert not HandoffCondition("kind", "bug").matches({"type": "bug"})

    @pytest.mark.parametrize("output", [None, "bug", ["kind", "bug"], 3])
    def test_an_output_that_is_not_an_object_does_not_match(self, output):
        assert not HandoffCondition("kind", "bug").matches(output)


class TestRoles:
    def test_roles_ascend_from_viewer_to_admin(self):
        assert Role.VIEWER < Role.OPERATOR < Role.AUTHOR < Role.ADMIN

    def test_a_role_is_parsed_from_its_label_case_insensitively(self):
        assert Role.parse("author") is Role.AUTHOR
        assert Role.parse("ADMIN") is Role.ADMIN

    def test_an_unknown_role_label_is_rejected(self):
        with pytest.raises(ValueError, match="owner"):
            Role.parse("owner")

    def test_a_user_below_the_required_role_is_denied(self):
        actor = Actor("wsp_x", "someone", Role.OPERATOR)
        with pytest.raises(PermissionDenied) as caught:
            actor.require(Role.AUTHOR)
        assert caught.value.details() == {"required_role": "author", "role": "operator"}

    def test_a_user_at_or_above_the_required_role_passes(self):
        assert Actor("wsp_x", "someone", Role.AUTHOR).require(Role.AUTHOR) is None
        assert Actor("wsp_x", "someone", Role.ADMIN).require(Role.AUTHOR) is None

    def test_a_service_actor_is_not_role_gated(self):
        service = Actor("wsp_x", "svc", Role.VIEWER, ActorKind.SERVICE)
        assert service.require(Role.ADMIN) is None
        with pytest.raises(PermissionDenied):
            Actor("wsp_x", "svc", Role.VIEWER, ActorKind.USER).require(Role.ADMIN)


class TestDefinitionJson:
    def test_defaults_are_filled_in_from_a_minimal_json_form(self):
        as_json = Definition.from_json({"objective": "Do it."}).to_json()
        defaults = {
            "objective": "Do it.",
            "instructions": "",
            "rules": [],
            "rigidity": "guided",
            "tools": [],
        }
        assert {k: as_json[k] for k in defaults} == defaults
