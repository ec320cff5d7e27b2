"""Persistence of crews, members, versions and handoffs over one SQLAlchemy connection.

Every query is scoped by ``workspace_id``. Rows become the frozen dataclasses of
``domain.members.model``; constraint violations become domain errors here. Nothing commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    Connection,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from domain.audit import AuditTx
from domain.kernel.errors import DuplicateName
from domain.members.model import (
    Crew,
    Definition,
    Handoff,
    HandoffCondition,
    Member,
    Version,
    VersionStatus,
)
from domain.persistence import tables
from domain.persistence.driver import DriverStatements
from domain.persistence.sql import contains, count_rows, keyset_page, utc, utc_or_none
from domain.tools import ToolServerRepository


class MemberRepository:
    """Reads and writes for one transaction; ``for_update`` takes row locks on PostgreSQL."""

    def __init__(self, connection: Connection, *, for_update: bool = False) -> None:
        self._c = connection
        self._hot = DriverStatements(connection)  # what every run start runs
        self._for_update = for_update and connection.dialect.name == "postgresql"

    # -- crews ---------------------------------------------------------------------------

    def add_crew(self, crew: Crew) -> None:
        if self._name_taken(tables.crews, crew.workspace_id, crew.name):
            raise DuplicateName("crew", crew.name)
        try:
            with self._c.begin_nested():
                self._c.execute(
                    insert(tables.crews).values(
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
            select(tables.crews).where(
                tables.crews.c.workspace_id == workspace_id, tables.crews.c.id == crew_id
            )
        ).first()
        return None if row is None else _crew(row)

    def save_crew(self, crew: Crew) -> None:
        """Write the crew's name, description and update time.

        :raises DuplicateName: another crew of the workspace has the new name.
        """
        c = tables.crews
        taken = self._c.execute(
            select(c.c.id).where(
                c.c.workspace_id == crew.workspace_id, c.c.name == crew.name, c.c.id != crew.id
            )
        ).first()
        if taken is not None:
            raise DuplicateName("crew", crew.name)
        try:
            with self._c.begin_nested():
                self._c.execute(
                    update(c)
                    .where(c.c.id == crew.id)
                    .values(
                        name=crew.name, description=crew.description, updated_at=crew.updated_at
                    )
                )
        except IntegrityError as exc:
            raise DuplicateName("crew", crew.name) from exc

    def count_crew_members(self, crew_id: str) -> int:
        """Members of the crew, archived ones included."""
        m = tables.members
        return int(self._c.execute(select(func.count()).where(m.c.crew_id == crew_id)).scalar_one())

    def crew_referenced(self, crew_id: str) -> bool:
        """Whether anything but members refers to the crew (authoring sessions)."""
        a = tables.authoring_sessions
        return self._c.execute(select(a.c.id).where(a.c.crew_id == crew_id)).first() is not None

    def delete_crew(self, crew_id: str) -> None:
        c = tables.crews
        self._c.execute(delete(c).where(c.c.id == crew_id))

    def list_crews(
        self, workspace_id: str, after: str | None, limit: int, name_contains: str | None
    ) -> list[Crew]:
        stmt = self._crews(workspace_id, name_contains)
        rows = self._c.execute(keyset_page(stmt, tables.crews.c.id, after, limit)).all()
        return [_crew(r) for r in rows]

    def count_crews(self, workspace_id: str, name_contains: str | None) -> int:
        return count_rows(self._c, self._crews(workspace_id, name_contains))

    def _crews(self, workspace_id: str, name_contains: str | None) -> Select[Any]:
        stmt = select(tables.crews).where(tables.crews.c.workspace_id == workspace_id)
        if name_contains:
            stmt = stmt.where(contains(tables.crews.c.name, name_contains))
        return stmt

    # -- members -------------------------------------------------------------------------

    def add_member(self, member: Member) -> None:
        if self._name_taken(tables.members, member.workspace_id, member.name):
            raise DuplicateName("member", member.name)
        try:
            with self._c.begin_nested():
                self._c.execute(
                    insert(tables.members).values(
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
                        archived_at=member.archived_at,
                        created_at=member.created_at,
                        updated_at=member.updated_at,
                    )
                )
        except IntegrityError as exc:
            raise DuplicateName("member", member.name) from exc

    def get_member(self, workspace_id: str, member_id: str) -> Member | None:
        """The member; in a writing unit of work on PostgreSQL its row is locked ``FOR UPDATE``
        (a run start, which changes nothing of it, reads it with ``get_member_to_run``)."""
        stmt = _MEMBER_BY_ID_FOR_UPDATE if self._for_update else _MEMBER_BY_ID
        row = self._c.execute(stmt, {"workspace_id": workspace_id, "member_id": member_id}).first()
        return None if row is None else _member(row)

    def get_member_to_run(
        self, workspace_id: str, member_id: str, *, dry_run: bool
    ) -> tuple[Member, Version | None] | None:
        """The member and the version a run of it executes (``Member.version_to_run``: the
        active one, or for a dry run the draft; None when it has none), read together; None
        when the member does not exist. In a writing unit of work on PostgreSQL the member's
        row is locked ``FOR SHARE`` (ADR 0057): starts of one member go on together, while a
        change of the member (publish, archive, delete) still waits for them and they for it.
        The version's row is not locked."""
        stmt = _MEMBER_TO_RUN[(dry_run, self._for_update)]
        row = self._hot.execute(
            stmt, {"workspace_id": workspace_id, "member_id": member_id}
        ).first()
        if row is None:
            return None
        if row.v_id is None:
            return _member(row), None
        return _member(row), _version(_Unprefixed(row._mapping, "v_"))

    def save(self, member: Member) -> None:
        """Write the member's mutable fields (names, crew, version pointers, identity,
        archival).

        :raises DuplicateName: another member of the workspace has the member's name.
        """
        m = tables.members
        try:
            with self._c.begin_nested():
                self._c.execute(
                    update(m)
                    .where(m.c.id == member.id)
                    .values(
                        crew_id=member.crew_id,
                        name=member.name,
                        description=member.description,
                        active_version_id=member.active_version_id,
                        active_version_number=member.active_version_number,
                        draft_version_number=member.draft_version_number,
                        latest_version_number=member.latest_version_number,
                        identity=member.identity,
                        archived_at=member.archived_at,
                        updated_at=member.updated_at,
                    )
                )
        except IntegrityError as exc:  # a concurrent rename took the name
            raise DuplicateName("member", member.name) from exc

    def name_taken_by_other(self, member: Member) -> bool:
        m = tables.members
        stmt = select(m.c.id).where(
            m.c.workspace_id == member.workspace_id, m.c.name == member.name, m.c.id != member.id
        )
        return self._c.execute(stmt).first() is not None

    def member_references(self, member_id: str) -> list[str]:
        """What refers to the member besides its own versions and outgoing handoffs."""
        checks = [
            (tables.runs, tables.runs.c.member_id, "it has runs"),
            (tables.triggers, tables.triggers.c.member_id, "it has triggers (deleted ones too)"),
            (tables.handoffs, tables.handoffs.c.target_member_id, "other members hand off to it"),
            (
                tables.authoring_sessions,
                tables.authoring_sessions.c.member_id,
                "an authoring session edits it",
            ),
        ]
        return [
            reason
            for table, column, reason in checks
            if self._c.execute(select(table.c[column.name]).where(column == member_id)).first()
            is not None
        ]

    def delete_member(self, member_id: str) -> None:
        """Delete the member with its versions and outgoing handoffs."""
        m, v, h = tables.members, tables.member_versions, tables.handoffs
        self._c.execute(delete(h).where(h.c.member_id == member_id))
        self._c.execute(delete(v).where(v.c.member_id == member_id))
        self._c.execute(delete(m).where(m.c.id == member_id))

    def list_members(
        self,
        workspace_id: str,
        after: str | None,
        limit: int,
        *,
        crew_id: str | None = None,
        status: str | None = None,
        name_contains: str | None = None,
        include_archived: bool = False,
    ) -> list[Member]:
        stmt = self._members(
            workspace_id,
            crew_id=crew_id,
            status=status,
            name_contains=name_contains,
            include_archived=include_archived,
        )
        rows = self._c.execute(keyset_page(stmt, tables.members.c.id, after, limit)).all()
        return [_member(r) for r in rows]

    def count_members(
        self,
        workspace_id: str,
        *,
        crew_id: str | None = None,
        status: str | None = None,
        name_contains: str | None = None,
        include_archived: bool = False,
    ) -> int:
        stmt = self._members(
            workspace_id,
            crew_id=crew_id,
            status=status,
            name_contains=name_contains,
            include_archived=include_archived,
        )
        return count_rows(self._c, stmt)

    def _members(
        self,
        workspace_id: str,
        *,
        crew_id: str | None,
        status: str | None,
        name_contains: str | None,
        include_archived: bool,
    ) -> Select[Any]:
        m = tables.members
        stmt = select(m).where(m.c.workspace_id == workspace_id)
        if not include_archived:
            stmt = stmt.where(m.c.archived_at.is_(None))
        if crew_id is not None:
            stmt = stmt.where(m.c.crew_id == crew_id)
        if status == "published":
            stmt = stmt.where(m.c.active_version_id.is_not(None))
        elif status == "draft":
            stmt = stmt.where(m.c.active_version_id.is_(None))
        if name_contains:
            stmt = stmt.where(contains(m.c.name, name_contains))
        return stmt

    def existing_member_ids(self, workspace_id: str, ids: Iterable[str]) -> set[str]:
        wanted = set(ids)
        if not wanted:
            return set()
        rows = self._c.execute(
            select(tables.members.c.id).where(
                tables.members.c.workspace_id == workspace_id, tables.members.c.id.in_(wanted)
            )
        ).all()
        return {r.id for r in rows}

    # -- versions ------------------------------------------------------------------------

    def add_version(self, version: Version) -> None:
        self._c.execute(
            insert(tables.member_versions).values(
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
        params = {"workspace_id": workspace_id, "member_id": member_id, "number": number}
        row = self._c.execute(_VERSION_BY_NUMBER, params).first()
        return None if row is None else _version(row)

    def replace_draft_definition(
        self, version_id: str, definition: Definition, now: datetime
    ) -> int:
        v = tables.member_versions
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
        v = tables.member_versions
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
            select(tables.member_versions.c.artifact).where(
                tables.member_versions.c.id == version_id
            )
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
        stmt = self._versions(workspace_id, member_id, status)
        rows = self._c.execute(keyset_page(stmt, tables.member_versions.c.id, after, limit)).all()
        return [_version(r) for r in rows]

    def count_versions(self, workspace_id: str, member_id: str, status: str | None) -> int:
        return count_rows(self._c, self._versions(workspace_id, member_id, status))

    def _versions(self, workspace_id: str, member_id: str, status: str | None) -> Select[Any]:
        v = tables.member_versions
        stmt = select(v).where(v.c.workspace_id == workspace_id, v.c.member_id == member_id)
        if status is not None:
            stmt = stmt.where(v.c.status == status)
        return stmt

    # -- handoffs ------------------------------------------------------------------------

    def lock_handoff_graph(self, workspace_id: str) -> None:
        """Serialise handoff changes of one workspace: the cycle check reads the whole graph
        (PostgreSQL locks the workspace row; SQLite serialises writers anyway)."""
        w = tables.workspaces
        stmt = select(w.c.id).where(w.c.id == workspace_id)
        if self._for_update:
            stmt = stmt.with_for_update()
        self._c.execute(stmt)

    def get_handoffs(self, workspace_id: str, member_id: str) -> list[Handoff]:
        params = {"workspace_id": workspace_id, "member_id": member_id}
        return [_handoff(r) for r in self._hot.execute(_HANDOFFS_OF, params).all()]

    def replace_handoffs(
        self, workspace_id: str, member_id: str, handoffs: Sequence[Handoff]
    ) -> None:
        h = tables.handoffs
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

    def touch_handoffs(self, member_id: str, now: datetime) -> None:
        m = tables.members
        self._c.execute(update(m).where(m.c.id == member_id).values(handoffs_updated_at=now))

    def handoffs_updated_at(self, member_id: str) -> datetime | None:
        row = self._c.execute(
            select(tables.members.c.handoffs_updated_at).where(tables.members.c.id == member_id)
        ).first()
        return None if row is None else utc_or_none(row.handoffs_updated_at)

    def handoff_graph(self, workspace_id: str) -> dict[str, list[str]]:
        h = tables.handoffs
        rows = self._c.execute(
            select(h.c.member_id, h.c.target_member_id)
            .where(h.c.workspace_id == workspace_id)
            .order_by(h.c.member_id, h.c.position)
        ).all()
        graph: dict[str, list[str]] = {}
        for r in rows:
            graph.setdefault(r.member_id, []).append(r.target_member_id)
        return graph

    # -- helpers -------------------------------------------------------------------------

    def _name_taken(self, table: Any, workspace_id: str, name: str) -> bool:
        stmt = select(table.c.id).where(
            and_(table.c.workspace_id == workspace_id, table.c.name == name)
        )
        return self._c.execute(stmt).first() is not None


def _crew(row: Any) -> Crew:
    return Crew(
        id=row.id,
        workspace_id=row.workspace_id,
        name=row.name,
        description=row.description,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
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
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        archived_at=utc_or_none(row.archived_at),
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
        created_at=utc(row.created_at),
        created_by=row.created_by,
        updated_at=utc(row.updated_at),
        published_at=utc_or_none(row.published_at),
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


class MembersTx(AuditTx, Protocol):
    """What the member use cases need of a unit of work."""

    members: MemberRepository
    tool_servers: ToolServerRepository


#: ``get_member``'s statement, built once: every read of a member (the busiest read of the
#: API) would otherwise build it again, which costs more CPU than SQLite takes to run it.
_MEMBER_BY_ID = select(tables.members).where(
    tables.members.c.workspace_id == bindparam("workspace_id"),
    tables.members.c.id == bindparam("member_id"),
)
_MEMBER_BY_ID_FOR_UPDATE = _MEMBER_BY_ID.with_for_update()


def _member_to_run(dry_run: bool, shared: bool) -> Select[Any]:
    m, v = tables.members, tables.member_versions
    number = m.c.draft_version_number if dry_run else m.c.active_version_number
    stmt = (
        select(*m.c, *(column.label("v_" + column.name) for column in v.c))
        .select_from(
            m.outerjoin(
                v,
                and_(
                    v.c.workspace_id == m.c.workspace_id,
                    v.c.member_id == m.c.id,
                    v.c.number == number,
                ),
            )
        )
        .where(m.c.workspace_id == bindparam("workspace_id"), m.c.id == bindparam("member_id"))
    )
    return stmt.with_for_update(read=True, of=m) if shared else stmt


#: ``get_member_to_run``'s statements by (dry run, share-locked), built once: every run start.
_MEMBER_TO_RUN = {(d, s): _member_to_run(d, s) for d in (False, True) for s in (False, True)}


class _Unprefixed:
    """A row's columns whose names start with ``prefix``, by their name without it."""

    def __init__(self, mapping: Any, prefix: str) -> None:
        self._mapping = mapping
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        return self._mapping[self._prefix + name]


#: ``get_version``'s statement, built once (a run start reads its version with
#: ``get_member_to_run`` instead).
_VERSION_BY_NUMBER = select(tables.member_versions).where(
    tables.member_versions.c.workspace_id == bindparam("workspace_id"),
    tables.member_versions.c.member_id == bindparam("member_id"),
    tables.member_versions.c.number == bindparam("number"),
)


def _handoffs_of() -> Select[Any]:
    h = tables.handoffs
    return (
        select(h)
        .where(
            h.c.workspace_id == bindparam("workspace_id"),
            h.c.member_id == bindparam("member_id"),
        )
        .order_by(h.c.position)
    )


# Built once: every run that ends reads its member's handoffs (built per call, the statement
# cost 333 us against 57 us prebuilt).
_HANDOFFS_OF = _handoffs_of()
