"""Persistence of the audit log. Append-only: nothing here updates or deletes an entry."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Select, insert, select

from domain.audit.model import AuditEntry, AuditFilter
from domain.kernel.actor import Actor
from domain.kernel.ids import new_id
from domain.kernel.unit_of_work import UnitOfWork
from domain.persistence import tables
from domain.persistence.driver import DriverStatements
from domain.persistence.sql import count_rows, utc


class AuditLog:
    def __init__(self, connection: Connection) -> None:
        self._c = connection
        self._hot = DriverStatements(connection)  # every audited write (run starts among them)

    def append(
        self,
        actor: Actor,
        action: str,
        subject_type: str,
        subject_id: str,
        data: dict[str, Any],
        now: datetime,
    ) -> None:
        self._hot.execute(
            _INSERT_AUDIT,
            {
                "id": new_id("aud"),
                "workspace_id": actor.workspace_id,
                "at": now,
                "actor_subject": actor.subject,
                "actor_kind": actor.kind.value,
                "action": action,
                "subject_type": subject_type,
                "subject_id": subject_id,
                "data": data,
            },
        )

    def entries(self, workspace_id: str, subject_id: str) -> list[AuditEntry]:
        """The entries about one resource, oldest first."""
        a = tables.audit_log
        rows = self._c.execute(
            select(a)
            .where(a.c.workspace_id == workspace_id, a.c.subject_id == subject_id)
            .order_by(a.c.id)
        ).all()
        return [_entry(r) for r in rows]

    def list(
        self, workspace_id: str, where: AuditFilter, before_id: str | None, limit: int
    ) -> list[AuditEntry]:
        """Newest first; the cursor is an upper bound (``limit + 1`` rows)."""
        a = tables.audit_log
        stmt = self._filtered(workspace_id, where)
        if before_id is not None:
            stmt = stmt.where(a.c.id < before_id)
        rows = self._c.execute(stmt.order_by(a.c.id.desc()).limit(limit + 1)).all()
        return [_entry(r) for r in rows]

    def count(self, workspace_id: str, where: AuditFilter) -> int:
        return count_rows(self._c, self._filtered(workspace_id, where))

    def _filtered(self, workspace_id: str, where: AuditFilter) -> Select[Any]:
        a = tables.audit_log
        stmt = select(a).where(a.c.workspace_id == workspace_id)
        for column, value in (
            (a.c.actor_subject, where.actor),
            (a.c.action, where.action),
            (a.c.subject_type, where.target_type),
            (a.c.subject_id, where.target_id),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if where.at_or_after is not None:
            stmt = stmt.where(a.c.at >= where.at_or_after)
        if where.before is not None:
            stmt = stmt.where(a.c.at < where.before)
        return stmt


def _entry(r: Any) -> AuditEntry:
    return AuditEntry(
        id=r.id,
        workspace_id=r.workspace_id,
        at=utc(r.at),
        actor_subject=r.actor_subject,
        actor_kind=r.actor_kind,
        action=r.action,
        subject_type=r.subject_type,
        subject_id=r.subject_id,
        data=dict(r.data),
    )


class AuditTx(UnitOfWork, Protocol):
    """A unit of work that can append to the audit log."""

    audit: AuditLog


# Built once: every run start and most writes append an entry.
_INSERT_AUDIT = insert(tables.audit_log)
