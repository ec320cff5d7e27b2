"""The member use cases' rules, over an in-memory store: no HTTP, no SQL."""

from __future__ import annotations

import pytest

from domain.kernel import (
    DuplicateName,
    PermissionDenied,
    ReferencedResourceNotFound,
    Role,
    RuleViolation,
)
from domain.members import (
    Definition,
    EffectClass,
    Handoff,
    HandoffCycle,
    Members,
    NoDraftToPublish,
    ToolSpec,
    VersionStatus,
)
from tests.unit.conftest import actor

DEFINITION = Definition(
    objective="Keep notes.", tools=(ToolSpec("notes_write", EffectClass.INTERNAL),)
)
AUTHOR = actor(Role.AUTHOR)


@pytest.fixture
def members(store, clock) -> Members:
    return Members(store, clock)


def member_in_new_crew(members: Members, name: str = "Notes keeper"):
    crew = members.create_crew(AUTHOR, f"Crew of {name}")
    return members.create_member(AUTHOR, crew_id=crew.id, name=name, definition=DEFINITION)


class TestCrews:
    def test_a_crew_is_created_at_the_clocks_time_with_an_audit_entry(self, members, store, clock):
        crew = members.create_crew(AUTHOR, "Ops", "Operations")
        assert (crew.name, crew.created_at) == ("Ops", clock.now())
        assert [e.action for e in store.state.audit] == ["crew.created"]

    def test_a_second_crew_with_the_same_name_is_a_duplicate_and_changes_nothing(
        self, members, store
    ):
        members.create_crew(AUTHOR, "Ops")
        commits = store.commits
        with pytest.raises(DuplicateName):
            members.create_crew(AUTHOR, "Ops")
        assert store.commits == commits
        assert len(store.state.crews) == 1

    def test_a_viewer_cannot_create_a_crew(self, members, store):
        with pytest.raises(PermissionDenied):
            members.create_crew(actor(Role.VIEWER), "Ops")
        assert store.state.crews == {}


class TestCreateMember:
    def test_a_member_starts_with_version_one_as_a_draft(self, members, store):
        member = member_in_new_crew(members)
        assert (member.draft_version_number, member.active_version_id) == (1, None)
        [version] = store.state.versions.values()
        assert (version.number, version.status) == (1, VersionStatus.DRAFT)

    def test_an_unknown_crew_is_named_by_its_pointer_and_nothing_is_written(self, members, store):
        with pytest.raises(ReferencedResourceNotFound) as caught:
            members.create_member(AUTHOR, crew_id="crw_nope", name="X", definition=DEFINITION)
        assert caught.value.pointer == "/crew_id"
        assert store.state.members == {} and store.state.versions == {}

    def test_a_definition_declaring_a_tool_twice_is_refused(self, members):
        crew = members.create_crew(AUTHOR, "Ops")
        twice = Definition(objective="x", tools=DEFINITION.tools * 2)
        with pytest.raises(RuleViolation) as caught:
            members.create_member(AUTHOR, crew_id=crew.id, name="X", definition=twice)
        assert caught.value.rule == "duplicate-tool"

    def test_a_catalog_tool_must_keep_its_effect_class(self, members):
        crew = members.create_crew(AUTHOR, "Ops")
        dishonest = Definition(objective="x", tools=(ToolSpec("http_post", EffectClass.INTERNAL),))
        with pytest.raises(RuleViolation) as caught:
            members.create_member(AUTHOR, crew_id=crew.id, name="X", definition=dishonest)
        assert caught.value.pointer == "/definition/tools/0/effect_class"

    def test_a_tool_server_tool_missing_from_the_catalog_is_refused_naming_it(self, members):
        crew = members.create_crew(AUTHOR, "Ops")
        remote = Definition(objective="x", tools=(ToolSpec("mcp:crm/lookup", EffectClass.SPEND),))
        with pytest.raises(RuleViolation) as caught:
            members.create_member(AUTHOR, crew_id=crew.id, name="X", definition=remote)
        assert caught.value.rule == "unknown-tool"
        assert "'mcp:crm/lookup'" in caught.value.message
        assert caught.value.pointer == "/definition/tools/0/name"


class TestDraftsAndPublishing:
    def test_publishing_freezes_the_draft_and_makes_it_active(self, members, store, clock):
        member = member_in_new_crew(members)
        version = members.publish_member(AUTHOR, member.id)
        assert version.status is VersionStatus.PUBLISHED and version.artifact_hash
        after = members.get_member(AUTHOR, member.id)
        assert (after.active_version_number, after.draft_version_number) == (1, None)
        assert after.identity == f"member:{member.id}"
        published = [e for e in store.state.audit if e.action == "member.published"]
        assert published[0].data["artifact_hash"] == version.artifact_hash
        assert published[0].at == clock.now()

    def test_publishing_without_a_draft_is_refused(self, members):
        member = member_in_new_crew(members)
        members.publish_member(AUTHOR, member.id)
        with pytest.raises(NoDraftToPublish):
            members.publish_member(AUTHOR, member.id)

    def test_editing_a_draft_replaces_it_in_place(self, members, store):
        member = member_in_new_crew(members)
        edited = Definition(objective="Keep better notes.", tools=DEFINITION.tools)
        version = members.replace_member_draft(AUTHOR, member.id, edited)
        assert (version.number, version.definition.objective) == (1, "Keep better notes.")
        assert len(store.state.versions) == 1

    def test_editing_a_published_member_forks_the_next_draft_and_keeps_the_active_one(
        self, members, store
    ):
        member = member_in_new_crew(members)
        members.publish_member(AUTHOR, member.id)
        edited = Definition(objective="Keep better notes.", tools=DEFINITION.tools)
        fork = members.replace_member_draft(AUTHOR, member.id, edited)
        assert (fork.number, fork.status) == (2, VersionStatus.DRAFT)
        after = members.get_member(AUTHOR, member.id)
        assert (after.active_version_number, after.draft_version_number) == (1, 2)
        assert members.get_member_version(AUTHOR, member.id, 1).definition == DEFINITION
        assert "member.draft_forked" in [e.action for e in store.state.audit]


class TestHandoffs:
    def test_a_member_cannot_hand_off_to_itself(self, members):
        member = member_in_new_crew(members)
        with pytest.raises(RuleViolation):
            members.replace_member_handoffs(AUTHOR, member.id, [Handoff(member.id)])

    def test_an_unknown_target_is_named_by_its_pointer(self, members):
        member = member_in_new_crew(members)
        with pytest.raises(ReferencedResourceNotFound) as caught:
            members.replace_member_handoffs(AUTHOR, member.id, [Handoff("mem_nope")])
        assert caught.value.pointer == "/handoffs/0/target_member_id"

    def test_a_handoff_closing_a_cycle_names_the_cycle_and_changes_nothing(self, members, store):
        a, b = member_in_new_crew(members, "A"), member_in_new_crew(members, "B")
        members.replace_member_handoffs(AUTHOR, a.id, [Handoff(b.id)])
        with pytest.raises(HandoffCycle) as caught:
            members.replace_member_handoffs(AUTHOR, b.id, [Handoff(a.id)])
        assert caught.value.cycle == [b.id, a.id, b.id]
        assert members.get_member_handoffs(AUTHOR, b.id).handoffs == ()
        assert members.get_member_handoffs(AUTHOR, a.id).handoffs == (Handoff(b.id),)
