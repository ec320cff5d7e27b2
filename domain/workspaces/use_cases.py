"""Use cases of workspaces and their memberships.

The last admin of a workspace cannot be removed or demoted. Every membership change first
locks the workspace row (PostgreSQL ``SELECT ... FOR UPDATE``; SQLite serialises writers), so
two admins demoting each other concurrently cannot both succeed and leave it without an admin.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from domain.kernel import DEFAULT_TENANT
from domain.kernel.actor import Actor, ActorKind, Role
from domain.kernel.clock import Clock
from domain.kernel.errors import CredentialRejected, NotFound
from domain.kernel.ids import new_id
from domain.kernel.paging import Page, PageRequest, page_of
from domain.kernel.preconditions import Precondition, check
from domain.kernel.unit_of_work import Store
from domain.workspaces.errors import AlreadyMember, LastAdmin, OwnMembership
from domain.workspaces.model import (
    Membership,
    Workspace,
    WorkspaceAccess,
    subject_after,
    subject_cursor,
)
from domain.workspaces.repository import WorkspacesTx

_UNKNOWN_WORKSPACE = "The credential names a workspace that does not exist."


class Workspaces:
    """The caller's workspace, the workspaces a subject belongs to, and their memberships."""

    def __init__(self, store: Store[WorkspacesTx], clock: Clock) -> None:
        self._store = store
        self._clock = clock

    # -- workspaces ----------------------------------------------------------------------

    def workspace_exists(self, workspace_id: str) -> bool:
        """Whether a workspace with this id exists (used to vet credentials)."""
        with self._store() as tx:
            return tx.workspaces.exists(workspace_id)

    def ensure_member(
        self,
        workspace_id: str,
        subject: str,
        role: Role,
        *,
        name: str | None = None,
        tenant_id: str = DEFAULT_TENANT,
    ) -> Workspace:
        """Create the workspace if it is missing and make ``subject`` a member with ``role``.

        For local provisioning (the ``scaicrew token`` command and dev-mode headers), not for
        callers of the API.
        """
        now = self._clock.now()
        with self._store(write=True) as tx:
            workspace = tx.workspaces.get(workspace_id)
            if workspace is None:
                workspace = Workspace(workspace_id, tenant_id, name or workspace_id, "", now, now)
                tx.workspaces.add(workspace)
            current = tx.workspaces.get_membership(workspace_id, subject)
            if current is None:
                tx.workspaces.add_membership(workspace_id, subject, role, now)
            elif current.role is not role:
                tx.workspaces.set_role(workspace_id, subject, role)
            tx.commit()
            return workspace

    def get_workspace(self, actor: Actor) -> Workspace:
        """Return the actor's workspace.

        :raises CredentialRejected: the credential names a workspace that does not exist.
        """
        actor.require(Role.VIEWER)
        with self._store() as tx:
            workspace = tx.workspaces.get(actor.workspace_id)
        if workspace is None:
            raise CredentialRejected(_UNKNOWN_WORKSPACE)
        return workspace

    def update_workspace(
        self,
        actor: Actor,
        *,
        name: str | None = None,
        description: str | None = None,
        if_match: Precondition[Workspace] | None = None,
    ) -> Workspace:
        """Rename or re-describe the actor's workspace (admin only).

        :raises PermissionDenied: the actor is not an admin.
        :raises CredentialRejected: the workspace does not exist.
        :raises PreconditionFailed: the workspace is not in the state ``if_match`` expects.
        """
        actor.require(Role.ADMIN)
        now = self._clock.now()
        with self._store(write=True) as tx:
            tx.workspaces.lock(actor.workspace_id)
            current = tx.workspaces.get(actor.workspace_id)
            if current is None:
                raise CredentialRejected(_UNKNOWN_WORKSPACE)
            check(if_match, current)
            workspace = replace(
                current,
                name=current.name if name is None else name,
                description=current.description if description is None else description,
                updated_at=now,
            )
            tx.workspaces.save(workspace)
            changed = {"name": name, "description": description}
            tx.audit.append(
                actor,
                "workspace.updated",
                "workspace",
                actor.workspace_id,
                {k: v for k, v in changed.items() if v is not None},
                now,
            )
            tx.commit()
        return workspace

    def list_my_workspaces(self, actor: Actor, page: PageRequest) -> Page[WorkspaceAccess]:
        """List the workspaces the actor's subject belongs to.

        The credential's own workspace is always listed (a service token acts in a workspace
        it has no membership row for).
        """
        actor.require(Role.VIEWER)
        with self._store() as tx:
            rows = tx.workspaces.accesses(actor.subject, page.cursor, page.limit)
            listed = {m.workspace_id for m in rows}
            current = None
            if actor.workspace_id not in listed and (
                page.cursor is None or actor.workspace_id > page.cursor
            ):
                workspace = tx.workspaces.get(actor.workspace_id)
                if workspace is not None:
                    current = WorkspaceAccess(
                        workspace.id, workspace.name, actor.subject, actor.role
                    )
        if current is not None:
            rows = sorted([*rows, current], key=lambda m: m.workspace_id)
        return page_of(rows, page, lambda m: m.workspace_id)

    def create_workspace(self, actor: Actor, name: str, description: str = "") -> Workspace:
        """Create a workspace in the tenant of the actor's workspace; the actor becomes its admin.

        :raises PermissionDenied: the actor is not an admin of its current workspace.
        :raises CredentialRejected: the actor's workspace does not exist.
        """
        actor.require(Role.ADMIN)
        now = self._clock.now()
        with self._store(write=True) as tx:
            current = tx.workspaces.get(actor.workspace_id)
            if current is None:
                raise CredentialRejected(_UNKNOWN_WORKSPACE)
            workspace = Workspace(new_id("wsp"), current.tenant_id, name, description, now, now)
            tx.workspaces.add(workspace)
            if actor.kind is ActorKind.USER:
                tx.workspaces.add_membership(workspace.id, actor.subject, Role.ADMIN, now)
            tx.audit.append(
                actor, "workspace.created", "workspace", workspace.id, {"name": name}, now
            )
            tx.commit()
        return workspace

    # -- memberships ---------------------------------------------------------------------

    def list_workspace_memberships(self, actor: Actor, page: PageRequest) -> Page[Membership]:
        """List the members of the actor's workspace by subject (admin only).

        :raises PermissionDenied: the actor is not an admin.
        """
        actor.require(Role.ADMIN)
        with self._store() as tx:
            rows = tx.workspaces.list_memberships(
                actor.workspace_id, subject_after(page.cursor), page.limit
            )
            total = (
                tx.workspaces.count_memberships(actor.workspace_id) if page.include_total else None
            )
        return page_of(rows, page, lambda m: subject_cursor(m.subject), total)

    def get_workspace_membership(self, actor: Actor, subject: str) -> Membership:
        """Return one member of the actor's workspace (admin only).

        :raises PermissionDenied: the actor is not an admin.
        :raises NotFound: ``subject`` is not a member of the workspace.
        """
        actor.require(Role.ADMIN)
        with self._store() as tx:
            return _membership_or_404(tx, actor, subject)

    def add_workspace_membership(self, actor: Actor, subject: str, role: Role) -> Membership:
        """Make ``subject`` a member of the actor's workspace with ``role`` (admin only).

        The subject need not have logged in yet: the membership waits for its first login.

        :raises PermissionDenied: the actor is not an admin.
        :raises AlreadyMember: the subject already belongs to the workspace.
        """
        actor.require(Role.ADMIN)
        now = self._clock.now()
        with self._store(write=True) as tx:
            tx.workspaces.lock(actor.workspace_id)
            if tx.workspaces.get_membership(actor.workspace_id, subject) is not None:
                raise AlreadyMember(subject)
            tx.workspaces.add_membership(actor.workspace_id, subject, role, now)
            tx.audit.append(
                actor,
                "member.added",
                "membership",
                subject[:64],
                {"subject": subject, "role": role.label},
                now,
            )
            membership = _membership_or_404(tx, actor, subject)
            tx.commit()
        return membership

    def update_workspace_membership(
        self,
        actor: Actor,
        subject: str,
        role: Role,
        *,
        if_match: Precondition[Membership] | None = None,
    ) -> Membership:
        """Change a member's role (admin only); the last admin cannot be demoted.

        :raises PermissionDenied: the actor is not an admin.
        :raises NotFound: ``subject`` is not a member of the workspace.
        :raises PreconditionFailed: the membership is not in the state ``if_match`` expects.
        :raises LastAdmin: the member is the workspace's only admin and ``role`` is lower.
        :raises OwnMembership: a user demotes themself (another admin has to).
        """
        actor.require(Role.ADMIN)
        now = self._clock.now()
        with self._store(write=True) as tx:
            tx.workspaces.lock(actor.workspace_id)
            current = _membership_or_404(tx, actor, subject)
            check(if_match, current)
            if current.role is Role.ADMIN and role is not Role.ADMIN:
                _keep_an_admin(tx, actor, subject)
                _not_own(actor, subject)
            if current.role is not role:
                tx.workspaces.set_role(actor.workspace_id, subject, role)
                tx.audit.append(
                    actor,
                    "member.role_changed",
                    "membership",
                    subject[:64],
                    {"subject": subject, "from": current.role.label, "to": role.label},
                    now,
                )
            membership = _membership_or_404(tx, actor, subject)
            tx.commit()
        return membership

    def remove_workspace_membership(self, actor: Actor, subject: str) -> None:
        """Remove a member (admin only); the last admin cannot be removed.

        Credentials are re-checked per request (ADR 0032): the member's session tokens stop
        working on the next request; refreshing them fails.

        :raises PermissionDenied: the actor is not an admin.
        :raises NotFound: ``subject`` is not a member of the workspace.
        :raises LastAdmin: the member is the workspace's only admin.
        :raises OwnMembership: a user removes themself (another admin has to).
        """
        actor.require(Role.ADMIN)
        now = self._clock.now()
        with self._store(write=True) as tx:
            tx.workspaces.lock(actor.workspace_id)
            current = _membership_or_404(tx, actor, subject)
            if current.role is Role.ADMIN:
                _keep_an_admin(tx, actor, subject)
            _not_own(actor, subject)
            tx.workspaces.remove_membership(actor.workspace_id, subject)
            tx.audit.append(
                actor, "member.removed", "membership", subject[:64], {"subject": subject}, now
            )
            tx.commit()


def create_first_workspace(
    tx: WorkspacesTx, tenant_id: str, subject: str, name: str, description: str, now: datetime
) -> Workspace:
    """Inside ``tx``: a new workspace of ``tenant_id`` with ``subject`` as its admin."""
    workspace = Workspace(new_id("wsp"), tenant_id, name, description, now, now)
    tx.workspaces.add(workspace)
    tx.workspaces.add_membership(workspace.id, subject, Role.ADMIN, now)
    return workspace


def _membership_or_404(tx: WorkspacesTx, actor: Actor, subject: str) -> Membership:
    membership = tx.workspaces.get_membership(actor.workspace_id, subject)
    if membership is None:
        raise NotFound("member", subject)
    return membership


def _not_own(actor: Actor, subject: str) -> None:
    if actor.kind is ActorKind.USER and actor.subject == subject:
        raise OwnMembership(subject)


def _keep_an_admin(tx: WorkspacesTx, actor: Actor, subject: str) -> None:
    if tx.workspaces.count_admins(actor.workspace_id) <= 1:
        raise LastAdmin(subject)
