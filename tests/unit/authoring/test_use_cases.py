"""Authoring turns over an in-memory store: the first turn creates the member, every turn
re-derives the whole draft, and a turn that raced another is refused, not merged."""

from __future__ import annotations

import pytest

from domain.authoring import Authoring, ConcurrentTurn, Derivation, OfflineDeriver
from domain.kernel import Role
from domain.members import Definition, Members
from tests.unit.conftest import actor

AUTHOR = actor(Role.AUTHOR)


class InterruptingDeriver:
    """Derives like the offline deriver, but the first time it is asked, another turn of the
    same session is saved meanwhile (as a second browser tab would)."""

    def __init__(self) -> None:
        self.authoring: Authoring | None = None
        self.session_id = ""
        self._interrupted = False

    def derive(self, conversation: list[str], base: Definition | None) -> Derivation:
        if not self._interrupted and self.authoring is not None:
            self._interrupted = True
            self.authoring.take_authoring_turn(AUTHOR, self.session_id, "Meanwhile, elsewhere.")
        return OfflineDeriver().derive(conversation, base)


@pytest.fixture
def crew_id(store, clock) -> str:
    return Members(store, clock).create_crew(AUTHOR, "Authors").id


class TestTurns:
    def test_the_first_turn_creates_the_member_with_the_derived_draft(self, store, clock, crew_id):
        authoring = Authoring(store, clock, OfflineDeriver())
        session = authoring.create_authoring_session(AUTHOR, crew_id)
        result = authoring.take_authoring_turn(
            AUTHOR, session.id, "Every morning fetch our status page and keep a note of it."
        )
        member_id = result.session.member_id
        assert member_id is not None
        member = Members(store, clock).get_member(AUTHOR, member_id)
        draft = Members(store, clock).get_member_draft(AUTHOR, member.id)
        assert draft.definition == result.definition
        assert [m["role"] for m in result.session.messages] == ["user", "assistant"]

    def test_a_turn_that_raced_another_is_refused_and_saves_nothing(self, store, clock, crew_id):
        deriver = InterruptingDeriver()
        authoring = Authoring(store, clock, deriver)
        session = authoring.create_authoring_session(AUTHOR, crew_id)
        deriver.authoring, deriver.session_id = authoring, session.id
        with pytest.raises(ConcurrentTurn):
            authoring.take_authoring_turn(AUTHOR, session.id, "Keep notes of every ticket.")
        saved = authoring.get_authoring_session(AUTHOR, session.id)
        assert [m["content"] for m in saved.messages if m["role"] == "user"] == [
            "Meanwhile, elsewhere."
        ]
