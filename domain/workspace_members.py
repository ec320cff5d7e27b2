"""Workspace membership management (admins) and workspace creation.

The last admin of a workspace cannot be removed or demoted. Every change first locks the
workspace row (PostgreSQL ``SELECT ... FOR UPDATE``; SQLite serialises writers), so two admins
demoting each other concurrently cannot both succeed and leave the workspace without an admin.
"""

from __future__ import annotations

from datetime import UTC, datetime

from domain.errors import AlreadyMember, CredentialRejected, LastAdmin, NotFound
from domain.identity import WorkspaceMember, decode_cursor, encode_cursor
from domain.ids import new_id
from domain.model import Actor, ActorKind, Page, PageRequest, Role, Workspace, page_of
from domain.unit_of_work import UnitOfWork, UnitOfWorkFactory


def _now() -> datetime:
    return datetime.now(UTC)


def list_members(uow: UnitOfWorkFactory, actor: Actor, page: PageRequest) -> Page[WorkspaceMember]:
    """List the members of the actor's workspace by subject (admin only).

    :raises PermissionDenied: the actor is not an admin.
    """
    actor.require(Role.ADMIN)
    with uow() as tx:
        rows = tx.identity.list_members(actor.workspace_id, decode_cursor(page.cursor), page.limit)
    return page_of(rows, page, lambda m: encode_cursor(m.subject))


def get_member(uow: UnitOfWorkFactory, actor: Actor, subject: str) -> WorkspaceMember:
    """Return one member of the actor's workspace (admin only).

    :raises PermissionDenied: the actor is not an admin.
    :raises NotFound: ``subject`` is not a member of the workspace.
    """
    actor.require(Role.ADMIN)
    with uow() as tx:
        member = tx.identity.get_member(actor.workspace_id, subject)
    if member is None:
        raise NotFound("member", subject)
    return member


def add_member(uow: UnitOfWorkFactory, actor: Actor, subject: str, role: Role) -> WorkspaceMember:
    """Make ``subject`` a member of the actor's workspace with ``role`` (admin only).

    The subject need not have logged in yet: the membership waits for its first login.

    :raises PermissionDenied: the actor is not an admin.
    :raises AlreadyMember: the subject already belongs to the workspace.
    """
    actor.require(Role.ADMIN)
    now = _now()
    with uow(write=True) as tx:
        _lock(tx, actor)
        if tx.identity.get_member(actor.workspace_id, subject) is not None:
            raise AlreadyMember(subject)
        tx.identity.add_member(actor.workspace_id, subject, role, now)
        tx.repo.append_audit(
            actor,
            "member.added",
            "membership",
            subject[:64],
            {"subject": subject, "role": role.label},
            now,
        )
        member = tx.identity.get_member(actor.workspace_id, subject)
        tx.commit()
    assert member is not None
    return member


def change_role(uow: UnitOfWorkFactory, actor: Actor, subject: str, role: Role) -> WorkspaceMember:
    """Change a member's role (admin only); the last admin cannot be demoted.

    :raises PermissionDenied: the actor is not an admin.
    :raises NotFound: ``subject`` is not a member of the workspace.
    :raises LastAdmin: the member is the workspace's only admin and ``role`` is lower.
    """
    actor.require(Role.ADMIN)
    now = _now()
    with uow(write=True) as tx:
        _lock(tx, actor)
        current = _member_or_404(tx, actor, subject)
        if current.role is Role.ADMIN and role is not Role.ADMIN:
            _keep_an_admin(tx, actor, subject)
        if current.role is not role:
            tx.identity.set_member_role(actor.workspace_id, subject, role)
            tx.repo.append_audit(
                actor,
                "member.role_changed",
                "membership",
                subject[:64],
                {"subject": subject, "from": current.role.label, "to": role.label},
                now,
            )
        member = tx.identity.get_member(actor.workspace_id, subject)
        tx.commit()
    assert member is not None
    return member


def remove_member(uow: UnitOfWorkFactory, actor: Actor, subject: str) -> None:
    """Remove a member (admin only); the last admin cannot be removed.

    Session tokens already issued stay valid until they expire; refreshing them fails.

    :raises PermissionDenied: the actor is not an admin.
    :raises NotFound: ``subject`` is not a member of the workspace.
    :raises LastAdmin: the member is the workspace's only admin.
    """
    actor.require(Role.ADMIN)
    now = _now()
    with uow(write=True) as tx:
        _lock(tx, actor)
        current = _member_or_404(tx, actor, subject)
        if current.role is Role.ADMIN:
            _keep_an_admin(tx, actor, subject)
        tx.identity.remove_member(actor.workspace_id, subject)
        tx.repo.append_audit(
            actor, "member.removed", "membership", subject[:64], {"subject": subject}, now
        )
        tx.commit()


def create_workspace(
    uow: UnitOfWorkFactory, actor: Actor, name: str, description: str = ""
) -> Workspace:
    """Create a workspace in the tenant of the actor's workspace; the actor becomes its admin.

    :raises PermissionDenied: the actor is not an admin of its current workspace.
    :raises CredentialRejected: the actor's workspace does not exist.
    """
    actor.require(Role.ADMIN)
    now = _now()
    with uow(write=True) as tx:
        current = tx.repo.get_workspace(actor.workspace_id)
        if current is None:
            raise CredentialRejected("The credential names a workspace that does not exist.")
        workspace = Workspace(new_id("wsp"), current.tenant_id, name, description, now, now)
        tx.repo.add_workspace(workspace)
        if actor.kind is ActorKind.USER:
            tx.identity.add_member(workspace.id, actor.subject, Role.ADMIN, now)
        tx.repo.append_audit(
            actor, "workspace.created", "workspace", workspace.id, {"name": name}, now
        )
        tx.commit()
    return workspace


def _lock(tx: UnitOfWork, actor: Actor) -> None:
    tx.repo.lock_workspace(actor.workspace_id)


def _member_or_404(tx: UnitOfWork, actor: Actor, subject: str) -> WorkspaceMember:
    member = tx.identity.get_member(actor.workspace_id, subject)
    if member is None:
        raise NotFound("member", subject)
    return member


def _keep_an_admin(tx: UnitOfWork, actor: Actor, subject: str) -> None:
    if tx.identity.count_admins(actor.workspace_id) <= 1:
        raise LastAdmin(subject)
