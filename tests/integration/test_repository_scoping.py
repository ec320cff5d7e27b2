"""Every repository read is scoped by workspace: another workspace's rows are invisible."""

from __future__ import annotations

from typing import Any

import pytest

from domain import services
from domain.errors import NotFound
from domain.model import Actor, Handoff, PageRequest
from domain.unit_of_work import Database
from tests.integration.conftest import DEFINITION


class World:
    def __init__(self, database: Database, actor: Actor) -> None:
        self.actor = actor
        self.crew = services.create_crew(database, actor, "Support")
        self.member = services.create_member(
            database, actor, crew_id=self.crew.id, name="Digest", definition=DEFINITION
        )
        self.other = services.create_member(
            database, actor, crew_id=self.crew.id, name="Triage", definition=DEFINITION
        )
        services.publish_member(database, actor, self.member.id)
        services.replace_handoffs(database, actor, self.member.id, [Handoff(self.other.id)])


@pytest.fixture
def two_worlds(database: Database, make_actor: Any) -> tuple[World, World]:
    return World(database, make_actor()), World(database, make_actor())


class TestRepositoryScoping:
    def test_a_crew_is_found_only_in_its_own_workspace(self, database, two_worlds):
        a, b = two_worlds
        with database() as tx:
            assert tx.repo.get_crew(a.actor.workspace_id, a.crew.id) is not None
            assert tx.repo.get_crew(b.actor.workspace_id, a.crew.id) is None

    def test_crew_lists_hold_only_the_workspace_crews(self, database, two_worlds):
        a, b = two_worlds
        with database() as tx:
            listed = tx.repo.list_crews(b.actor.workspace_id, None, 50, None)
        assert [c.id for c in listed] == [b.crew.id]

    def test_a_member_and_its_versions_are_found_only_in_their_workspace(
        self, database, two_worlds
    ):
        a, b = two_worlds
        with database() as tx:
            assert tx.repo.get_member(b.actor.workspace_id, a.member.id) is None
            assert tx.repo.get_version(b.actor.workspace_id, a.member.id, 1) is None
            assert tx.repo.list_versions(b.actor.workspace_id, a.member.id, None, 50) == []
            assert tx.repo.get_version(a.actor.workspace_id, a.member.id, 1) is not None

    def test_member_lists_hold_only_the_workspace_members(self, database, two_worlds):
        a, b = two_worlds
        with database() as tx:
            listed = tx.repo.list_members(b.actor.workspace_id, None, 50)
            by_crew = tx.repo.list_members(b.actor.workspace_id, None, 50, crew_id=a.crew.id)
        assert {m.id for m in listed} == {b.member.id, b.other.id}
        assert by_crew == []

    def test_existing_member_ids_ignores_ids_of_other_workspaces(self, database, two_worlds):
        a, b = two_worlds
        with database() as tx:
            found = tx.repo.existing_member_ids(b.actor.workspace_id, [a.member.id, b.member.id])
        assert found == {b.member.id}

    def test_handoffs_and_the_handoff_graph_are_per_workspace(self, database, two_worlds):
        a, b = two_worlds
        with database() as tx:
            assert tx.repo.get_handoffs(b.actor.workspace_id, a.member.id) == []
            assert tx.repo.handoff_graph(b.actor.workspace_id) == {b.member.id: [b.other.id]}

    def test_audit_entries_are_per_workspace(self, database, two_worlds):
        a, b = two_worlds
        with database() as tx:
            assert tx.repo.audit_entries(b.actor.workspace_id, a.member.id) == []
            assert tx.repo.audit_entries(a.actor.workspace_id, a.member.id) != []


class TestServicesAnswerNotFoundAcrossWorkspaces:
    def test_reading_another_workspaces_member_is_not_found(self, database, two_worlds):
        a, b = two_worlds
        with pytest.raises(NotFound):
            services.get_member(database, b.actor, a.member.id)
        with pytest.raises(NotFound):
            services.publish_member(database, b.actor, a.member.id)

    def test_listing_pages_only_show_the_callers_workspace(self, database, two_worlds):
        a, b = two_worlds
        page = services.list_members(database, b.actor, PageRequest(limit=50))
        assert {m.workspace_id for m in page.items} == {b.actor.workspace_id}
