"""Use cases of crews, members, their drafts and versions, and handoffs.

A member's definition lives in versions numbered 1, 2, 3...; a version is a draft until it is
published, then immutable. Editing a published member forks a new draft. The functions at the
end (``add_member_with_draft``, ``put_draft``, ``check_definition``, ``runnable``) work inside
a unit of work a caller already holds: every origin of a member (the API, authoring, templates)
and every origin of a run goes through them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.kernel.actor import Actor, Role
from domain.kernel.clock import Clock
from domain.kernel.errors import (
    DuplicateName,
    NotFound,
    ReferencedResourceNotFound,
    RuleViolation,
)
from domain.kernel.ids import new_id
from domain.kernel.paging import Page, PageRequest, page_of
from domain.kernel.preconditions import Precondition, check
from domain.kernel.unit_of_work import Store
from domain.members.compiler import compile_definition
from domain.members.diff import DefinitionDiff, diff_definitions
from domain.members.errors import CrewNotEmpty, MemberInUse, NoDraftToPublish
from domain.members.handoff_rules import check_acyclic, check_single_branch
from domain.members.input_schema import input_schema_problem
from domain.members.model import (
    Crew,
    Definition,
    Handoff,
    HandoffSet,
    Member,
    Version,
    VersionStatus,
)
from domain.members.repository import MembersTx
from domain.tools import CATALOG, split_mcp_tool_name


class Members:
    """Crews, members, drafts, publishing, versions and handoffs of the actor's workspace."""

    def __init__(self, store: Store[MembersTx], clock: Clock) -> None:
        self._store = store
        self._clock = clock

    # -- crews ---------------------------------------------------------------------------

    def create_crew(self, actor: Actor, name: str, description: str = "") -> Crew:
        """Create a crew in the actor's workspace.

        :raises PermissionDenied: the actor is below author.
        :raises DuplicateName: the workspace already has a crew with this name.
        """
        actor.require(Role.AUTHOR)
        now = self._clock.now()
        crew = Crew(new_id("crw"), actor.workspace_id, name, description, now, now)
        with self._store(write=True) as tx:
            tx.members.add_crew(crew)
            tx.audit.append(actor, "crew.created", "crew", crew.id, {"name": name}, now)
            tx.commit()
        return crew

    def get_crew(self, actor: Actor, crew_id: str) -> Crew:
        """Return one crew.

        :raises NotFound: no such crew in the actor's workspace.
        """
        actor.require(Role.VIEWER)
        with self._store() as tx:
            return _crew_or_404(tx, actor, crew_id)

    def update_crew(
        self,
        actor: Actor,
        crew_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        if_match: Precondition[Crew] | None = None,
    ) -> Crew:
        """Rename or re-describe a crew; only the fields given change.

        :raises PermissionDenied: the actor is below author.
        :raises NotFound: no such crew in the actor's workspace.
        :raises PreconditionFailed: the crew is not in the state ``if_match`` expects.
        :raises DuplicateName: another crew of the workspace has the new name.
        """
        actor.require(Role.AUTHOR)
        now = self._clock.now()
        with self._store(write=True) as tx:
            current = _crew_or_404(tx, actor, crew_id)
            check(if_match, current)
            crew = current.edited(now, name=name, description=description)
            tx.members.save_crew(crew)
            changed = {"name": name, "description": description}
            tx.audit.append(
                actor,
                "crew.updated",
                "crew",
                crew_id,
                {k: v for k, v in changed.items() if v is not None},
                now,
            )
            tx.commit()
        return crew

    def delete_crew(self, actor: Actor, crew_id: str) -> None:
        """Delete a crew that has no members (archived ones count) and no authoring sessions.

        :raises PermissionDenied: the actor is below author.
        :raises NotFound: no such crew in the actor's workspace.
        :raises CrewNotEmpty: the crew still has members or authoring sessions.
        """
        actor.require(Role.AUTHOR)
        now = self._clock.now()
        with self._store(write=True) as tx:
            crew = _crew_or_404(tx, actor, crew_id)
            reasons = []
            members = tx.members.count_crew_members(crew_id)
            if members:
                reasons.append(f"it has {members} member(s), archived ones included")
            if tx.members.crew_referenced(crew_id):
                reasons.append("authoring sessions belong to it")
            if reasons:
                raise CrewNotEmpty(crew_id, reasons)
            tx.members.delete_crew(crew_id)
            tx.audit.append(actor, "crew.deleted", "crew", crew_id, {"name": crew.name}, now)
            tx.commit()

    def list_crews(
        self, actor: Actor, page: PageRequest, name_contains: str | None = None
    ) -> Page[Crew]:
        """List the crews of the actor's workspace, oldest first."""
        actor.require(Role.VIEWER)
        with self._store() as tx:
            rows = tx.members.list_crews(actor.workspace_id, page.cursor, page.limit, name_contains)
            total = (
                tx.members.count_crews(actor.workspace_id, name_contains)
                if page.include_total
                else None
            )
        return page_of(rows, page, lambda c: c.id, total)

    def list_crew_members(
        self, actor: Actor, crew_id: str, page: PageRequest, *, include_archived: bool = False
    ) -> Page[Member]:
        """List the members of one crew, oldest first; archived ones only when asked.

        :raises NotFound: no such crew in the actor's workspace.
        """
        actor.require(Role.VIEWER)
        with self._store() as tx:
            _crew_or_404(tx, actor, crew_id)
            rows = tx.members.list_members(
                actor.workspace_id,
                page.cursor,
                page.limit,
                crew_id=crew_id,
                include_archived=include_archived,
            )
            total = (
                tx.members.count_members(
                    actor.workspace_id, crew_id=crew_id, include_archived=include_archived
                )
                if page.include_total
                else None
            )
        return page_of(rows, page, lambda m: m.id, total)

    # -- members and versions ------------------------------------------------------------

    def create_member(
        self,
        actor: Actor,
        *,
        crew_id: str,
        name: str,
        definition: Definition,
        description: str = "",
    ) -> Member:
        """Create a member in a crew, with version 1 as a draft holding ``definition``.

        :raises PermissionDenied: the actor is below author.
        :raises ReferencedResourceNotFound: ``crew_id`` names no crew of the workspace.
        :raises DuplicateName: the workspace already has a member with this name.
        :raises RuleViolation: the definition breaks a rule (duplicate tool names).
        """
        actor.require(Role.AUTHOR)
        check_definition(definition, "/definition")
        with self._store(write=True) as tx:
            member = add_member_with_draft(
                tx,
                actor,
                self._clock.now(),
                crew_id=crew_id,
                name=name,
                description=description,
                definition=definition,
            )
            tx.commit()
        return member

    def get_member(self, actor: Actor, member_id: str) -> Member:
        """Return one member handle.

        :raises NotFound: no such member in the actor's workspace.
        """
        actor.require(Role.VIEWER)
        with self._store() as tx:
            return _member_or_404(tx, actor, member_id)

    def list_members(
        self,
        actor: Actor,
        page: PageRequest,
        *,
        crew_id: str | None = None,
        status: str | None = None,
        name_contains: str | None = None,
        include_archived: bool = False,
    ) -> Page[Member]:
        """List members of the actor's workspace, oldest first, optionally filtered; archived
        members only when asked."""
        actor.require(Role.VIEWER)
        with self._store() as tx:
            rows = tx.members.list_members(
                actor.workspace_id,
                page.cursor,
                page.limit,
                crew_id=crew_id,
                status=status,
                name_contains=name_contains,
                include_archived=include_archived,
            )
            total = (
                tx.members.count_members(
                    actor.workspace_id,
                    crew_id=crew_id,
                    status=status,
                    name_contains=name_contains,
                    include_archived=include_archived,
                )
                if page.include_total
                else None
            )
        return page_of(rows, page, lambda m: m.id, total)

    def update_member(
        self,
        actor: Actor,
        member_id: str,
        *,
        name: str | None = None,
        crew_id: str | None = None,
        if_match: Precondition[Member] | None = None,
    ) -> Member:
        """Rename a member and/or move it to another crew; only the fields given change.

        :raises PermissionDenied: the actor is below author.
        :raises NotFound: no such member in the actor's workspace.
        :raises PreconditionFailed: the member is not in the state ``if_match`` expects.
        :raises ReferencedResourceNotFound: ``crew_id`` names no crew of the workspace.
        :raises DuplicateName: another member of the workspace has the new name.
        """
        actor.require(Role.AUTHOR)
        now = self._clock.now()
        with self._store(write=True) as tx:
            current = _member_or_404(tx, actor, member_id)
            check(if_match, current)
            if crew_id is not None and tx.members.get_crew(actor.workspace_id, crew_id) is None:
                raise ReferencedResourceNotFound("crew", crew_id, "/crew_id")
            member = current.edited(now, name=name, crew_id=crew_id)
            if name is not None and tx.members.name_taken_by_other(member):
                raise DuplicateName("member", member.name)
            tx.members.save(member)
            changed = {"name": name, "crew_id": crew_id}
            tx.audit.append(
                actor,
                "member.updated",
                "member",
                member_id,
                {k: v for k, v in changed.items() if v is not None},
                now,
            )
            tx.commit()
        return member

    def archive_member(self, actor: Actor, member_id: str) -> Member:
        """Archive a member: it cannot be run, its triggers stop firing, default lists hide it;
        its runs and versions stay readable. Archiving an archived member changes nothing.

        :raises PermissionDenied: the actor is below author.
        :raises NotFound: no such member in the actor's workspace.
        """
        return self._set_archived(actor, member_id, archive=True)

    def unarchive_member(self, actor: Actor, member_id: str) -> Member:
        """Bring an archived member back; unarchiving a live member changes nothing.

        :raises PermissionDenied: the actor is below author.
        :raises NotFound: no such member in the actor's workspace.
        """
        return self._set_archived(actor, member_id, archive=False)

    def _set_archived(self, actor: Actor, member_id: str, *, archive: bool) -> Member:
        actor.require(Role.AUTHOR)
        now = self._clock.now()
        with self._store(write=True) as tx:
            member = _member_or_404(tx, actor, member_id)
            if member.archived is archive:
                return member
            member = member.with_archived(now if archive else None, now)
            tx.members.save(member)
            action = "member.archived" if archive else "member.unarchived"
            tx.audit.append(actor, action, "member", member_id, {}, now)
            tx.commit()
        return member

    def delete_member(self, actor: Actor, member_id: str) -> None:
        """Delete a member that was never published, with its drafts and its own handoffs.

        :raises PermissionDenied: the actor is below author.
        :raises NotFound: no such member in the actor's workspace.
        :raises MemberInUse: the member was published, or runs, triggers, other members'
            handoffs or an authoring session refer to it.
        """
        actor.require(Role.AUTHOR)
        now = self._clock.now()
        with self._store(write=True) as tx:
            tx.members.lock_handoff_graph(actor.workspace_id)
            member = _member_or_404(tx, actor, member_id)
            reasons = ["it was published"] if member.ever_published else []
            reasons += tx.members.member_references(member_id)
            if reasons:
                raise MemberInUse(member_id, reasons)
            tx.members.delete_member(member_id)
            tx.audit.append(
                actor, "member.deleted", "member", member_id, {"name": member.name}, now
            )
            tx.commit()

    def get_member_draft(self, actor: Actor, member_id: str) -> Version:
        """Return the member's open draft.

        :raises NotFound: no such member, or the member has no draft.
        """
        actor.require(Role.VIEWER)
        with self._store() as tx:
            member = _member_or_404(tx, actor, member_id)
            if member.draft_version_number is None:
                raise NotFound("draft of member", member_id)
            version = tx.members.get_version(
                actor.workspace_id, member_id, member.draft_version_number
            )
        assert version is not None
        return version

    def replace_member_draft(
        self,
        actor: Actor,
        member_id: str,
        definition: Definition,
        *,
        if_match: Precondition[Version] | None = None,
    ) -> Version:
        """Replace the draft's definition, forking a new draft when the latest is published.

        :raises PermissionDenied: the actor is below author.
        :raises NotFound: no such member.
        :raises PreconditionFailed: the draft is not in the state ``if_match`` expects (with
            no open draft, any ``if_match`` fails).
        :raises RuleViolation: the definition breaks a rule (duplicate tool names).
        """
        actor.require(Role.AUTHOR)
        check_definition(definition, "")
        with self._store(write=True) as tx:
            member = _member_or_404(tx, actor, member_id)
            if if_match is not None:
                number = member.draft_version_number
                draft = (
                    None
                    if number is None
                    else tx.members.get_version(actor.workspace_id, member_id, number)
                )
                check(if_match, draft)
            version = put_draft(tx, actor, self._clock.now(), member, definition)
            tx.commit()
        return version

    def publish_member(self, actor: Actor, member_id: str) -> Version:
        """Compile the member's draft, freeze it and make it the active version.

        The first publish gives the member its identity. An audit entry records the hash.

        :raises PermissionDenied: the actor is below author.
        :raises NotFound: no such member.
        :raises NoDraftToPublish: the member has no draft.
        :raises RuleViolation: a tool server tool left the catalog or changed effect class
            since the draft was saved.
        """
        actor.require(Role.AUTHOR)
        now = self._clock.now()
        with self._store(write=True) as tx:
            member = _member_or_404(tx, actor, member_id)
            number = member.draft_version_number
            draft = (
                None
                if number is None
                else tx.members.get_version(actor.workspace_id, member_id, number)
            )
            if draft is None or draft.status is not VersionStatus.DRAFT:
                raise NoDraftToPublish(member_id)
            pinned = pinned_schemas(tx, actor.workspace_id, draft.definition, "/definition")
            artifact = compile_definition(draft.definition, pinned)
            changed = tx.members.mark_published(
                draft.id,
                program=artifact.program,
                artifact=artifact.canonical,
                artifact_hash=artifact.hash,
                now=now,
                by=actor.subject,
            )
            if changed != 1:  # a concurrent publish froze it first
                raise NoDraftToPublish(member_id)
            tx.members.save(member.published(draft, now))
            tx.audit.append(
                actor,
                "member.published",
                "member",
                member_id,
                {"version": draft.number, "version_id": draft.id, "artifact_hash": artifact.hash},
                now,
            )
            published = tx.members.get_version(actor.workspace_id, member_id, draft.number)
            tx.commit()
        assert published is not None
        return published

    def list_member_versions(
        self, actor: Actor, member_id: str, page: PageRequest, status: str | None = None
    ) -> Page[Version]:
        """List a member's versions, lowest number first.

        :raises NotFound: no such member.
        """
        actor.require(Role.VIEWER)
        with self._store() as tx:
            _member_or_404(tx, actor, member_id)
            rows = tx.members.list_versions(
                actor.workspace_id, member_id, page.cursor, page.limit, status
            )
            total = (
                tx.members.count_versions(actor.workspace_id, member_id, status)
                if page.include_total
                else None
            )
        return page_of(rows, page, lambda v: v.id, total)

    def get_member_version(self, actor: Actor, member_id: str, number: int) -> Version:
        """Return one version of a member.

        :raises NotFound: no such member or version.
        """
        actor.require(Role.VIEWER)
        with self._store() as tx:
            _member_or_404(tx, actor, member_id)
            version = tx.members.get_version(actor.workspace_id, member_id, number)
        if version is None:
            raise NotFound("version", f"{member_id}/versions/{number}")
        return version

    def diff_member_versions(
        self, actor: Actor, member_id: str, number: int, against: int
    ) -> DefinitionDiff:
        """What changed from version ``against`` to version ``number``, field by field.

        :raises NotFound: no such member, or either version does not exist.
        """
        actor.require(Role.VIEWER)
        with self._store() as tx:
            _member_or_404(tx, actor, member_id)
            before = tx.members.get_version(actor.workspace_id, member_id, against)
            after = tx.members.get_version(actor.workspace_id, member_id, number)
        if after is None:
            raise NotFound("version", f"{member_id}/versions/{number}")
        if before is None:
            raise NotFound("version", f"{member_id}/versions/{against}")
        return diff_definitions(before.definition, after.definition)

    def restore_member_version(
        self,
        actor: Actor,
        member_id: str,
        number: int,
        *,
        if_match: Precondition[Version] | None = None,
    ) -> Version:
        """Make the member's draft equal to version ``number`` (forking a new draft when the
        latest version is published); publish it as usual.

        :raises PermissionDenied: the actor is below author.
        :raises NotFound: no such member or version.
        :raises PreconditionFailed: the draft is not in the state ``if_match`` expects.
        :raises RuleViolation: the version names a tool server tool the catalog no longer has
            (or with another effect class).
        """
        actor.require(Role.AUTHOR)
        with self._store(write=True) as tx:
            member = _member_or_404(tx, actor, member_id)
            source = tx.members.get_version(actor.workspace_id, member_id, number)
            if source is None:
                raise NotFound("version", f"{member_id}/versions/{number}")
            if if_match is not None:
                draft_number = member.draft_version_number
                draft = (
                    None
                    if draft_number is None
                    else tx.members.get_version(actor.workspace_id, member_id, draft_number)
                )
                check(if_match, draft)
            version = put_draft(
                tx, actor, self._clock.now(), member, source.definition, restored_from=number
            )
            tx.commit()
        return version

    def check_member_action(self, actor: Actor, member_id: str) -> Member:
        """Gate for deferred member operations: author role and an existing member.

        :raises PermissionDenied: below author. :raises NotFound: no such member.
        """
        actor.require(Role.AUTHOR)
        with self._store() as tx:
            return _member_or_404(tx, actor, member_id)

    # -- handoffs ------------------------------------------------------------------------

    def get_member_handoffs(self, actor: Actor, member_id: str) -> HandoffSet:
        """Return the member's handoffs in evaluation order.

        :raises NotFound: no such member.
        """
        actor.require(Role.VIEWER)
        with self._store() as tx:
            _member_or_404(tx, actor, member_id)
            items = tx.members.get_handoffs(actor.workspace_id, member_id)
            updated_at = tx.members.handoffs_updated_at(member_id)
        return HandoffSet(member_id, tuple(items), updated_at)

    def replace_member_handoffs(
        self,
        actor: Actor,
        member_id: str,
        handoffs: Sequence[Handoff],
        *,
        if_match: Precondition[HandoffSet] | None = None,
    ) -> HandoffSet:
        """Replace the member's handoff list after checking every rule.

        :raises PermissionDenied: the actor is below author.
        :raises NotFound: no such member.
        :raises PreconditionFailed: the handoffs are not in the state ``if_match`` expects.
        :raises ReferencedResourceNotFound: a target is not a member of the workspace.
        :raises RuleViolation: self-handoff, a second unconditional handoff, a repeated target.
        :raises HandoffCycle: the workspace handoff graph would contain a cycle.
        """
        actor.require(Role.AUTHOR)
        check_single_branch(member_id, handoffs)
        now = self._clock.now()
        with self._store(write=True) as tx:
            tx.members.lock_handoff_graph(actor.workspace_id)
            _member_or_404(tx, actor, member_id)
            if if_match is not None:
                current = HandoffSet(
                    member_id,
                    tuple(tx.members.get_handoffs(actor.workspace_id, member_id)),
                    tx.members.handoffs_updated_at(member_id),
                )
                check(if_match, current)
            known = tx.members.existing_member_ids(
                actor.workspace_id, [h.target_member_id for h in handoffs]
            )
            for index, handoff in enumerate(handoffs):
                if handoff.target_member_id not in known:
                    raise ReferencedResourceNotFound(
                        "member", handoff.target_member_id, f"/handoffs/{index}/target_member_id"
                    )
            graph = tx.members.handoff_graph(actor.workspace_id)
            graph.pop(member_id, None)
            check_acyclic(graph, member_id, handoffs)
            tx.members.replace_handoffs(actor.workspace_id, member_id, handoffs)
            tx.members.touch_handoffs(member_id, now)
            tx.audit.append(
                actor,
                "member.handoffs_replaced",
                "member",
                member_id,
                {"targets": [h.target_member_id for h in handoffs]},
                now,
            )
            tx.commit()
        return HandoffSet(member_id, tuple(handoffs), now)


# -- inside a caller's unit of work ---------------------------------------------------------


def add_member_with_draft(
    tx: MembersTx,
    actor: Actor,
    now: datetime,
    *,
    crew_id: str,
    name: str,
    description: str,
    definition: Definition,
    crew_pointer: str = "/crew_id",
    pointer: str = "/definition",
    origin: dict[str, object] | None = None,
) -> Member:
    """Create a member with version 1 as a draft (the one path every origin takes); its one
    audit entry carries ``origin`` (which template, which authoring session...).

    :raises ReferencedResourceNotFound: ``crew_id`` names no crew of the workspace.
    :raises DuplicateName: the workspace already has a member with this name.
    :raises RuleViolation: a tool server tool the catalog lacks, or with another effect class.
    """
    member = Member(
        id=new_id("mem"),
        workspace_id=actor.workspace_id,
        crew_id=crew_id,
        name=name,
        description=description,
        active_version_id=None,
        active_version_number=None,
        draft_version_number=1,
        latest_version_number=1,
        identity=None,
        created_at=now,
        updated_at=now,
    )
    if tx.members.get_crew(actor.workspace_id, crew_id) is None:
        raise ReferencedResourceNotFound("crew", crew_id, crew_pointer)
    pinned_schemas(tx, actor.workspace_id, definition, pointer)
    tx.members.add_member(member)
    tx.members.add_version(_new_draft(actor, member.id, 1, definition, now))
    details = {"name": name, "crew_id": crew_id, **(origin or {})}
    tx.audit.append(actor, "member.created", "member", member.id, details, now)
    return member


def put_draft(
    tx: MembersTx,
    actor: Actor,
    now: datetime,
    member: Member,
    definition: Definition,
    pointer: str = "",
    *,
    restored_from: int | None = None,
) -> Version:
    """Replace the member's draft, or fork a new one after a publish; its one audit entry
    names the version it was restored from, if any.

    :raises RuleViolation: a tool server tool the catalog lacks, or with another effect class.
    """
    pinned_schemas(tx, actor.workspace_id, definition, pointer)
    origin = {} if restored_from is None else {"restored_from": restored_from}
    if member.draft_version_number is not None:
        number = member.draft_version_number
        current = tx.members.get_version(actor.workspace_id, member.id, number)
        assert current is not None
        tx.members.replace_draft_definition(current.id, definition, now)
        tx.members.save(member.touched(now))
        tx.audit.append(
            actor, "member.draft_replaced", "member", member.id, {"number": number, **origin}, now
        )
    else:
        forked = member.with_new_draft(now)
        number = forked.latest_version_number
        tx.members.add_version(_new_draft(actor, member.id, number, definition, now))
        tx.members.save(forked)
        tx.audit.append(
            actor, "member.draft_forked", "member", member.id, {"number": number, **origin}, now
        )
    version = tx.members.get_version(actor.workspace_id, member.id, number)
    assert version is not None
    return version


def runnable(
    tx: MembersTx, workspace_id: str, member_id: str, *, dry_run: bool
) -> tuple[Member, Version] | None:
    """The member and the version a run of it executes (its draft for a dry run), or None
    when the member does not exist or has no such version. The member's row is share-locked
    in a writing unit of work (PostgreSQL): concurrent starts do not wait for each other."""
    found = tx.members.get_member_to_run(workspace_id, member_id, dry_run=dry_run)
    if found is None:
        return None
    member, version = found
    if version is None or (not dry_run and version.program is None):
        return None
    return member, version


def pinned_schemas(
    tx: MembersTx, workspace_id: str, definition: Definition, pointer: str
) -> dict[str, dict[str, object]]:
    """The input schemas of the definition's tool server tools (``mcp:<server>/<tool>``), as
    the workspace's catalog has them now; the schemas a publish pins.

    :raises RuleViolation: ``unknown-tool`` (no such server or tool) or ``tool-effect-class``
        (the catalog gives the tool another effect class), naming the tool.
    """
    schemas: dict[str, dict[str, object]] = {}
    for index, tool in enumerate(definition.tools):
        split = split_mcp_tool_name(tool.name)
        if split is None:
            continue
        server = tx.tool_servers.get_by_name(workspace_id, split[0])
        entry = None
        if server is not None:
            entry = next((t for t in server.catalog() if t.name == tool.name), None)
        if entry is None:
            raise RuleViolation(
                "unknown-tool",
                f"{pointer}/tools/{index}: the tool '{tool.name}' is not in the tool catalog "
                "(GET /v1/tools).",
                f"{pointer}/tools/{index}/name",
            )
        if entry.effect_class is not tool.effect_class:
            raise RuleViolation(
                "tool-effect-class",
                f"{pointer}/tools/{index}: the tool '{tool.name}' has effect class "
                f"'{entry.effect_class.value}' in the catalog, not '{tool.effect_class.value}'.",
                f"{pointer}/tools/{index}/effect_class",
            )
        schemas[tool.name] = dict(entry.parameters)
    return schemas


def check_definition(definition: Definition, pointer: str) -> None:
    """Check the rules a definition must keep beyond its shape.

    :raises RuleViolation: duplicate tool names, a catalog tool with the wrong effect class, or
        an unusable input schema; the pointer is prefixed with ``pointer``.
    """
    seen: dict[str, int] = {}
    for index, tool in enumerate(definition.tools):
        if tool.name in seen:
            raise RuleViolation(
                "duplicate-tool",
                f"{pointer}/tools/{index}: tool '{tool.name}' is already declared at "
                f"{pointer}/tools/{seen[tool.name]}.",
                f"{pointer}/tools/{index}/name",
            )
        seen[tool.name] = index
        catalog = CATALOG.get(tool.name)
        if catalog is not None and catalog.effect_class is not tool.effect_class:
            raise RuleViolation(
                "tool-effect-class",
                f"{pointer}/tools/{index}: the built-in tool '{tool.name}' has effect class "
                f"'{catalog.effect_class.value}', not '{tool.effect_class.value}'.",
                f"{pointer}/tools/{index}/effect_class",
            )
    if definition.input_schema is not None:
        problem = input_schema_problem(definition.input_schema)
        if problem is not None:
            raise RuleViolation(
                "invalid-input-schema",
                f"{pointer}/input_schema: {problem}",
                f"{pointer}/input_schema",
            )


def _crew_or_404(tx: MembersTx, actor: Actor, crew_id: str) -> Crew:
    crew = tx.members.get_crew(actor.workspace_id, crew_id)
    if crew is None:
        raise NotFound("crew", crew_id)
    return crew


def _member_or_404(tx: MembersTx, actor: Actor, member_id: str) -> Member:
    member = tx.members.get_member(actor.workspace_id, member_id)
    if member is None:
        raise NotFound("member", member_id)
    return member


def _new_draft(
    actor: Actor, member_id: str, number: int, definition: Definition, now: datetime
) -> Version:
    return Version(
        id=new_id("ver"),
        workspace_id=actor.workspace_id,
        member_id=member_id,
        number=number,
        status=VersionStatus.DRAFT,
        definition=definition,
        program=None,
        artifact_hash=None,
        created_at=now,
        created_by=actor.subject,
        updated_at=now,
        published_at=None,
        published_by=None,
    )
