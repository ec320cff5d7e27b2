"""Preconditions: the domain side of If-Match, over the member use cases' fake store."""

from __future__ import annotations

import pytest

from domain.kernel import PreconditionFailed, Role
from domain.kernel.preconditions import check
from domain.members import Definition, Members
from tests.unit.conftest import actor

AUTHOR = actor(Role.AUTHOR)


def test_no_precondition_always_holds():
    check(None, None)
    check(None, "anything")


def test_a_precondition_that_does_not_hold_fails():
    with pytest.raises(PreconditionFailed):
        check(lambda current: current == "seen", "changed")
    with pytest.raises(PreconditionFailed):
        check(lambda current: True if current is not None else False, None)


def test_a_failed_precondition_changes_nothing(store, clock):
    members = Members(store, clock)
    crew = members.create_crew(AUTHOR, "Crew")
    member = members.create_member(
        AUTHOR, crew_id=crew.id, name="M", definition=Definition(objective="First.")
    )
    with pytest.raises(PreconditionFailed):
        members.replace_member_draft(
            AUTHOR, member.id, Definition(objective="Second."), if_match=lambda _: False
        )
    assert members.get_member_draft(AUTHOR, member.id).definition.objective == "First."
    seen = members.get_member_draft(AUTHOR, member.id)
    edited = members.replace_member_draft(
        AUTHOR, member.id, Definition(objective="Second."), if_match=lambda now: now == seen
    )
    assert edited.definition.objective == "Second."
