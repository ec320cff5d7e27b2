"""Use cases of the audit log: admins read it. Nothing here (or anywhere) changes an entry."""

from __future__ import annotations

from domain.audit.model import AuditEntry, AuditFilter
from domain.audit.repository import AuditTx
from domain.kernel.actor import Actor, Role
from domain.kernel.paging import Page, PageRequest, page_of
from domain.kernel.unit_of_work import Store


class Audit:
    """The audit log of the actor's workspace."""

    def __init__(self, store: Store[AuditTx]) -> None:
        self._store = store

    def list_audit_entries(
        self, actor: Actor, page: PageRequest, where: AuditFilter
    ) -> Page[AuditEntry]:
        """List the workspace's audit entries, newest first, filtered (admin only).

        :raises PermissionDenied: the actor is not an admin.
        """
        actor.require(Role.ADMIN)
        with self._store() as tx:
            rows = tx.audit.list(actor.workspace_id, where, page.cursor, page.limit)
            total = tx.audit.count(actor.workspace_id, where) if page.include_total else None
        return page_of(rows, page, lambda e: e.id, total)
