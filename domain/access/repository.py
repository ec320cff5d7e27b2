"""Persistence of API keys, and the lean membership read done on every request.

Key secrets arrive here already hashed; nothing in this module commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, and_, insert, or_, select, update

from domain.access.model import ApiKey
from domain.audit import AuditTx
from domain.kernel.actor import Role
from domain.persistence import tables
from domain.persistence.sql import keyset_page, utc


class AccessRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def member_role(self, workspace_id: str, subject: str) -> Role | None:
        """The subject's role in the workspace now; None if it is not a member."""
        m = tables.workspace_members
        role = self._c.execute(
            select(m.c.role).where(m.c.workspace_id == workspace_id, m.c.subject == subject)
        ).scalar()
        return None if role is None else Role.parse(role)

    def login_revoked(self, login_id: str) -> bool:
        """Whether the login (refresh family) ``login_id`` was revoked."""
        r = tables.refresh_tokens
        return (
            self._c.execute(
                select(r.c.id)
                .where(r.c.family_id == login_id, r.c.revoked_at.is_not(None))
                .limit(1)
            ).first()
            is not None
        )

    def add_key(self, key: ApiKey, secret_hash: str) -> None:
        self._c.execute(
            insert(tables.api_keys).values(
                id=key.id,
                workspace_id=key.workspace_id,
                name=key.name,
                role=key.role.label,
                secret_hash=secret_hash,
                created_by=key.created_by,
                created_at=key.created_at,
                expires_at=key.expires_at,
            )
        )

    def list_keys(self, workspace_id: str, after: str | None, limit: int) -> list[ApiKey]:
        """One page of the workspace's unrevoked keys, by id (``limit + 1`` rows)."""
        k = tables.api_keys
        stmt = select(k).where(k.c.workspace_id == workspace_id, k.c.revoked_at.is_(None))
        rows = self._c.execute(keyset_page(stmt, k.c.id, after, limit)).all()
        return [_key(row) for row in rows]

    def get_key(self, workspace_id: str, key_id: str) -> ApiKey | None:
        k = tables.api_keys
        row = self._c.execute(
            select(k).where(
                k.c.workspace_id == workspace_id, k.c.id == key_id, k.c.revoked_at.is_(None)
            )
        ).first()
        return None if row is None else _key(row)

    def revoke_key(self, workspace_id: str, key_id: str, now: datetime) -> bool:
        k = tables.api_keys
        result = self._c.execute(
            update(k)
            .where(k.c.workspace_id == workspace_id, k.c.id == key_id, k.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return bool(result.rowcount == 1)

    def usable_key(self, secret_hash: str, now: datetime) -> Any:
        """The row of an unrevoked, unexpired key with this secret hash, or None."""
        k = tables.api_keys
        return self._c.execute(
            select(k.c.id, k.c.workspace_id, k.c.role, k.c.last_used_at).where(
                k.c.secret_hash == secret_hash,
                k.c.revoked_at.is_(None),
                or_(k.c.expires_at.is_(None), k.c.expires_at > now),
            )
        ).first()

    def touch_key(self, key_id: str, now: datetime, before: datetime) -> None:
        """Set ``last_used_at`` to ``now`` unless it is already later than ``before``."""
        k = tables.api_keys
        self._c.execute(
            update(k)
            .where(
                k.c.id == key_id,
                or_(k.c.last_used_at.is_(None), and_(k.c.last_used_at < before)),
            )
            .values(last_used_at=now)
        )


def _key(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        workspace_id=row.workspace_id,
        name=row.name,
        role=Role.parse(row.role),
        created_by=row.created_by,
        created_at=utc(row.created_at),
        expires_at=None if row.expires_at is None else utc(row.expires_at),
        last_used_at=None if row.last_used_at is None else utc(row.last_used_at),
    )


class AccessTx(AuditTx, Protocol):
    """What the access use cases need of a unit of work."""

    access: AccessRepository
