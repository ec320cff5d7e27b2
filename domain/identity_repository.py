"""Persistence of identity: users, tenant bootstraps, login states, session codes, refresh tokens.

Secrets (state, session code, refresh token) arrive here already hashed; nothing in this module
commits. Single use is enforced by conditional writes (``DELETE``/``UPDATE ... WHERE`` checked by
row count), so two concurrent redemptions of one secret cannot both succeed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from domain import orm
from domain.identity import LoginState, RefreshToken, SessionCode, WorkspaceMember
from domain.model import Membership, Role


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class IdentityRepository:
    """Identity reads and writes for one transaction; ``for_update`` locks rows on PostgreSQL."""

    def __init__(self, connection: Connection, *, for_update: bool = False) -> None:
        self._c = connection
        self._dialect = connection.dialect.name
        self._for_update = for_update and self._dialect == "postgresql"

    # -- login states --------------------------------------------------------------------

    def add_login_state(
        self, state_hash: str, nonce: str, verifier: str, now: datetime, expires_at: datetime
    ) -> None:
        self._c.execute(
            insert(orm.login_states).values(
                state_hash=state_hash,
                nonce=nonce,
                code_verifier=verifier,
                created_at=now,
                expires_at=expires_at,
            )
        )

    def purge_expired(self, now: datetime) -> None:
        """Forget login states and session codes past their expiry (keeps the tables small)."""
        self._c.execute(delete(orm.login_states).where(orm.login_states.c.expires_at < now))
        self._c.execute(delete(orm.session_codes).where(orm.session_codes.c.expires_at < now))

    def take_login_state(self, state_hash: str) -> LoginState | None:
        """Delete and return the state; None if it is unknown or another call took it first."""
        table = orm.login_states
        row = self._c.execute(select(table).where(table.c.state_hash == state_hash)).first()
        if row is None:
            return None
        deleted = self._c.execute(delete(table).where(table.c.state_hash == state_hash))
        if deleted.rowcount != 1:
            return None
        return LoginState(row.nonce, row.code_verifier, _utc(row.expires_at))

    # -- users and tenants ---------------------------------------------------------------

    def upsert_user(
        self,
        user_id: str,
        tenant_id: str,
        subject: str,
        email: str | None,
        name: str | None,
        now: datetime,
    ) -> None:
        table = orm.users
        found = self._c.execute(select(table.c.id).where(table.c.subject == subject)).first()
        values: dict[str, Any] = {"email": email, "name": name, "last_login_at": now}
        if found is None:
            self._c.execute(
                insert(table).values(
                    id=user_id, tenant_id=tenant_id, subject=subject, created_at=now, **values
                )
            )
        else:
            self._c.execute(update(table).where(table.c.subject == subject).values(**values))

    def claim_tenant_bootstrap(self, tenant_id: str, subject: str, now: datetime) -> bool:
        """Record ``subject`` as the tenant's first user; False if someone already was.

        ``INSERT ... ON CONFLICT DO NOTHING``: on PostgreSQL a concurrent claim waits for the
        first one to commit and then inserts nothing; SQLite serialises writers anyway.
        """
        values = {"tenant_id": tenant_id, "subject": subject, "created_at": now}
        stmt: Any
        if self._dialect == "postgresql":
            stmt = postgresql.insert(orm.tenant_bootstraps).values(**values)
        else:
            stmt = sqlite.insert(orm.tenant_bootstraps).values(**values)
        # RETURNING, not rowcount: psycopg reports no row count for a skipped conflict.
        stmt = stmt.on_conflict_do_nothing(index_elements=["tenant_id"])
        return (
            self._c.execute(stmt.returning(orm.tenant_bootstraps.c.tenant_id)).first() is not None
        )

    def set_bootstrap_workspace(self, tenant_id: str, workspace_id: str) -> None:
        table = orm.tenant_bootstraps
        self._c.execute(
            update(table).where(table.c.tenant_id == tenant_id).values(workspace_id=workspace_id)
        )

    # -- session codes -------------------------------------------------------------------

    def add_session_code(
        self, code_hash: str, subject: str, tenant_id: str, now: datetime, expires_at: datetime
    ) -> None:
        self._c.execute(
            insert(orm.session_codes).values(
                code_hash=code_hash,
                subject=subject,
                tenant_id=tenant_id,
                created_at=now,
                expires_at=expires_at,
            )
        )

    def get_session_code(self, code_hash: str) -> SessionCode | None:
        table = orm.session_codes
        row = self._c.execute(select(table).where(table.c.code_hash == code_hash)).first()
        if row is None:
            return None
        redeemed = None if row.redeemed_at is None else _utc(row.redeemed_at)
        return SessionCode(row.subject, row.tenant_id, _utc(row.expires_at), redeemed)

    def redeem_session_code(self, code_hash: str, now: datetime) -> bool:
        """Mark the code redeemed; False if it was redeemed (or expired) meanwhile."""
        table = orm.session_codes
        result = self._c.execute(
            update(table)
            .where(
                table.c.code_hash == code_hash,
                table.c.redeemed_at.is_(None),
                table.c.expires_at > now,
            )
            .values(redeemed_at=now)
        )
        return bool(result.rowcount == 1)

    # -- refresh tokens ------------------------------------------------------------------

    def add_refresh_token(
        self,
        token_id: str,
        family_id: str,
        token_hash: str,
        subject: str,
        tenant_id: str,
        workspace_id: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        self._c.execute(
            insert(orm.refresh_tokens).values(
                id=token_id,
                family_id=family_id,
                token_hash=token_hash,
                subject=subject,
                tenant_id=tenant_id,
                workspace_id=workspace_id,
                created_at=now,
                expires_at=expires_at,
            )
        )

    def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        table = orm.refresh_tokens
        row = self._c.execute(select(table).where(table.c.token_hash == token_hash)).first()
        if row is None:
            return None
        return RefreshToken(
            id=row.id,
            family_id=row.family_id,
            subject=row.subject,
            tenant_id=row.tenant_id,
            workspace_id=row.workspace_id,
            expires_at=_utc(row.expires_at),
            rotated_at=None if row.rotated_at is None else _utc(row.rotated_at),
            revoked_at=None if row.revoked_at is None else _utc(row.revoked_at),
        )

    def mark_rotated(self, token_id: str, now: datetime) -> bool:
        """Mark the token used; False if a concurrent refresh used (or revoked) it first."""
        table = orm.refresh_tokens
        result = self._c.execute(
            update(table)
            .where(
                table.c.id == token_id, table.c.rotated_at.is_(None), table.c.revoked_at.is_(None)
            )
            .values(rotated_at=now)
        )
        return bool(result.rowcount == 1)

    def revoke_family(self, family_id: str, now: datetime) -> None:
        table = orm.refresh_tokens
        self._c.execute(
            update(table)
            .where(table.c.family_id == family_id, table.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    # -- memberships ---------------------------------------------------------------------

    def all_memberships(self, subject: str, limit: int) -> list[Membership]:
        wm, ws = orm.workspace_members, orm.workspaces
        rows = self._c.execute(
            select(wm.c.workspace_id, wm.c.subject, wm.c.role, ws.c.name)
            .join(ws, ws.c.id == wm.c.workspace_id)
            .where(wm.c.subject == subject)
            .order_by(wm.c.workspace_id)
            .limit(limit)
        ).all()
        return [Membership(r.workspace_id, r.name, r.subject, Role.parse(r.role)) for r in rows]

    def list_members(
        self, workspace_id: str, after: str | None, limit: int
    ) -> list[WorkspaceMember]:
        wm, users = orm.workspace_members, orm.users
        stmt = (
            select(wm.c.subject, wm.c.role, wm.c.created_at, users.c.email, users.c.name)
            .outerjoin(users, users.c.subject == wm.c.subject)
            .where(wm.c.workspace_id == workspace_id)
        )
        if after is not None:
            stmt = stmt.where(wm.c.subject > after)
        rows = self._c.execute(stmt.order_by(wm.c.subject).limit(limit + 1)).all()
        return [_member(r) for r in rows]

    def get_member(self, workspace_id: str, subject: str) -> WorkspaceMember | None:
        wm, users = orm.workspace_members, orm.users
        row = self._c.execute(
            select(wm.c.subject, wm.c.role, wm.c.created_at, users.c.email, users.c.name)
            .outerjoin(users, users.c.subject == wm.c.subject)
            .where(wm.c.workspace_id == workspace_id, wm.c.subject == subject)
        ).first()
        return None if row is None else _member(row)

    def count_admins(self, workspace_id: str) -> int:
        wm = orm.workspace_members
        stmt = select(func.count()).where(
            and_(wm.c.workspace_id == workspace_id, wm.c.role == Role.ADMIN.label)
        )
        return int(self._c.execute(stmt).scalar_one())

    def add_member(self, workspace_id: str, subject: str, role: Role, now: datetime) -> None:
        self._c.execute(
            insert(orm.workspace_members).values(
                workspace_id=workspace_id, subject=subject, role=role.label, created_at=now
            )
        )

    def set_member_role(self, workspace_id: str, subject: str, role: Role) -> None:
        wm = orm.workspace_members
        self._c.execute(
            update(wm)
            .where(wm.c.workspace_id == workspace_id, wm.c.subject == subject)
            .values(role=role.label)
        )

    def remove_member(self, workspace_id: str, subject: str) -> None:
        wm = orm.workspace_members
        self._c.execute(
            delete(wm).where(wm.c.workspace_id == workspace_id, wm.c.subject == subject)
        )


def _member(row: Any) -> WorkspaceMember:
    return WorkspaceMember(
        subject=row.subject,
        role=Role.parse(row.role),
        email=row.email,
        name=row.name,
        created_at=_utc(row.created_at),
    )
