"""Persistence of authoring sessions (scoped by workspace; nothing here commits)."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Connection, insert, select, update

from domain.authoring.model import AuthoringSession
from domain.members import MembersTx
from domain.persistence import tables
from domain.persistence.sql import utc


class AuthoringRepository:
    def __init__(self, connection: Connection, *, for_update: bool = False) -> None:
        self._c = connection
        self._for_update = for_update and connection.dialect.name == "postgresql"

    def add(self, session: AuthoringSession) -> None:
        self._c.execute(
            insert(tables.authoring_sessions).values(
                id=session.id,
                workspace_id=session.workspace_id,
                crew_id=session.crew_id,
                member_id=session.member_id,
                messages=session.messages,
                draft=session.draft,
                created_by=session.created_by,
                created_at=session.created_at,
                updated_at=session.updated_at,
            )
        )

    def get(self, workspace_id: str, session_id: str) -> AuthoringSession | None:
        """The session; row-locked in a writing unit of work on PostgreSQL."""
        a = tables.authoring_sessions
        stmt = select(a).where(a.c.workspace_id == workspace_id, a.c.id == session_id)
        if self._for_update:
            stmt = stmt.with_for_update()
        row = self._c.execute(stmt).first()
        return None if row is None else _session(row)

    def save(self, session: AuthoringSession) -> None:
        """Write the session's member, conversation, draft and update time."""
        a = tables.authoring_sessions
        self._c.execute(
            update(a)
            .where(a.c.id == session.id)
            .values(
                member_id=session.member_id,
                messages=session.messages,
                draft=session.draft,
                updated_at=session.updated_at,
            )
        )


class AuthoringTx(MembersTx, Protocol):
    """What the authoring use cases need of a unit of work."""

    authoring: AuthoringRepository


def _session(row: Any) -> AuthoringSession:
    return AuthoringSession(
        id=row.id,
        workspace_id=row.workspace_id,
        crew_id=row.crew_id,
        member_id=row.member_id,
        messages=list(row.messages),
        draft=row.draft,
        created_by=row.created_by,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )
