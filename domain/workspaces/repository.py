"""Persistence of workspaces and memberships (scoped by workspace; nothing here commits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from domain.audit import AuditTx
from domain.kernel.actor import Role
from domain.persistence import tables
from domain.persistence.sql import keyset_page, utc
from domain.workspaces.model import Membership, Workspace, WorkspaceAccess


class WorkspaceRepository:
    """Reads and writes for one transaction; ``for_update`` takes row locks on PostgreSQL."""

    def __init__(self, connection: Connection, *, for_update: bool = False) -> None:
        self._c = connection
        self._for_update = for_update and connection.dialect.name == "postgresql"

    # -- workspaces ----------------------------------------------------------------------

    def get(self, workspace_id: str) -> Workspace | None:
        w = tables.workspaces
        row = self._c.execute(select(w).where(w.c.id == workspace_id)).first()
        return None if row is None else _workspace(row)

    def exists(self, workspace_id: str) -> bool:
        w = tables.workspaces
        return self._c.execute(select(w.c.id).where(w.c.id == workspace_id)).first() is not None

    def lock(self, workspace_id: str) -> None:
        """Serialise writers of one workspace (PostgreSQL row lock; SQLite locks the file)."""
        w = tables.workspaces
        stmt = select(w.c.id).where(w.c.id == workspace_id)
        if self._for_update:
            stmt = stmt.with_for_update()
        self._c.execute(stmt)

    def add(self, workspace: Workspace) -> None:
        self._c.execute(
            insert(tables.workspaces).values(
                id=workspace.id,
                tenant_id=workspace.tenant_id,
                name=workspace.name,
                description=workspace.description,
                created_at=workspace.created_at,
                updated_at=workspace.updated_at,
            )
        )

    def save(self, workspace: Workspace) -> None:
        """Write the workspace's name, description and update time."""
        w = tables.workspaces
        self._c.execute(
            update(w)
            .where(w.c.id == workspace.id)
            .values(
                name=workspace.name,
                description=workspace.description,
                updated_at=workspace.updated_at,
            )
        )

    # -- a subject's workspaces ----------------------------------------------------------

    def access(self, subject: str, workspace_id: str) -> WorkspaceAccess | None:
        rows = self._accesses(subject).where(
            tables.workspace_members.c.workspace_id == workspace_id
        )
        row = self._c.execute(rows).first()
        return None if row is None else _access(row)

    def accesses(self, subject: str, after: str | None, limit: int) -> list[WorkspaceAccess]:
        """One page of the subject's workspaces, by workspace id (``limit + 1`` rows)."""
        stmt = keyset_page(
            self._accesses(subject), tables.workspace_members.c.workspace_id, after, limit
        )
        return [_access(r) for r in self._c.execute(stmt).all()]

    def _accesses(self, subject: str) -> Any:
        wm, ws = tables.workspace_members, tables.workspaces
        return (
            select(wm.c.workspace_id, wm.c.subject, wm.c.role, ws.c.name)
            .join(ws, ws.c.id == wm.c.workspace_id)
            .where(wm.c.subject == subject)
        )

    # -- memberships ---------------------------------------------------------------------

    def list_memberships(
        self, workspace_id: str, after: str | None, limit: int
    ) -> list[Membership]:
        wm, users = tables.workspace_members, tables.users
        stmt = (
            select(wm.c.subject, wm.c.role, wm.c.created_at, users.c.email, users.c.name)
            .outerjoin(users, users.c.subject == wm.c.subject)
            .where(wm.c.workspace_id == workspace_id)
        )
        if after is not None:
            stmt = stmt.where(wm.c.subject > after)
        rows = self._c.execute(stmt.order_by(wm.c.subject).limit(limit + 1)).all()
        return [_membership(r) for r in rows]

    def count_memberships(self, workspace_id: str) -> int:
        wm = tables.workspace_members
        stmt = select(func.count()).where(wm.c.workspace_id == workspace_id)
        return int(self._c.execute(stmt).scalar_one())

    def get_membership(self, workspace_id: str, subject: str) -> Membership | None:
        wm, users = tables.workspace_members, tables.users
        row = self._c.execute(
            select(wm.c.subject, wm.c.role, wm.c.created_at, users.c.email, users.c.name)
            .outerjoin(users, users.c.subject == wm.c.subject)
            .where(wm.c.workspace_id == workspace_id, wm.c.subject == subject)
        ).first()
        return None if row is None else _membership(row)

    def count_admins(self, workspace_id: str) -> int:
        wm = tables.workspace_members
        stmt = select(func.count()).where(
            and_(wm.c.workspace_id == workspace_id, wm.c.role == Role.ADMIN.label)
        )
        return int(self._c.execute(stmt).scalar_one())

    def add_membership(self, workspace_id: str, subject: str, role: Role, now: datetime) -> None:
        self._c.execute(
            insert(tables.workspace_members).values(
                workspace_id=workspace_id, subject=subject, role=role.label, created_at=now
            )
        )

    def set_role(self, workspace_id: str, subject: str, role: Role) -> None:
        wm = tables.workspace_members
        self._c.execute(
            update(wm)
            .where(wm.c.workspace_id == workspace_id, wm.c.subject == subject)
            .values(role=role.label)
        )

    def remove_membership(self, workspace_id: str, subject: str) -> None:
        wm = tables.workspace_members
        self._c.execute(
            delete(wm).where(wm.c.workspace_id == workspace_id, wm.c.subject == subject)
        )


class WorkspacesTx(AuditTx, Protocol):
    """What the workspace use cases need of a unit of work."""

    workspaces: WorkspaceRepository


def _workspace(row: Any) -> Workspace:
    return Workspace(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        description=row.description,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )


def _access(row: Any) -> WorkspaceAccess:
    return WorkspaceAccess(row.workspace_id, row.name, row.subject, Role.parse(row.role))


def _membership(row: Any) -> Membership:
    return Membership(
        subject=row.subject,
        role=Role.parse(row.role),
        email=row.email,
        name=row.name,
        created_at=utc(row.created_at),
    )
