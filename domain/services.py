"""Use cases. Each opens one unit of work, checks the actor's role, and commits once.

Every function takes the unit-of-work factory first and the acting ``Actor`` second; the
workspace always comes from the actor, never from arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from domain.compiler import compile_definition
from domain.errors import (
    CredentialRejected,
    NoDraftToPublish,
    NotFound,
    ReferencedResourceNotFound,
    RuleViolation,
)
from domain.handoff_rules import check_acyclic, check_single_branch
from domain.ids import new_id
from domain.input_schema import input_schema_problem
from domain.model import (
    Actor,
    Crew,
    Definition,
    Handoff,
    HandoffSet,
    Member,
    Membership,
    Page,
    PageRequest,
    Role,
    Version,
    VersionStatus,
    Workspace,
    page_of,
)
from domain.repository import Repository
from domain.tools import CATALOG
from domain.unit_of_work import UnitOfWork, UnitOfWorkFactory

DEFAULT_TENANT = "default"


def _now() -> datetime:
    return datetime.now(UTC)


# -- workspaces ------------------------------------------------------------------------------


def workspace_exists(uow: UnitOfWorkFactory, workspace_id: str) -> bool:
    """Whether a workspace with this id exists (used to vet credentials)."""
    with uow() as tx:
        return tx.repo.workspace_exists(workspace_id)


def ensure_workspace_member(
    uow: UnitOfWorkFactory,
    workspace_id: str,
    subject: str,
    role: Role,
    *,
    name: str | None = None,
    tenant_id: str = DEFAULT_TENANT,
) -> Workspace:
    """Create the workspace if it is missing and make ``subject`` a member with ``role``.

    For local provisioning (the ``scaicrew token`` command and dev-mode headers), not for
    callers of the API.
    """
    now = _now()
    with uow(write=True) as tx:
        workspace = tx.repo.get_workspace(workspace_id)
        if workspace is None:
            workspace = Workspace(
                id=workspace_id,
                tenant_id=tenant_id,
                name=name or workspace_id,
                description="",
                created_at=now,
                updated_at=now,
            )
            tx.repo.add_workspace(workspace)
        tx.repo.put_membership(workspace_id, subject, role, now)
        tx.commit()
        return workspace


def get_workspace(uow: UnitOfWorkFactory, actor: Actor) -> Workspace:
    """Return the actor's workspace.

    :raises CredentialRejected: the credential names a workspace that does not exist.
    """
    actor.require(Role.VIEWER)
    with uow() as tx:
        workspace = tx.repo.get_workspace(actor.workspace_id)
    if workspace is None:
        raise CredentialRejected("The credential names a workspace that does not exist.")
    return workspace


def update_workspace(
    uow: UnitOfWorkFactory,
    actor: Actor,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Workspace:
    """Rename or re-describe the actor's workspace (admin only).

    :raises PermissionDenied: the actor is not an admin.
    :raises CredentialRejected: the workspace does not exist.
    """
    actor.require(Role.ADMIN)
    now = _now()
    values: dict[str, object] = {"updated_at": now}
    if name is not None:
        values["name"] = name
    if description is not None:
        values["description"] = description
    with uow(write=True) as tx:
        if tx.repo.get_workspace(actor.workspace_id) is None:
            raise CredentialRejected("The credential names a workspace that does not exist.")
        tx.repo.update_workspace(actor.workspace_id, values)
        tx.repo.append_audit(
            actor,
            "workspace.updated",
            "workspace",
            actor.workspace_id,
            {k: v for k, v in values.items() if k != "updated_at"},
            now,
        )
        workspace = tx.repo.get_workspace(actor.workspace_id)
        tx.commit()
    assert workspace is not None
    return workspace


def list_my_workspaces(uow: UnitOfWorkFactory, actor: Actor, page: PageRequest) -> Page[Membership]:
    """List the workspaces the actor's subject belongs to.

    The credential's own workspace is always listed (a service token acts in a workspace it
    has no membership row for).
    """
    actor.require(Role.VIEWER)
    with uow() as tx:
        rows = tx.repo.list_memberships(actor.subject, page.cursor, page.limit)
        listed = {m.workspace_id for m in rows}
        current = None
        if actor.workspace_id not in listed and (
            page.cursor is None or actor.workspace_id > page.cursor
        ):
            workspace = tx.repo.get_workspace(actor.workspace_id)
            if workspace is not None:
                current = Membership(workspace.id, workspace.name, actor.subject, actor.role)
    if current is not None:
        rows = sorted([*rows, current], key=lambda m: m.workspace_id)
    return page_of(rows, page, lambda m: m.workspace_id)


# -- crews -----------------------------------------------------------------------------------


def create_crew(uow: UnitOfWorkFactory, actor: Actor, name: str, description: str = "") -> Crew:
    """Create a crew in the actor's workspace.

    :raises PermissionDenied: the actor is below author.
    :raises DuplicateName: the workspace already has a crew with this name.
    """
    actor.require(Role.AUTHOR)
    now = _now()
    crew = Crew(new_id("crw"), actor.workspace_id, name, description, now, now)
    with uow(write=True) as tx:
        tx.repo.add_crew(crew)
        tx.repo.append_audit(actor, "crew.created", "crew", crew.id, {"name": name}, now)
        tx.commit()
    return crew


def get_crew(uow: UnitOfWorkFactory, actor: Actor, crew_id: str) -> Crew:
    """Return one crew.

    :raises NotFound: no such crew in the actor's workspace.
    """
    actor.require(Role.VIEWER)
    with uow() as tx:
        return _crew_or_404(tx.repo, actor, crew_id)


def list_crews(
    uow: UnitOfWorkFactory, actor: Actor, page: PageRequest, name_contains: str | None = None
) -> Page[Crew]:
    """List the crews of the actor's workspace, oldest first."""
    actor.require(Role.VIEWER)
    with uow() as tx:
        rows = tx.repo.list_crews(actor.workspace_id, page.cursor, page.limit, name_contains)
    return page_of(rows, page, lambda c: c.id)


def list_crew_members(
    uow: UnitOfWorkFactory, actor: Actor, crew_id: str, page: PageRequest
) -> Page[Member]:
    """List the members of one crew, oldest first.

    :raises NotFound: no such crew in the actor's workspace.
    """
    actor.require(Role.VIEWER)
    with uow() as tx:
        _crew_or_404(tx.repo, actor, crew_id)
        rows = tx.repo.list_members(actor.workspace_id, page.cursor, page.limit, crew_id=crew_id)
    return page_of(rows, page, lambda m: m.id)


# -- members and versions --------------------------------------------------------------------


def create_member(
    uow: UnitOfWorkFactory,
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
    with uow(write=True) as tx:
        member = add_member_with_draft(
            tx, actor, crew_id=crew_id, name=name, description=description, definition=definition
        )
        tx.commit()
    return member


def add_member_with_draft(
    tx: UnitOfWork,
    actor: Actor,
    *,
    crew_id: str,
    name: str,
    description: str,
    definition: Definition,
    crew_pointer: str = "/crew_id",
) -> Member:
    """Inside ``tx``: create a member with version 1 as a draft (the one path every origin takes).

    :raises ReferencedResourceNotFound: ``crew_id`` names no crew of the workspace.
    :raises DuplicateName: the workspace already has a member with this name.
    """
    now = _now()
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
    if tx.repo.get_crew(actor.workspace_id, crew_id) is None:
        raise ReferencedResourceNotFound("crew", crew_id, crew_pointer)
    tx.repo.add_member(member)
    tx.repo.add_version(_new_draft(actor, member.id, 1, definition, now))
    tx.repo.append_audit(
        actor, "member.created", "member", member.id, {"name": name, "crew_id": crew_id}, now
    )
    return member


def get_member(uow: UnitOfWorkFactory, actor: Actor, member_id: str) -> Member:
    """Return one member handle.

    :raises NotFound: no such member in the actor's workspace.
    """
    actor.require(Role.VIEWER)
    with uow() as tx:
        return _member_or_404(tx.repo, actor, member_id)


def list_members(
    uow: UnitOfWorkFactory,
    actor: Actor,
    page: PageRequest,
    *,
    crew_id: str | None = None,
    status: str | None = None,
    name_contains: str | None = None,
) -> Page[Member]:
    """List members of the actor's workspace, oldest first, optionally filtered."""
    actor.require(Role.VIEWER)
    with uow() as tx:
        rows = tx.repo.list_members(
            actor.workspace_id,
            page.cursor,
            page.limit,
            crew_id=crew_id,
            status=status,
            name_contains=name_contains,
        )
    return page_of(rows, page, lambda m: m.id)


def get_draft(uow: UnitOfWorkFactory, actor: Actor, member_id: str) -> Version:
    """Return the member's open draft.

    :raises NotFound: no such member, or the member has no draft.
    """
    actor.require(Role.VIEWER)
    with uow() as tx:
        member = _member_or_404(tx.repo, actor, member_id)
        if member.draft_version_number is None:
            raise NotFound("draft of member", member_id)
        version = tx.repo.get_version(actor.workspace_id, member_id, member.draft_version_number)
    assert version is not None
    return version


def replace_draft(
    uow: UnitOfWorkFactory, actor: Actor, member_id: str, definition: Definition
) -> Version:
    """Replace the draft's definition, forking a new draft when the latest is published.

    :raises PermissionDenied: the actor is below author.
    :raises NotFound: no such member.
    :raises RuleViolation: the definition breaks a rule (duplicate tool names).
    """
    actor.require(Role.AUTHOR)
    check_definition(definition, "")
    with uow(write=True) as tx:
        version = put_draft(tx, actor, _member_or_404(tx.repo, actor, member_id), definition)
        tx.commit()
    return version


def put_draft(tx: UnitOfWork, actor: Actor, member: Member, definition: Definition) -> Version:
    """Inside ``tx``: replace the member's draft, or fork a new one after a publish."""
    now = _now()
    member_id = member.id
    if member.draft_version_number is not None:
        number = member.draft_version_number
        current = tx.repo.get_version(actor.workspace_id, member_id, number)
        assert current is not None
        tx.repo.replace_draft_definition(current.id, definition, now)
        tx.repo.update_member(member_id, {"updated_at": now})
    else:
        number = member.latest_version_number + 1
        tx.repo.add_version(_new_draft(actor, member_id, number, definition, now))
        tx.repo.update_member(
            member_id,
            {
                "draft_version_number": number,
                "latest_version_number": number,
                "updated_at": now,
            },
        )
        tx.repo.append_audit(
            actor, "member.draft_forked", "member", member_id, {"number": number}, now
        )
    version = tx.repo.get_version(actor.workspace_id, member_id, number)
    assert version is not None
    return version


def publish_member(uow: UnitOfWorkFactory, actor: Actor, member_id: str) -> Version:
    """Compile the member's draft, freeze it and make it the active version.

    The first publish gives the member its identity. An audit entry records the hash.

    :raises PermissionDenied: the actor is below author.
    :raises NotFound: no such member.
    :raises NoDraftToPublish: the member has no draft.
    """
    actor.require(Role.AUTHOR)
    now = _now()
    with uow(write=True) as tx:
        member = _member_or_404(tx.repo, actor, member_id)
        number = member.draft_version_number
        draft = (
            None if number is None else tx.repo.get_version(actor.workspace_id, member_id, number)
        )
        if draft is None or draft.status is not VersionStatus.DRAFT:
            raise NoDraftToPublish(member_id)
        artifact = compile_definition(draft.definition)
        changed = tx.repo.mark_published(
            draft.id,
            program=artifact.program,
            artifact=artifact.canonical,
            artifact_hash=artifact.hash,
            now=now,
            by=actor.subject,
        )
        if changed != 1:  # a concurrent publish froze it first
            raise NoDraftToPublish(member_id)
        identity = member.identity or f"member:{member.id}"
        tx.repo.update_member(
            member_id,
            {
                "active_version_id": draft.id,
                "active_version_number": draft.number,
                "draft_version_number": None,
                "identity": identity,
                "updated_at": now,
            },
        )
        tx.repo.append_audit(
            actor,
            "member.published",
            "member",
            member_id,
            {"version": draft.number, "version_id": draft.id, "artifact_hash": artifact.hash},
            now,
        )
        published = tx.repo.get_version(actor.workspace_id, member_id, draft.number)
        tx.commit()
    assert published is not None
    return published


def list_versions(
    uow: UnitOfWorkFactory,
    actor: Actor,
    member_id: str,
    page: PageRequest,
    status: str | None = None,
) -> Page[Version]:
    """List a member's versions, lowest number first.

    :raises NotFound: no such member.
    """
    actor.require(Role.VIEWER)
    with uow() as tx:
        _member_or_404(tx.repo, actor, member_id)
        rows = tx.repo.list_versions(actor.workspace_id, member_id, page.cursor, page.limit, status)
    return page_of(rows, page, lambda v: v.id)


def get_version(uow: UnitOfWorkFactory, actor: Actor, member_id: str, number: int) -> Version:
    """Return one version of a member.

    :raises NotFound: no such member or version.
    """
    actor.require(Role.VIEWER)
    with uow() as tx:
        _member_or_404(tx.repo, actor, member_id)
        version = tx.repo.get_version(actor.workspace_id, member_id, number)
    if version is None:
        raise NotFound("version", f"{member_id}/versions/{number}")
    return version


# -- handoffs --------------------------------------------------------------------------------


def get_handoffs(uow: UnitOfWorkFactory, actor: Actor, member_id: str) -> HandoffSet:
    """Return the member's handoffs in evaluation order.

    :raises NotFound: no such member.
    """
    actor.require(Role.VIEWER)
    with uow() as tx:
        _member_or_404(tx.repo, actor, member_id)
        items = tx.repo.get_handoffs(actor.workspace_id, member_id)
        updated_at = tx.repo.handoffs_updated_at(member_id)
    return HandoffSet(member_id, tuple(items), updated_at)


def replace_handoffs(
    uow: UnitOfWorkFactory, actor: Actor, member_id: str, handoffs: Sequence[Handoff]
) -> HandoffSet:
    """Replace the member's handoff list after checking every rule.

    :raises PermissionDenied: the actor is below author.
    :raises NotFound: no such member.
    :raises ReferencedResourceNotFound: a target is not a member of the workspace.
    :raises RuleViolation: self-handoff, a second unconditional handoff, a repeated target.
    :raises HandoffCycle: the workspace handoff graph would contain a cycle.
    """
    actor.require(Role.AUTHOR)
    check_single_branch(member_id, handoffs)
    now = _now()
    with uow(write=True) as tx:
        # Serialise handoff changes per workspace: the cycle check reads the whole graph.
        tx.repo.lock_workspace(actor.workspace_id)
        _member_or_404(tx.repo, actor, member_id)
        known = tx.repo.existing_member_ids(
            actor.workspace_id, [h.target_member_id for h in handoffs]
        )
        for index, handoff in enumerate(handoffs):
            if handoff.target_member_id not in known:
                raise ReferencedResourceNotFound(
                    "member", handoff.target_member_id, f"/handoffs/{index}/target_member_id"
                )
        graph = tx.repo.handoff_graph(actor.workspace_id)
        graph.pop(member_id, None)
        check_acyclic(graph, member_id, handoffs)
        tx.repo.replace_handoffs(actor.workspace_id, member_id, handoffs)
        tx.repo.update_member(member_id, {"handoffs_updated_at": now})
        tx.repo.append_audit(
            actor,
            "member.handoffs_replaced",
            "member",
            member_id,
            {"targets": [h.target_member_id for h in handoffs]},
            now,
        )
        tx.commit()
    return HandoffSet(member_id, tuple(handoffs), now)


# -- helpers ---------------------------------------------------------------------------------


def _crew_or_404(repo: Repository, actor: Actor, crew_id: str) -> Crew:
    crew = repo.get_crew(actor.workspace_id, crew_id)
    if crew is None:
        raise NotFound("crew", crew_id)
    return crew


def _member_or_404(repo: Repository, actor: Actor, member_id: str) -> Member:
    member = repo.get_member(actor.workspace_id, member_id)
    if member is None:
        raise NotFound("member", member_id)
    return member


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


def check_member_action(uow: UnitOfWorkFactory, actor: Actor, member_id: str) -> Member:
    """Gate for deferred member operations: author role and an existing member.

    :raises PermissionDenied: below author. :raises NotFound: no such member.
    """
    actor.require(Role.AUTHOR)
    with uow() as tx:
        return _member_or_404(tx.repo, actor, member_id)
