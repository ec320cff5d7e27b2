"""Persistence of domain objects over one SQLAlchemy connection (inside a unit of work).

Every query is scoped by ``workspace_id``. Rows are converted to the frozen dataclasses of
``domain.model``; nothing outside this module and ``domain.orm`` sees SQLAlchemy. Constraint
violations become domain errors here. Nothing in this module commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from domain import orm
from domain.errors import DuplicateName
from domain.ids import new_id
from domain.model import (
    Actor,
    Crew,
    Definition,
    Handoff,
    HandoffCondition,
    Member,
    Membership,
    Role,
    Version,
    VersionStatus,
    Workspace,
)


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _page(stmt: Select[Any], id_column: Any, after: str | None, limit: int) -> Select[Any]:
    if after is not None:
        stmt = stmt.where(id_column > after)
    return stmt.order_by(id_column).limit(limit + 1)


class Repository:
    """Reads and writes for one transaction; ``for_update`` takes row locks on PostgreSQL."""

    def __init__(self, connection: Connection, *, for_update: bool = False) -> None:
        self._c = connection
        self._for_update = for_update and connection.dialect.name == "postgresql"

    # -- workspaces and memberships ------------------------------------------------------

    def get_workspace(self, workspace_id: str) -> Workspace | None:
        row = self._c.execute(
            select(orm.workspaces).where(orm.workspaces.c.id == workspace_id)
        ).first()
        return None if row is None else _workspace(row)

    def workspace_exists(self, workspace_id: str) -> bool:
        stmt = select(orm.workspaces.c.id).where(orm.workspaces.c.id == workspace_id)
        return self._c.execute(stmt).first() is not None

    def lock_workspace(self, workspace_id: str) -> None:
        """Serialise writers of one workspace (PostgreSQL row lock; SQLite locks the file)."""
        stmt = select(orm.workspaces.c.id).where(orm.workspaces.c.id == workspace_id)
        if self._for_update:
            stmt = stmt.with_for_update()
        self._c.execute(stmt)

    def add_workspace(self, workspace: Workspace) -> None:
        self._c.execute(
            insert(orm.workspaces).values(
                id=workspace.id,
                tenant_id=workspace.tenant_id,
                name=workspace.name,
                description=workspace.description,
                created_at=workspace.created_at,
                updated_at=workspace.updated_at,
            )
        )

    def update_workspace(self, workspace_id: str, values: dict[str, object]) -> None:
        self._c.execute(
            update(orm.workspaces).where(orm.workspaces.c.id == workspace_id).values(**values)
        )

    def get_membership_role(self, workspace_id: str, subject: str) -> Role | None:
        row = self._c.execute(
            select(orm.workspace_members.c.role).where(
                orm.workspace_members.c.workspace_id == workspace_id,
                orm.workspace_members.c.subject == subject,
            )
        ).first()
        return None if row is None else Role.parse(row.role)

    def put_membership(self, workspace_id: str, subject: str, role: Role, now: datetime) -> None:
        table = orm.workspace_members
        found = self.get_membership_role(workspace_id, subject)
        if found is None:
            self._c.execute(
                insert(table).values(
                    workspace_id=workspace_id, subject=subject, role=role.label, created_at=now
                )
            )
        elif found is not role:
            self._c.execute(
                update(table)
                .where(table.c.workspace_id == workspace_id, table.c.subject == subject)
                .values(role=role.label)
            )

    def list_memberships(self, subject: str, after: str | None, limit: int) -> list[Membership]:
        wm, ws = orm.workspace_members, orm.workspaces
        stmt = (
            select(wm.c.workspace_id, wm.c.subject, wm.c.role, ws.c.name)
            .join(ws, ws.c.id == wm.c.workspace_id)
            .where(wm.c.subject == subject)
        )
        rows = self._c.execute(_page(stmt, wm.c.workspace_id, after, limit)).all()
        return [Membership(r.workspace_id, r.name, r.subject, Role.parse(r.role)) for r in rows]

    # -- crews ---------------------------------------------------------------------------

    def add_crew(self, crew: Crew) -> None:
        if self._name_taken(orm.crews, crew.workspace_id, crew.name):
            raise DuplicateName("crew", crew.name)
        try:
            with self._c.begin_nested():
                self._c.execute(
                    insert(orm.crews).values(
                        id=crew.id,
                        workspace_id=crew.workspace_id,
                        name=crew.name,
                        description=crew.description,
                        created_at=crew.created_at,
                        updated_at=crew.updated_at,
                    )
                )
        except IntegrityError as exc:  # a concurrent insert won the race
            raise DuplicateName("crew", crew.name) from exc

    def get_crew(self, workspace_id: str, crew_id: str) -> Crew | None:
        row = self._c.execute(
            select(orm.crews).where(
                orm.crews.c.workspace_id == workspace_id, orm.crews.c.id == crew_id
            )
        ).first()
        return None if row is None else _crew(row)

    def list_crews(
        self, workspace_id: str, after: str | None, limit: int, name_contains: str | None
    ) -> list[Crew]:
        stmt = select(orm.crews).where(orm.crews.c.workspace_id == workspace_id)
        if name_contains:
            stmt = stmt.where(_contains(orm.crews.c.name, name_contains))
        rows = self._c.execute(_page(stmt, orm.crews.c.id, after, limit)).all()
        return [_crew(r) for r in rows]

    # -- members -------------------------------------------------------------------------

    def add_member(self, member: Member) -> None:
        if self._name_taken(orm.members, member.workspace_id, member.name):
            raise DuplicateName("member", member.name)
        try:
            with self._c.begin_nested():
                self._c.execute(
                    insert(orm.members).values(
                        id=member.id,
                        workspace_id=member.workspace_id,
                        crew_id=member.crew_id,
                        name=member.name,
                        description=member.description,
                        active_version_id=member.active_version_id,
                        active_version_number=member.active_version_number,
                        draft_version_number=member.draft_version_number,
                        latest_version_number=member.latest_version_number,
                        identity=member.identity,
                        created_at=member.created_at,
                        updated_at=member.updated_at,
                    )
                )
        except IntegrityError as exc:
            raise DuplicateName("member", member.name) from exc

    def get_member(self, workspace_id: str, member_id: str) -> Member | None:
        stmt = select(orm.members).where(
            orm.members.c.workspace_id == workspace_id, orm.members.c.id == member_id
        )
        if self._for_update:
            stmt = stmt.with_for_update()
        row = self._c.execute(stmt).first()
        return None if row is None else _member(row)

    def update_member(self, member_id: str, values: dict[str, object]) -> None:
        self._c.execute(update(orm.members).where(orm.members.c.id == member_id).values(**values))

    def list_members(
        self,
        workspace_id: str,
        after: str | None,
        limit: int,
        *,
        crew_id: str | None = None,
        status: str | None = None,
        name_contains: str | None = None,
    ) -> list[Member]:
        m = orm.members
        stmt = select(m).where(m.c.workspace_id == workspace_id)
        if crew_id is not None:
            stmt = stmt.where(m.c.crew_id == crew_id)
        if status == "published":
            stmt = stmt.where(m.c.active_version_id.is_not(None))
        elif status == "draft":
            stmt = stmt.where(m.c.active_version_id.is_(None))
        if name_contains:
            stmt = stmt.where(_contains(m.c.name, name_contains))
        rows = self._c.execute(_page(stmt, m.c.id, after, limit)).all()
        return [_member(r) for r in rows]

    def existing_member_ids(self, workspace_id: str, ids: Iterable[str]) -> set[str]:
        wanted = set(ids)
        if not wanted:
            return set()
        rows = self._c.execute(
            select(orm.members.c.id).where(
                orm.members.c.workspace_id == workspace_id, orm.members.c.id.in_(wanted)
            )
        ).all()
        return {r.id for r in rows}

    # -- versions ------------------------------------------------------------------------

    def add_version(self, version: Version) -> None:
        self._c.execute(
            insert(orm.member_versions).values(
                id=version.id,
                workspace_id=version.workspace_id,
                member_id=version.member_id,
                number=version.number,
                status=version.status.value,
                definition=version.definition.to_json(),
                program=version.program,
                artifact=None,
                artifact_hash=version.artifact_hash,
                created_at=version.created_at,
                created_by=version.created_by,
                updated_at=version.updated_at,
                published_at=version.published_at,
                published_by=version.published_by,
            )
        )

    def get_version(self, workspace_id: str, member_id: str, number: int) -> Version | None:
        v = orm.member_versions
        row = self._c.execute(
            select(v).where(
                v.c.workspace_id == workspace_id, v.c.member_id == member_id, v.c.number == number
            )
        ).first()
        return None if row is None else _version(row)

    def replace_draft_definition(
        self, version_id: str, definition: Definition, now: datetime
    ) -> int:
        v = orm.member_versions
        result = self._c.execute(
            update(v)
            .where(v.c.id == version_id, v.c.status == VersionStatus.DRAFT.value)
            .values(definition=definition.to_json(), updated_at=now)
        )
        return int(result.rowcount)

    def mark_published(
        self,
        version_id: str,
        *,
        program: dict[str, object],
        artifact: bytes,
        artifact_hash: str,
        now: datetime,
        by: str,
    ) -> int:
        """Freeze a draft; returns the number of rows changed (0 if it was not a draft)."""
        v = orm.member_versions
        result = self._c.execute(
            update(v)
            .where(v.c.id == version_id, v.c.status == VersionStatus.DRAFT.value)
            .values(
                status=VersionStatus.PUBLISHED.value,
                program=program,
                artifact=artifact.decode("utf-8"),
                artifact_hash=artifact_hash,
                updated_at=now,
                published_at=now,
                published_by=by,
            )
        )
        return int(result.rowcount)

    def get_artifact(self, version_id: str) -> bytes | None:
        row = self._c.execute(
            select(orm.member_versions.c.artifact).where(orm.member_versions.c.id == version_id)
        ).first()
        return None if row is None or row.artifact is None else str(row.artifact).encode("utf-8")

    def list_versions(
        self,
        workspace_id: str,
        member_id: str,
        after: str | None,
        limit: int,
        status: str | None = None,
    ) -> list[Version]:
        v = orm.member_versions
        stmt = select(v).where(v.c.workspace_id == workspace_id, v.c.member_id == member_id)
        if status is not None:
            stmt = stmt.where(v.c.status == status)
        rows = self._c.execute(_page(stmt, v.c.id, after, limit)).all()
        return [_version(r) for r in rows]

    # -- handoffs ------------------------------------------------------------------------

    def get_handoffs(self, workspace_id: str, member_id: str) -> list[Handoff]:
        h = orm.handoffs
        rows = self._c.execute(
            select(h)
            .where(h.c.workspace_id == workspace_id, h.c.member_id == member_id)
            .order_by(h.c.position)
        ).all()
        return [_handoff(r) for r in rows]

    def replace_handoffs(
        self, workspace_id: str, member_id: str, handoffs: Sequence[Handoff]
    ) -> None:
        h = orm.handoffs
        self._c.execute(h.delete().where(h.c.member_id == member_id))
        if handoffs:
            self._c.execute(
                insert(h),
                [
                    {
                        "workspace_id": workspace_id,
                        "member_id": member_id,
                        "position": position,
                        "target_member_id": item.target_member_id,
                        "condition": None
                        if item.condition is None
                        else {
                            "output_field": item.condition.output_field,
                            "equals": item.condition.equals,
                        },
                    }
                    for position, item in enumerate(handoffs)
                ],
            )

    def handoffs_updated_at(self, member_id: str) -> datetime | None:
        row = self._c.execute(
            select(orm.members.c.handoffs_updated_at).where(orm.members.c.id == member_id)
        ).first()
        return None if row is None else _utc_or_none(row.handoffs_updated_at)

    def handoff_graph(self, workspace_id: str) -> dict[str, list[str]]:
        h = orm.handoffs
        rows = self._c.execute(
            select(h.c.member_id, h.c.target_member_id)
            .where(h.c.workspace_id == workspace_id)
            .order_by(h.c.member_id, h.c.position)
        ).all()
        graph: dict[str, list[str]] = {}
        for r in rows:
            graph.setdefault(r.member_id, []).append(r.target_member_id)
        return graph

    # -- audit ---------------------------------------------------------------------------

    def append_audit(
        self,
        actor: Actor,
        action: str,
        subject_type: str,
        subject_id: str,
        data: dict[str, object],
        now: datetime,
    ) -> None:
        self._c.execute(
            insert(orm.audit_log).values(
                id=new_id("aud"),
                workspace_id=actor.workspace_id,
                at=now,
                actor_subject=actor.subject,
                actor_kind=actor.kind.value,
                action=action,
                subject_type=subject_type,
                subject_id=subject_id,
                data=data,
            )
        )

    def audit_entries(self, workspace_id: str, subject_id: str) -> list[dict[str, Any]]:
        a = orm.audit_log
        rows = self._c.execute(
            select(a)
            .where(a.c.workspace_id == workspace_id, a.c.subject_id == subject_id)
            .order_by(a.c.id)
        ).all()
        return [dict(r._mapping) for r in rows]

    # -- helpers -------------------------------------------------------------------------

    def _name_taken(self, table: Any, workspace_id: str, name: str) -> bool:
        stmt = select(table.c.id).where(
            and_(table.c.workspace_id == workspace_id, table.c.name == name)
        )
        return self._c.execute(stmt).first() is not None


def _contains(column: Any, text: str) -> Any:
    return func.lower(column).contains(text.lower(), autoescape=True)


def _workspace(row: Any) -> Workspace:
    return Workspace(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        description=row.description,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )


def _crew(row: Any) -> Crew:
    return Crew(
        id=row.id,
        workspace_id=row.workspace_id,
        name=row.name,
        description=row.description,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )


def _member(row: Any) -> Member:
    return Member(
        id=row.id,
        workspace_id=row.workspace_id,
        crew_id=row.crew_id,
        name=row.name,
        description=row.description,
        active_version_id=row.active_version_id,
        active_version_number=row.active_version_number,
        draft_version_number=row.draft_version_number,
        latest_version_number=row.latest_version_number,
        identity=row.identity,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )


def _version(row: Any) -> Version:
    return Version(
        id=row.id,
        workspace_id=row.workspace_id,
        member_id=row.member_id,
        number=row.number,
        status=VersionStatus(row.status),
        definition=Definition.from_json(row.definition),
        program=row.program,
        artifact_hash=row.artifact_hash,
        created_at=_utc(row.created_at),
        created_by=row.created_by,
        updated_at=_utc(row.updated_at),
        published_at=_utc_or_none(row.published_at),
        published_by=row.published_by,
    )


def _handoff(row: Any) -> Handoff:
    condition = row.condition
    return Handoff(
        target_member_id=row.target_member_id,
        condition=None
        if condition is None
        else HandoffCondition(condition["output_field"], condition["equals"]),
    )
