"""An in-memory store for use-case tests: the rules without HTTP or SQL.

``FakeStore`` is a unit-of-work factory like ``domain.database.Database``: each
unit of work works on a copy of the store's state, which ``commit()`` makes the store's; leaving
the block without committing discards the copy (so "rolls back on error" holds here too). The
repositories keep the behaviour the use cases rely on (workspace scoping, unique names,
conditional writes); what only SQL can show (locks, concurrency, the dialects) is tested in
``tests/integration`` against a real database.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Any

from domain.audit import AuditEntry
from domain.authoring import AuthoringSession
from domain.cost import MemberCost
from domain.kernel import Actor, DuplicateName, Role, Signal, new_id
from domain.members import Crew, Handoff, Member, Version, VersionStatus
from domain.runs import (
    Approval,
    ApprovalFilter,
    ApprovalStatus,
    IdempotencyKeyReused,
    Run,
    RunEvent,
    RunFilter,
    RunStatus,
)
from domain.runs.repository import RunOwnership
from domain.workspaces import Membership, Workspace, WorkspaceAccess


@dataclass
class State:
    """Everything the fake database holds."""

    crews: dict[str, Crew] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    versions: dict[tuple[str, int], Version] = field(default_factory=dict)
    handoffs: dict[str, list[Handoff]] = field(default_factory=dict)
    handoffs_updated: dict[str, datetime] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    runs: dict[str, Run] = field(default_factory=dict)
    events: dict[str, list[RunEvent]] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    approvals: dict[str, Approval] = field(default_factory=dict)
    cost: list[tuple[str, str, str, int, int, float, datetime]] = field(default_factory=list)
    notes: dict[tuple[str, str], str] = field(default_factory=dict)
    sessions: dict[str, AuthoringSession] = field(default_factory=dict)
    workspaces: dict[str, Workspace] = field(default_factory=dict)
    memberships: dict[tuple[str, str], Membership] = field(default_factory=dict)
    signals: list[Signal] = field(default_factory=list)


class FakeStore:
    """A unit-of-work factory over in-memory state; ``signals`` lists what was committed."""

    def __init__(self) -> None:
        self.state = State()
        self.commits = 0

    def __call__(self, *, write: bool = False) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)

    @property
    def signals(self) -> list[Signal]:
        return self.state.signals


class FakeUnitOfWork:
    def __init__(self, store: FakeStore) -> None:
        self._store = store
        self._state = copy.deepcopy(store.state)
        self._recorded: list[Signal] = []
        self.members = FakeMembers(self._state)
        self.audit = FakeAudit(self._state)
        self.runs = FakeRuns(self._state)
        self.cost = FakeCost(self._state)
        self.budgets = FakeBudgets()
        self.notes = FakeNotes(self._state)
        self.tool_servers = FakeToolServers()
        self.authoring = FakeAuthoring(self._state)
        self.workspaces = FakeWorkspaces(self._state)

    def __enter__(self) -> FakeUnitOfWork:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def record(self, signal: Signal) -> None:
        self._recorded.append(signal)

    def commit(self) -> None:
        self._state.signals.extend(self._recorded)
        self._recorded = []
        self._store.state = copy.deepcopy(self._state)
        self._store.commits += 1


class FakeMembers:
    def __init__(self, state: State) -> None:
        self._s = state

    def add_crew(self, crew: Crew) -> None:
        if any(c.workspace_id == crew.workspace_id and c.name == crew.name for c in self._crews()):
            raise DuplicateName("crew", crew.name)
        self._s.crews[crew.id] = crew

    def get_crew(self, workspace_id: str, crew_id: str) -> Crew | None:
        crew = self._s.crews.get(crew_id)
        return crew if crew is not None and crew.workspace_id == workspace_id else None

    def list_crews(
        self, workspace_id: str, after: str | None, limit: int, name_contains: str | None
    ) -> list[Crew]:
        rows = [
            c
            for c in self._crews()
            if c.workspace_id == workspace_id
            and (name_contains is None or name_contains.lower() in c.name.lower())
        ]
        return _page(rows, after, limit)

    def add_member(self, member: Member) -> None:
        taken = any(
            m.workspace_id == member.workspace_id and m.name == member.name
            for m in self._s.members.values()
        )
        if taken:
            raise DuplicateName("member", member.name)
        self._s.members[member.id] = member

    def get_member(self, workspace_id: str, member_id: str) -> Member | None:
        member = self._s.members.get(member_id)
        return member if member is not None and member.workspace_id == workspace_id else None

    def get_member_to_run(
        self, workspace_id: str, member_id: str, *, dry_run: bool
    ) -> tuple[Member, Version | None] | None:
        member = self.get_member(workspace_id, member_id)
        if member is None:
            return None
        number = member.version_to_run(dry_run=dry_run)
        return member, None if number is None else self.get_version(workspace_id, member_id, number)

    def save(self, member: Member) -> None:
        self._s.members[member.id] = member

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
        rows = [
            m
            for m in sorted(self._s.members.values(), key=lambda m: m.id)
            if m.workspace_id == workspace_id
            and (include_archived or not m.archived)
            and (crew_id is None or m.crew_id == crew_id)
            and (status is None or m.status == status)
            and (name_contains is None or name_contains.lower() in m.name.lower())
        ]
        return _page(rows, after, limit)

    def name_taken_by_other(self, member: Member) -> bool:
        return any(
            m.workspace_id == member.workspace_id and m.name == member.name and m.id != member.id
            for m in self._s.members.values()
        )

    def member_references(self, member_id: str) -> list[str]:
        reasons = []
        if any(r.member_id == member_id for r in self._s.runs.values()):
            reasons.append("it has runs")
        if any(member_id in targets for targets in self.handoff_graph_all().values()):
            reasons.append("other members hand off to it")
        return reasons

    def handoff_graph_all(self) -> dict[str, list[str]]:
        return {m: [h.target_member_id for h in hs] for m, hs in self._s.handoffs.items()}

    def delete_member(self, member_id: str) -> None:
        self._s.members.pop(member_id, None)
        self._s.handoffs.pop(member_id, None)
        self._s.versions = {k: v for k, v in self._s.versions.items() if v.member_id != member_id}

    def save_crew(self, crew: Crew) -> None:
        if any(
            c.workspace_id == crew.workspace_id and c.name == crew.name and c.id != crew.id
            for c in self._crews()
        ):
            raise DuplicateName("crew", crew.name)
        self._s.crews[crew.id] = crew

    def count_crew_members(self, crew_id: str) -> int:
        return sum(1 for m in self._s.members.values() if m.crew_id == crew_id)

    def crew_referenced(self, crew_id: str) -> bool:
        return False

    def delete_crew(self, crew_id: str) -> None:
        self._s.crews.pop(crew_id, None)

    def existing_member_ids(self, workspace_id: str, ids: Any) -> set[str]:
        return {i for i in ids if self.get_member(workspace_id, i) is not None}

    def add_version(self, version: Version) -> None:
        self._s.versions[(version.member_id, version.number)] = version

    def get_version(self, workspace_id: str, member_id: str, number: int) -> Version | None:
        version = self._s.versions.get((member_id, number))
        return version if version is not None and version.workspace_id == workspace_id else None

    def replace_draft_definition(self, version_id: str, definition: Any, now: datetime) -> int:
        for key, version in self._s.versions.items():
            if version.id == version_id and version.status is VersionStatus.DRAFT:
                self._s.versions[key] = replace(version, definition=definition, updated_at=now)
                return 1
        return 0

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
        for key, version in self._s.versions.items():
            if version.id == version_id and version.status is VersionStatus.DRAFT:
                self._s.versions[key] = replace(
                    version,
                    status=VersionStatus.PUBLISHED,
                    program=program,
                    artifact_hash=artifact_hash,
                    updated_at=now,
                    published_at=now,
                    published_by=by,
                )
                return 1
        return 0

    def list_versions(
        self,
        workspace_id: str,
        member_id: str,
        after: str | None,
        limit: int,
        status: str | None = None,
    ) -> list[Version]:
        rows = [
            v
            for v in sorted(self._s.versions.values(), key=lambda v: v.id)
            if v.workspace_id == workspace_id
            and v.member_id == member_id
            and (status is None or v.status.value == status)
        ]
        return _page(rows, after, limit)

    def lock_handoff_graph(self, workspace_id: str) -> None:
        return None

    def get_handoffs(self, workspace_id: str, member_id: str) -> list[Handoff]:
        if self.get_member(workspace_id, member_id) is None:
            return []
        return list(self._s.handoffs.get(member_id, []))

    def replace_handoffs(self, workspace_id: str, member_id: str, handoffs: Any) -> None:
        self._s.handoffs[member_id] = list(handoffs)

    def touch_handoffs(self, member_id: str, now: datetime) -> None:
        self._s.handoffs_updated[member_id] = now

    def handoffs_updated_at(self, member_id: str) -> datetime | None:
        return self._s.handoffs_updated.get(member_id)

    def handoff_graph(self, workspace_id: str) -> dict[str, list[str]]:
        return {
            member_id: [h.target_member_id for h in items]
            for member_id, items in self._s.handoffs.items()
            if items and self.get_member(workspace_id, member_id) is not None
        }

    def _crews(self) -> list[Crew]:
        return sorted(self._s.crews.values(), key=lambda c: c.id)


class FakeAudit:
    def __init__(self, state: State) -> None:
        self._s = state

    def append(
        self,
        actor: Actor,
        action: str,
        subject_type: str,
        subject_id: str,
        data: dict[str, Any],
        now: datetime,
    ) -> None:
        self._s.audit.append(
            AuditEntry(
                new_id("aud"),
                actor.workspace_id,
                now,
                actor.subject,
                actor.kind.value,
                action,
                subject_type,
                subject_id,
                data,
            )
        )

    def entries(self, workspace_id: str, subject_id: str) -> list[AuditEntry]:
        return [
            e
            for e in self._s.audit
            if e.workspace_id == workspace_id and e.subject_id == subject_id
        ]


class FakeRuns:
    def __init__(self, state: State) -> None:
        self._s = state

    def add(self, run: Run, events: Any, now: datetime) -> Run:
        self._s.events[run.id] = []
        stored = self.append_events(run, events, now)
        self._s.runs[run.id] = stored
        return stored

    def get(self, workspace_id: str | None, run_id: str) -> Run | None:
        run = self._s.runs.get(run_id)
        if run is None or (workspace_id is not None and run.workspace_id != workspace_id):
            return None
        return run

    def stored_as(self, run: Run) -> None:
        pass

    def ownership(self, run_id: str) -> RunOwnership | None:
        run = self._s.runs.get(run_id)
        if run is None:
            return None
        return RunOwnership(run.status, run.claimed_by, run.next_seq, run.lease_expires_at)

    def save(
        self, run: Run, *, expect_status: RunStatus | None = None, lease: bool = False
    ) -> bool:
        current = self._s.runs[run.id]
        if expect_status is not None and current.status is not expect_status:
            return False
        if not lease and run.status is RunStatus.RUNNING:
            run = replace(run, lease_expires_at=current.lease_expires_at)
        self._s.runs[run.id] = run
        return True

    def save_step(
        self,
        run: Run,
        events: Any,
        now: datetime,
        *,
        since: Run | None,
        lease: bool = False,
    ) -> Run | None:
        current = self._s.runs[run.id]
        if since is not None and (
            current.status is not RunStatus.RUNNING
            or current.claimed_by != since.claimed_by
            or current.next_seq != since.next_seq
        ):
            return None
        stored = self.append_events(run, events, now)
        self.save(stored, lease=lease)
        return stored

    def extend_lease(self, run_id: str, until: datetime) -> None:
        self._s.runs[run_id] = replace(self._s.runs[run_id], lease_expires_at=until)

    def list_runs(
        self, workspace_id: str, before: str | None, limit: int, where: RunFilter
    ) -> list[Run]:
        rows = [
            r
            for r in sorted(self._s.runs.values(), key=lambda r: r.id, reverse=True)
            if r.workspace_id == workspace_id
            and (before is None or r.id < before)
            and (where.member_id is None or r.member_id == where.member_id)
            and (where.status is None or r.status is where.status)
            and (where.origin is None or r.origin is where.origin)
            and (where.parent_run_id is None or r.parent_run_id == where.parent_run_id)
        ]
        return rows[: limit + 1]

    def count_runs(self, workspace_id: str, where: RunFilter) -> int:
        return len(self.list_runs(workspace_id, None, len(self._s.runs), where))

    def claimable(self, now: datetime) -> Run | None:
        for run in sorted(self._s.runs.values(), key=lambda r: r.id):
            if run.status is RunStatus.QUEUED:
                return run
            expired = run.lease_expires_at is not None and run.lease_expires_at < now
            if run.status is RunStatus.RUNNING and expired:
                return run
        return None

    def append_events(self, run: Run, events: Any, now: datetime) -> Run:
        timeline = self._s.events.setdefault(run.id, [])
        for offset, (event_type, data) in enumerate(events):
            timeline.append(RunEvent(run.id, run.next_seq + offset, now, event_type, data))
        return run.with_next_seq(run.next_seq + len(events))

    def list_events(
        self, workspace_id: str, run_id: str, after_seq: int, limit: int
    ) -> list[RunEvent]:
        if self.get(workspace_id, run_id) is None:
            return []
        return [e for e in self._s.events.get(run_id, []) if e.seq > after_seq][: limit + 1]

    def find_idempotency_key(self, workspace_id: str, key: str) -> tuple[str, str] | None:
        return self._s.idempotency.get((workspace_id, key))

    def add_idempotency_key(
        self, workspace_id: str, key: str, request_hash: str, run_id: str, now: datetime
    ) -> None:
        if (workspace_id, key) in self._s.idempotency:
            raise IdempotencyKeyReused(key)
        self._s.idempotency[(workspace_id, key)] = (request_hash, run_id)

    def add_approval(self, approval: Approval) -> None:
        self._s.approvals[approval.id] = approval

    def get_approval(self, workspace_id: str, approval_id: str) -> Approval | None:
        approval = self._s.approvals.get(approval_id)
        return approval if approval is not None and approval.workspace_id == workspace_id else None

    def decide_approval(
        self, approval_id: str, status: ApprovalStatus, by: str, reason: str | None, now: datetime
    ) -> bool:
        approval = self._s.approvals[approval_id]
        if approval.status is not ApprovalStatus.PENDING:
            return False
        self._s.approvals[approval_id] = replace(
            approval, status=status, decided_by=by, decided_at=now, reason=reason
        )
        return True

    def overdue_ids(self, now: datetime, limit: int) -> list[str]:
        live = (RunStatus.QUEUED, RunStatus.RUNNING)
        return sorted(
            r.id
            for r in self._s.runs.values()
            if r.status in live and r.deadline_at is not None and r.deadline_at < now
        )[:limit]

    def expired_approval_ids(self, now: datetime, limit: int) -> list[str]:
        return sorted(
            a.id
            for a in self._s.approvals.values()
            if a.status is ApprovalStatus.PENDING
            and a.expires_at is not None
            and a.expires_at < now
        )[:limit]

    def get_any_approval(self, approval_id: str) -> Approval | None:
        return self._s.approvals.get(approval_id)

    def close_pending_approvals(
        self, run_id: str, status: ApprovalStatus, by: str, now: datetime
    ) -> list[str]:
        closed = [
            a.id
            for a in self._s.approvals.values()
            if a.run_id == run_id and a.status is ApprovalStatus.PENDING
        ]
        for approval_id in closed:
            self.decide_approval(approval_id, status, by, None, now)
        return closed

    def list_approvals(
        self, workspace_id: str, after: str | None, limit: int, where: ApprovalFilter
    ) -> list[Approval]:
        rows = [
            a
            for a in sorted(self._s.approvals.values(), key=lambda a: a.id)
            if a.workspace_id == workspace_id
            and (where.status is None or a.status is where.status)
            and (where.run_id is None or a.run_id == where.run_id)
            and (where.member_id is None or a.member_id == where.member_id)
        ]
        return _page(rows, after, limit)

    def count_approvals(self, workspace_id: str, where: ApprovalFilter) -> int:
        return len(self.list_approvals(workspace_id, None, len(self._s.approvals), where))


class FakeBudgets:
    """No budgets: every run is covered by none (budgets are tested against real databases)."""

    def covering(self, workspace_id: str, crew_id: str, member_id: str) -> list[Any]:
        return []


class FakeCost:
    def __init__(self, state: State) -> None:
        self._s = state

    def add(
        self,
        workspace_id: str,
        run_id: str,
        member_id: str,
        model: str,
        tokens_in: int,
        tokens_out: int,
        cost_units: float,
        now: datetime,
    ) -> None:
        self._s.cost.append(
            (workspace_id, run_id, member_id, tokens_in, tokens_out, cost_units, now)
        )

    def by_member(self, workspace_id: str, start: datetime, end: datetime) -> list[MemberCost]:
        totals: dict[str, list[Any]] = {}
        for run in self._s.runs.values():
            if run.workspace_id == workspace_id and start <= run.created_at < end:
                totals.setdefault(run.member_id, [0, 0, 0, 0.0])[0] += 1
        for ws, _run, member, tokens_in, tokens_out, units, at in self._s.cost:
            if ws == workspace_id and start <= at < end:
                entry = totals.setdefault(member, [0, 0, 0, 0.0])
                entry[1] += tokens_in
                entry[2] += tokens_out
                entry[3] += units
        return [MemberCost(m, v[0], v[1], v[2], round(v[3], 6)) for m, v in sorted(totals.items())]


class FakeNotes:
    def __init__(self, state: State) -> None:
        self._s = state

    def read(self, workspace_id: str, key: str) -> str | None:
        return self._s.notes.get((workspace_id, key))

    def write(self, workspace_id: str, key: str, value: str, now: datetime) -> None:
        self._s.notes[(workspace_id, key)] = value


class FakeToolServers:
    """No tool servers: a definition naming an ``mcp:`` tool finds it missing."""

    def get_by_name(self, workspace_id: str, name: str) -> None:
        return None


class FakeAuthoring:
    def __init__(self, state: State) -> None:
        self._s = state

    def add(self, session: AuthoringSession) -> None:
        self._s.sessions[session.id] = session

    def get(self, workspace_id: str, session_id: str) -> AuthoringSession | None:
        session = self._s.sessions.get(session_id)
        return session if session is not None and session.workspace_id == workspace_id else None

    def save(self, session: AuthoringSession) -> None:
        self._s.sessions[session.id] = session


class FakeWorkspaces:
    def __init__(self, state: State) -> None:
        self._s = state

    def get(self, workspace_id: str) -> Workspace | None:
        return self._s.workspaces.get(workspace_id)

    def exists(self, workspace_id: str) -> bool:
        return workspace_id in self._s.workspaces

    def lock(self, workspace_id: str) -> None:
        return None

    def add(self, workspace: Workspace) -> None:
        self._s.workspaces[workspace.id] = workspace

    def save(self, workspace: Workspace) -> None:
        self._s.workspaces[workspace.id] = workspace

    def access(self, subject: str, workspace_id: str) -> WorkspaceAccess | None:
        membership = self._s.memberships.get((workspace_id, subject))
        workspace = self._s.workspaces.get(workspace_id)
        if membership is None or workspace is None:
            return None
        return WorkspaceAccess(workspace_id, workspace.name, subject, membership.role)

    def accesses(self, subject: str, after: str | None, limit: int) -> list[WorkspaceAccess]:
        found = [self.access(subject, w) for w in sorted(self._s.workspaces)]
        rows = [a for a in found if a is not None and (after is None or a.workspace_id > after)]
        return rows[: limit + 1]

    def list_memberships(
        self, workspace_id: str, after: str | None, limit: int
    ) -> list[Membership]:
        rows = [
            m
            for (ws, subject), m in sorted(self._s.memberships.items())
            if ws == workspace_id and (after is None or subject > after)
        ]
        return rows[: limit + 1]

    def get_membership(self, workspace_id: str, subject: str) -> Membership | None:
        return self._s.memberships.get((workspace_id, subject))

    def count_admins(self, workspace_id: str) -> int:
        return sum(
            1
            for (ws, _), m in self._s.memberships.items()
            if ws == workspace_id and m.role is Role.ADMIN
        )

    def add_membership(self, workspace_id: str, subject: str, role: Role, now: datetime) -> None:
        self._s.memberships[(workspace_id, subject)] = Membership(subject, role, None, None, now)

    def set_role(self, workspace_id: str, subject: str, role: Role) -> None:
        current = self._s.memberships[(workspace_id, subject)]
        self._s.memberships[(workspace_id, subject)] = replace(current, role=role)

    def remove_membership(self, workspace_id: str, subject: str) -> None:
        del self._s.memberships[(workspace_id, subject)]


def _page(rows: list[Any], after: str | None, limit: int) -> list[Any]:
    if after is not None:
        rows = [r for r in rows if r.id > after]
    return rows[: limit + 1]
