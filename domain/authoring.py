"""Conversational authoring: every turn re-derives the whole draft from the whole conversation.

A turn calls the deriver outside any transaction (it may call a model), then, in one unit of
work, saves the derived definition as the member's draft (creating the member on the first turn
of a session that has none) and appends both sides of the exchange. A deriver that fails
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain import services
from domain.compiler import needs_approval
from domain.deriver import Derivation, Deriver
from domain.errors import ConcurrentTurn, DuplicateName, NotFound, ReferencedResourceNotFound
from domain.ids import new_id
from domain.model import Actor, Definition, EffectClass, Member, Role
from domain.unit_of_work import UnitOfWork, UnitOfWorkFactory

_EFFECT_WORDS = {
    EffectClass.INTERNAL: "only touches this workspace",
    EffectClass.EXTERNAL_READ: "reads from outside systems",
    EffectClass.EXTERNAL_WRITE: "changes things in outside systems",
    EffectClass.SPEND: "spends money",
}


@dataclass(frozen=True)
class AuthoringSession:
    id: str
    workspace_id: str
    crew_id: str
    member_id: str | None
    messages: list[dict[str, Any]]
    draft: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    def approval_preview(self) -> list[dict[str, Any]]:
        return [] if self.draft is None else approval_preview(Definition.from_json(self.draft))


@dataclass(frozen=True)
class TurnResult:
    reply: str
    definition: Definition
    session: AuthoringSession


def approval_preview(definition: Definition) -> list[dict[str, Any]]:
    """Which tools will pause for approval, and why, in plain language."""
    preview = []
    for tool in definition.tools:
        pauses = needs_approval(tool, definition.rigidity)
        what = _EFFECT_WORDS[tool.effect_class]
        if pauses:
            why = f"'{tool.name}' {what}, so each call waits for a person to approve it."
        elif tool.whitelisted and tool.effect_class is not EffectClass.INTERNAL:
            why = f"'{tool.name}' {what} but is whitelisted: it runs without approval."
        else:
            why = (
                f"'{tool.name}' {what}; it runs without approval under {definition.rigidity.value}."
            )
        preview.append(
            {
                "tool": tool.name,
                "effect_class": tool.effect_class.value,
                "pauses_for_approval": pauses,
                "explanation": why,
            }
        )
    return preview


def _now() -> datetime:
    return datetime.now(UTC)


def _timestamp(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def create_session(
    uow: UnitOfWorkFactory, actor: Actor, crew_id: str, member_id: str | None = None
) -> AuthoringSession:
    """Open a session for a crew, optionally editing an existing member.

    :raises PermissionDenied: the actor is below author.
    :raises ReferencedResourceNotFound: no such crew or member in the workspace.
    """
    actor.require(Role.AUTHOR)
    now = _now()
    with uow(write=True) as tx:
        if tx.repo.get_crew(actor.workspace_id, crew_id) is None:
            raise ReferencedResourceNotFound("crew", crew_id, "/crew_id")
        draft = None
        if member_id is not None:
            member = tx.repo.get_member(actor.workspace_id, member_id)
            if member is None:
                raise ReferencedResourceNotFound("member", member_id, "/member_id")
            number = member.draft_version_number or member.active_version_number
            version = (
                None
                if number is None
                else tx.repo.get_version(actor.workspace_id, member_id, number)
            )
            draft = None if version is None else version.definition.to_json()
        session = AuthoringSession(
            new_id("ses"), actor.workspace_id, crew_id, member_id, [], draft, now, now
        )
        tx.runs.add_authoring_session(session.__dict__ | {"created_by": actor.subject})
        tx.commit()
    return session


def get_session(uow: UnitOfWorkFactory, actor: Actor, session_id: str) -> AuthoringSession:
    """:raises NotFound: no such session in the workspace."""
    actor.require(Role.VIEWER)
    with uow() as tx:
        return _session_or_404(tx, actor, session_id)


def take_turn(
    uow: UnitOfWorkFactory, deriver: Deriver, actor: Actor, session_id: str, message: str
) -> TurnResult:
    """Add ``message`` and re-derive the whole draft; save it as the member's draft.

    :raises PermissionDenied: the actor is below author.
    :raises NotFound: no such session.
    :raises ModelUnusable: the deriver's model answered something unusable.
    :raises ConcurrentTurn: another turn of the session was saved meanwhile; retry.
    """
    actor.require(Role.AUTHOR)
    with uow() as tx:
        session = _session_or_404(tx, actor, session_id)
        member = (
            None
            if session.member_id is None
            else tx.repo.get_member(actor.workspace_id, session.member_id)
        )
    conversation = [m["content"] for m in session.messages if m["role"] == "user"] + [message]
    base = None
    if member is not None and member.created_at < session.created_at and session.draft:
        # A session opened on an existing member refines its current draft on every turn (a
        # member created by this session's first turn is derived from the conversation alone).
        base = Definition.from_json(session.draft)
    derivation = deriver.derive(conversation, base)
    services.check_definition(derivation.definition, "/draft")
    reply = " ".join(
        [derivation.reply, *(p["explanation"] for p in approval_preview(derivation.definition))]
    )
    now = _now()
    with uow(write=True) as tx:
        current = _session_or_404(tx, actor, session_id)  # row-locked on PostgreSQL
        if len(current.messages) != len(session.messages):
            # Another turn was saved while this one was being derived: its draft ignores
            # that message, so saving it would lose it.
            raise ConcurrentTurn(session_id)
        member_id = current.member_id
        if member_id is None:
            member = _create_member(tx, actor, current.crew_id, derivation.name, derivation)
            member_id = member.id
        else:
            member_row = tx.repo.get_member(actor.workspace_id, member_id)
            if member_row is None:
                raise NotFound("member", member_id)
            services.put_draft(tx, actor, member_row, derivation.definition)
        messages = [
            *current.messages,
            {"role": "user", "content": message, "at": _timestamp(now)},
            {"role": "assistant", "content": reply, "at": _timestamp(now)},
        ]
        draft = derivation.definition.to_json()
        tx.runs.update_authoring_session(
            session_id,
            {"member_id": member_id, "messages": messages, "draft": draft, "updated_at": now},
        )
        tx.commit()
    updated = AuthoringSession(
        session.id,
        session.workspace_id,
        session.crew_id,
        member_id,
        messages,
        draft,
        session.created_at,
        now,
    )
    return TurnResult(reply, derivation.definition, updated)


def _create_member(
    tx: UnitOfWork, actor: Actor, crew_id: str, name: str, derivation: Derivation
) -> Member:
    # A derived name may collide with an existing member: number it instead of failing.
    for attempt in range(1, 50):
        candidate = name if attempt == 1 else f"{name[:90]} ({attempt})"
        try:
            return services.add_member_with_draft(
                tx,
                actor,
                crew_id=crew_id,
                name=candidate,
                description="Drafted in an authoring session.",
                definition=derivation.definition,
            )
        except DuplicateName:
            continue
    raise DuplicateName("member", name)


def _session_or_404(tx: UnitOfWork, actor: Actor, session_id: str) -> AuthoringSession:
    row = tx.runs.get_authoring_session(actor.workspace_id, session_id)
    if row is None:
        raise NotFound("authoring session", session_id)
    return AuthoringSession(
        id=row["id"],
        workspace_id=row["workspace_id"],
        crew_id=row["crew_id"],
        member_id=row["member_id"],
        messages=list(row["messages"]),
        draft=row["draft"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
