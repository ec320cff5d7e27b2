"""Editing, archiving and deleting crews and members (issue 14), over an in-memory store."""

from __future__ import annotations

import pytest

from domain.kernel import (
    DuplicateName,
    NotFound,
    PageRequest,
    PermissionDenied,
    ReferencedResourceNotFound,
    Role,
)
from domain.members import CrewNotEmpty, Definition, Handoff, MemberInUse, Members
from tests.unit.conftest import actor

AUTHOR = actor(Role.AUTHOR)
DEFINITION = Definition(objective="Keep notes.")


@pytest.fixture
def members(store, clock) -> Members:
    return Members(store, clock)


def _member(members: Members, crew_id: str, name: str):
    return members.create_member(AUTHOR, crew_id=crew_id, name=name, definition=DEFINITION)


class TestCrews:
    def test_a_rename_keeps_what_was_not_given_and_moves_updated_at(self, members, clock):
        crew = members.create_crew(AUTHOR, "Support", "First line.")
        clock.advance(60)
        renamed = members.update_crew(AUTHOR, crew.id, name="Help desk")
        assert (renamed.name, renamed.description) == ("Help desk", "First line.")
        assert renamed.updated_at > crew.updated_at
        assert members.get_crew(AUTHOR, crew.id) == renamed

    def test_a_rename_onto_another_crews_name_is_refused(self, members):
        members.create_crew(AUTHOR, "Taken")
        crew = members.create_crew(AUTHOR, "Mine")
        with pytest.raises(DuplicateName):
            members.update_crew(AUTHOR, crew.id, name="Taken")

    def test_a_crew_with_an_archived_member_cannot_be_deleted(self, members):
        crew = members.create_crew(AUTHOR, "Busy")
        member = _member(members, crew.id, "Worker")
        members.archive_member(AUTHOR, member.id)
        with pytest.raises(CrewNotEmpty):
            members.delete_crew(AUTHOR, crew.id)
        members.delete_member(AUTHOR, member.id)
        members.delete_crew(AUTHOR, crew.id)
        with pytest.raises(NotFound):
            members.get_crew(AUTHOR, crew.id)

    def test_an_operator_may_not_edit_crews(self, members):
        crew = members.create_crew(AUTHOR, "Support")
        with pytest.raises(PermissionDenied):
            members.update_crew(actor(Role.OPERATOR), crew.id, name="x")
        with pytest.raises(PermissionDenied):
            members.delete_crew(actor(Role.OPERATOR), crew.id)


class TestMembers:
    def test_a_member_moves_to_another_crew_of_the_workspace_only(self, members):
        first, second = members.create_crew(AUTHOR, "A"), members.create_crew(AUTHOR, "B")
        member = _member(members, first.id, "Worker")
        moved = members.update_member(AUTHOR, member.id, crew_id=second.id)
        assert (moved.crew_id, moved.name) == (second.id, "Worker")
        elsewhere = members.create_crew(actor(Role.AUTHOR, "wsp_other"), "C")
        with pytest.raises(ReferencedResourceNotFound):
            members.update_member(AUTHOR, member.id, crew_id=elsewhere.id)

    def test_a_rename_onto_another_members_name_is_refused(self, members):
        crew = members.create_crew(AUTHOR, "A")
        _member(members, crew.id, "Taken")
        member = _member(members, crew.id, "Mine")
        with pytest.raises(DuplicateName):
            members.update_member(AUTHOR, member.id, name="Taken")
        assert members.update_member(AUTHOR, member.id, name="Mine").name == "Mine"

    def test_archived_members_are_listed_only_when_asked(self, members):
        crew = members.create_crew(AUTHOR, "A")
        kept, archived = _member(members, crew.id, "Kept"), _member(members, crew.id, "Gone")
        members.archive_member(AUTHOR, archived.id)
        page = members.list_members(AUTHOR, _first_page())
        assert [m.id for m in page.items] == [kept.id]
        everything = members.list_members(AUTHOR, _first_page(), include_archived=True)
        assert {m.id for m in everything.items} == {kept.id, archived.id}
        crew_page = members.list_crew_members(AUTHOR, crew.id, _first_page())
        assert [m.id for m in crew_page.items] == [kept.id]

    def test_archive_and_unarchive_are_idempotent_and_audited_once(self, members, store):
        crew = members.create_crew(AUTHOR, "A")
        member = _member(members, crew.id, "Worker")
        assert members.archive_member(AUTHOR, member.id).archived
        assert members.archive_member(AUTHOR, member.id).archived
        assert not members.unarchive_member(AUTHOR, member.id).archived
        assert not members.unarchive_member(AUTHOR, member.id).archived
        actions = [e.action for e in store.state.audit if e.subject_id == member.id]
        assert actions == ["member.created", "member.archived", "member.unarchived"]

    def test_a_published_member_cannot_be_deleted(self, members):
        crew = members.create_crew(AUTHOR, "A")
        member = _member(members, crew.id, "Worker")
        members.publish_member(AUTHOR, member.id)
        with pytest.raises(MemberInUse) as raised:
            members.delete_member(AUTHOR, member.id)
        assert raised.value.reasons == ["it was published"]

    def test_a_handoff_target_cannot_be_deleted_but_its_source_can(self, members):
        crew = members.create_crew(AUTHOR, "A")
        source, target = _member(members, crew.id, "S"), _member(members, crew.id, "T")
        members.replace_member_handoffs(AUTHOR, source.id, [Handoff(target.id)])
        with pytest.raises(MemberInUse):
            members.delete_member(AUTHOR, target.id)
        members.delete_member(AUTHOR, source.id)
        members.delete_member(AUTHOR, target.id)
        with pytest.raises(NotFound):
            members.get_member(AUTHOR, source.id)


def _first_page() -> PageRequest:
    return PageRequest(limit=50, cursor=None)
