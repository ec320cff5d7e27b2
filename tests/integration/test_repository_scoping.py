"""Every repository read is scoped by workspace: another workspace's rows are invisible."""

from __future__ import annotations

from typing import Any

import pytest

from domain.kernel import Actor, NotFound, PageRequest
from domain.members import Handoff, Members
from domain.use_cases import UseCases
from tests.integration.conftest import DEFINITION


class World:
    def __init__(self, members: Members, actor: Actor) -> None:
        self.actor = actor
        self.crew = members.create_crew(actor, "Support")
        self.member = members.create_member(
            actor, crew_id=self.crew.id, name="Digest", definition=DEFINITION
        )
        self.other = members.create_member(
            actor, crew_id=self.crew.id, name="Triage", definition=DEFINITION
        )
        members.publish_member(actor, self.member.id)
        members.replace_member_handoffs(actor, self.member.id, [Handoff(self.other.id)])


@pytest.fixture
def two_worlds(use_cases: UseCases, make_actor: Any) -> tuple[World, World]:
    return World(use_cases.members, make_actor()), World(use_cases.members, make_actor())


class TestRepositoryScoping:
    def test_a_crew_is_found_only_in_its_own_workspace(self, database, two_worlds):
        a, b = two_worlds
        with database() as tx:
            assert tx.members.get_crew(a.actor.workspace_id, a.crew.id) is not None
            assert tx.members.get_crew(b.actor.workspace_id, a.crew.id) is None

    def test_crew_lists_hold_only_the_workspace_crews(self, database, two_worlds):
        a, b = two_worlds
        with database() as tx:
            listed = tx.members.list_crews(b.actor.workspace_id, None, 50, None)
        assert [c.id for c in listed] == [b.crew.id]

    def test_a_member_and_its_versions_are_found_only_in_their_workspace(
        self, database, two_worlds
    ):
        a, b = two_worlds
        with database() as tx:
            assert tx.members.get_member(b.actor.workspace_id, a.member.id) is None
            assert tx.members.get_version(b.actor.workspace_id, a.member.id, 1) is None
            assert tx.members.list_versions(b.actor.workspace_id, a.member.id, None, 50) == []
            mine = tx.members.list_versions(a.actor.workspace_id, a.member.id, None, 50)
            assert [v.number for v in mine] == [1]
            assert tx.members.get_version(a.actor.workspace_id, a.member.id, 1) is not None

    def test_member_lists_hold_only_the_workspace_members(self, database, two_worlds):
        a, b = two_worlds
        with database() as tx:
            listed = tx.members.list_members(b.actor.workspace_id, None, 50)
            by_crew = tx.members.list_members(b.actor.workspace_id, None, 50, crew_id=a.crew.id)
        assert {m.id for m in listed} == {b.member.id, b.other.id}
        assert by_crew == []
        with database() as tx:
            own = tx.members.list_members(b.actor.workspace_id, None, 50, crew_id=b.crew.id)
        assert {m.id for m in own} == {b.member.id, b.other.id}

    def test_existing_member_ids_ignores_ids_of_other_workspaces(self, database, two_worlds):
        a, b = two_worlds
        with database() as tx:
            found = tx.members.existing_member_ids(b.actor.workspace_id, [a.member.id, b.member.id])
        assert found == {b.member.id}

    def test_handoffs_and_the_handoff_graph_are_per_workspace(self, database, two_worlds):
        a, b = two_worlds
        with database() as tx:
            assert tx.members.get_handoffs(b.actor.workspace_id, a.member.id) == []
            assert tx.members.get_handoffs(a.actor.workspace_id, a.member.id) == [
                Handoff(a.other.id)
            ]
            assert tx.members.handoff_graph(b.actor.workspace_id) == {b.member.id: [b.other.id]}

    def test_audit_entries_are_per_workspace(self, database, two_worlds):
        a, b = two_worlds
        with database() as tx:
            assert tx.audit.entries(b.actor.workspace_id, a.member.id) == []
            assert tx.audit.entries(a.actor.workspace_id, a.member.id) != []


class TestUseCasesAnswerNotFoundAcrossWorkspaces:
    def test_reading_another_workspaces_member_is_not_found(self, use_cases, two_worlds):
        a, b = two_worlds
        members = use_cases.members
        with pytest.raises(NotFound):
            members.get_member(b.actor, a.member.id)
        with pytest.raises(NotFound):
            members.publish_member(b.actor, a.member.id)
        assert members.get_member(a.actor, a.member.id).id == a.member.id

    def test_listing_pages_only_show_the_callers_workspace(self, use_cases, two_worlds):
        a, b = two_worlds
        page = use_cases.members.list_members(b.actor, PageRequest(limit=50))
        assert {m.id for m in page.items} == {b.member.id, b.other.id}
