"""Persistence of identity: users, tenant bootstraps, login states, session codes, refresh tokens.

Secrets (state, session code, refresh token) arrive here already hashed; nothing in this module
commits. Single use is enforced by conditional writes (``DELETE``/``UPDATE ... WHERE`` checked by
row count), so two concurrent redemptions of one secret cannot both succeed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, delete, insert, select, update

from domain.identity.model import LoginState, RefreshToken, SessionCode
from domain.persistence import tables
from domain.persistence.sql import upsert_statement, utc
from domain.workspaces import WorkspacesTx


class IdentityRepository:
    """Identity reads and writes for one transaction; ``for_update`` locks rows on PostgreSQL."""

    def __init__(self, connection: Connection, *, for_update: bool = False) -> None:
        self._c = connection
        self._dialect = connection.dialect.name
        self._for_update = for_update and self._dialect == "postgresql"

    # -- login states --------------------------------------------------------------------

    def add_login_state(
        self,
        state_hash: str,
        nonce: str,
        verifier: str,
        login_challenge: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        self._c.execute(
            insert(tables.login_states).values(
                state_hash=state_hash,
                nonce=nonce,
                code_verifier=verifier,
                login_challenge=login_challenge,
                created_at=now,
                expires_at=expires_at,
            )
        )

    def purge_expired(self, now: datetime) -> None:
        """Forget login states and session codes past their expiry (keeps the tables small)."""
        self._c.execute(delete(tables.login_states).where(tables.login_states.c.expires_at < now))
        self._c.execute(delete(tables.session_codes).where(tables.session_codes.c.expires_at < now))

    def take_login_state(self, state_hash: str) -> LoginState | None:
        """Delete and return the state; None if it is unknown or another call took it first."""
        table = tables.login_states
        row = self._c.execute(select(table).where(table.c.state_hash == state_hash)).first()
        if row is None:
            return None
        deleted = self._c.execute(delete(table).where(table.c.state_hash == state_hash))
        if deleted.rowcount != 1:
            return None
        return LoginState(row.nonce, row.code_verifier, utc(row.expires_at), row.login_challenge)

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
        table = tables.users
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
        stmt: Any = upsert_statement(self._c)(tables.tenant_bootstraps).values(**values)
        # RETURNING, not rowcount: psycopg reports no row count for a skipped conflict.
        stmt = stmt.on_conflict_do_nothing(index_elements=["tenant_id"])
        return (
            self._c.execute(stmt.returning(tables.tenant_bootstraps.c.tenant_id)).first()
            is not None
        )

    def set_bootstrap_workspace(self, tenant_id: str, workspace_id: str) -> None:
        table = tables.tenant_bootstraps
        self._c.execute(
            update(table).where(table.c.tenant_id == tenant_id).values(workspace_id=workspace_id)
        )

    # -- session codes -------------------------------------------------------------------

    def add_session_code(
        self,
        code_hash: str,
        subject: str,
        tenant_id: str,
        now: datetime,
        expires_at: datetime,
        *,
        login_challenge: str,
    ) -> None:
        self._c.execute(
            insert(tables.session_codes).values(
                code_hash=code_hash,
                login_challenge=login_challenge,
                subject=subject,
                tenant_id=tenant_id,
                created_at=now,
                expires_at=expires_at,
            )
        )

    def get_session_code(self, code_hash: str) -> SessionCode | None:
        table = tables.session_codes
        row = self._c.execute(select(table).where(table.c.code_hash == code_hash)).first()
        if row is None:
            return None
        redeemed = None if row.redeemed_at is None else utc(row.redeemed_at)
        return SessionCode(
            row.subject, row.tenant_id, utc(row.expires_at), redeemed, row.login_challenge
        )

    def redeem_session_code(self, code_hash: str, now: datetime) -> bool:
        """Mark the code redeemed; False if it was redeemed (or expired) meanwhile."""
        table = tables.session_codes
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
            insert(tables.refresh_tokens).values(
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
        table = tables.refresh_tokens
        row = self._c.execute(select(table).where(table.c.token_hash == token_hash)).first()
        if row is None:
            return None
        return RefreshToken(
            id=row.id,
            family_id=row.family_id,
            subject=row.subject,
            tenant_id=row.tenant_id,
            workspace_id=row.workspace_id,
            expires_at=utc(row.expires_at),
            rotated_at=None if row.rotated_at is None else utc(row.rotated_at),
            revoked_at=None if row.revoked_at is None else utc(row.revoked_at),
        )

    def mark_rotated(self, token_id: str, now: datetime) -> bool:
        """Mark the token used; False if a concurrent refresh used (or revoked) it first."""
        table = tables.refresh_tokens
        result = self._c.execute(
            update(table)
            .where(
                table.c.id == token_id, table.c.rotated_at.is_(None), table.c.revoked_at.is_(None)
            )
            .values(rotated_at=now)
        )
        return bool(result.rowcount == 1)

    def revoke_family(self, family_id: str, now: datetime) -> None:
        table = tables.refresh_tokens
        self._c.execute(
            update(table)
            .where(table.c.family_id == family_id, table.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )


class IdentityTx(WorkspacesTx, Protocol):
    """What the login use cases need of a unit of work."""

    identity: IdentityRepository
