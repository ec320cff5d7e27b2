"""Workspace membership rules over an in-memory store: the last admin stays."""

from __future__ import annotations

from dataclasses import replace

import pytest

from domain.kernel import Actor, ActorKind, PageRequest, PermissionDenied, Role
from domain.workspaces import AlreadyMember, LastAdmin, OwnMembership, Workspaces
from tests.unit.conftest import WORKSPACE, actor

ADMIN = actor(Role.ADMIN)


@pytest.fixture
def workspaces(store, clock) -> Workspaces:
    spaces = Workspaces(store, clock)
    spaces.ensure_member(WORKSPACE, ADMIN.subject, Role.ADMIN, name="Unit")
    return spaces


class TestMemberships:
    def test_the_last_admin_can_be_neither_demoted_nor_removed(self, workspaces):
        with pytest.raises(LastAdmin):
            workspaces.update_workspace_membership(ADMIN, ADMIN.subject, Role.VIEWER)
        with pytest.raises(LastAdmin):
            workspaces.remove_workspace_membership(ADMIN, ADMIN.subject)
        assert workspaces.get_workspace_membership(ADMIN, ADMIN.subject).role is Role.ADMIN

    def test_with_a_second_admin_the_first_may_be_demoted_by_it_not_by_themself(self, workspaces):
        workspaces.add_workspace_membership(ADMIN, "second", Role.ADMIN)
        with pytest.raises(OwnMembership):
            workspaces.update_workspace_membership(ADMIN, ADMIN.subject, Role.VIEWER)
        with pytest.raises(OwnMembership):
            workspaces.remove_workspace_membership(ADMIN, ADMIN.subject)
        second = replace(ADMIN, subject="second")
        demoted = workspaces.update_workspace_membership(second, ADMIN.subject, Role.VIEWER)
        assert demoted.role is Role.VIEWER

    def test_a_subject_is_added_once(self, workspaces, store):
        workspaces.add_workspace_membership(ADMIN, "someone", Role.VIEWER)
        with pytest.raises(AlreadyMember):
            workspaces.add_workspace_membership(ADMIN, "someone", Role.AUTHOR)
        assert workspaces.get_workspace_membership(ADMIN, "someone").role is Role.VIEWER
        actions = [e.action for e in store.state.audit]
        assert actions == ["member.added"]

    def test_only_admins_manage_memberships(self, workspaces):
        with pytest.raises(PermissionDenied):
            workspaces.list_workspace_memberships(actor(Role.AUTHOR), PageRequest())
        listed = workspaces.list_workspace_memberships(ADMIN, PageRequest()).items
        assert [m.subject for m in listed] == [ADMIN.subject]


class TestMyWorkspaces:
    def test_a_service_caller_sees_the_workspace_of_its_credential(self, workspaces):
        service = Actor(WORKSPACE, "svc-ci", Role.ADMIN, ActorKind.SERVICE)
        [access] = workspaces.list_my_workspaces(service, PageRequest()).items
        assert (access.workspace_id, access.workspace_name) == (WORKSPACE, "Unit")

    def test_a_new_workspace_makes_its_creator_admin(self, workspaces, clock):
        created = workspaces.create_workspace(ADMIN, "Second", "Another team")
        assert created.created_at == clock.now()
        mine = workspaces.list_my_workspaces(ADMIN, PageRequest()).items
        assert {a.workspace_id for a in mine} == {WORKSPACE, created.id}
        assert all(a.role is Role.ADMIN for a in mine)
