"""Use cases of authoring: conversational sessions and the template catalog.

A turn re-derives the whole draft from the whole conversation: it calls the deriver outside any
transaction (it may call a model), then, in one unit of work, saves the derived definition as
the member's draft (creating the member on the first turn of a session that has none) and
appends both sides of the exchange. A deriver that fails changes nothing. Installing a template
creates a member draft through the same path as every other origin.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from domain.authoring.deriver import Derivation, Deriver
from domain.authoring.errors import ConcurrentTurn
from domain.authoring.model import AuthoringSession, TurnResult, approval_preview
from domain.authoring.repository import AuthoringTx
from domain.authoring.templates import Template, catalog
from domain.kernel.actor import Actor, Role
from domain.kernel.clock import Clock
from domain.kernel.errors import DuplicateName, NotFound, ReferencedResourceNotFound
from domain.kernel.ids import new_id
from domain.kernel.paging import Page, PageRequest, page_of
from domain.kernel.unit_of_work import Store
from domain.members import Definition, Member, add_member_with_draft, check_definition, put_draft


class Authoring:
    """Conversational authoring sessions and the template catalog."""

    def __init__(self, store: Store[AuthoringTx], clock: Clock, deriver: Deriver) -> None:
        self._store = store
        self._clock = clock
        self._deriver = deriver

    # -- sessions ------------------------------------------------------------------------

    def create_authoring_session(
        self, actor: Actor, crew_id: str, member_id: str | None = None
    ) -> AuthoringSession:
        """Open a session for a crew, optionally editing an existing member.

        :raises PermissionDenied: the actor is below author.
        :raises ReferencedResourceNotFound: no such crew or member in the workspace.
        """
        actor.require(Role.AUTHOR)
        now = self._clock.now()
        with self._store(write=True) as tx:
            if tx.members.get_crew(actor.workspace_id, crew_id) is None:
                raise ReferencedResourceNotFound("crew", crew_id, "/crew_id")
            draft = None
            if member_id is not None:
                member = tx.members.get_member(actor.workspace_id, member_id)
                if member is None:
                    raise ReferencedResourceNotFound("member", member_id, "/member_id")
                number = member.draft_version_number or member.active_version_number
                version = (
                    None
                    if number is None
                    else tx.members.get_version(actor.workspace_id, member_id, number)
                )
                draft = None if version is None else version.definition.to_json()
            session = AuthoringSession(
                id=new_id("ses"),
                workspace_id=actor.workspace_id,
                crew_id=crew_id,
                member_id=member_id,
                messages=[],
                draft=draft,
                created_by=actor.subject,
                created_at=now,
                updated_at=now,
            )
            tx.authoring.add(session)
            tx.commit()
        return session

    def get_authoring_session(self, actor: Actor, session_id: str) -> AuthoringSession:
        """:raises NotFound: no such session in the workspace."""
        actor.require(Role.VIEWER)
        with self._store() as tx:
            return _session_or_404(tx, actor, session_id)

    def take_authoring_turn(self, actor: Actor, session_id: str, message: str) -> TurnResult:
        """Add ``message`` and re-derive the whole draft; save it as the member's draft.

        :raises PermissionDenied: the actor is below author.
        :raises NotFound: no such session.
        :raises ModelUnusable: the deriver's model answered something unusable.
        :raises ConcurrentTurn: another turn of the session was saved meanwhile; retry.
        """
        actor.require(Role.AUTHOR)
        with self._store() as tx:
            session = _session_or_404(tx, actor, session_id)
            member = (
                None
                if session.member_id is None
                else tx.members.get_member(actor.workspace_id, session.member_id)
            )
        conversation = [*session.user_messages(), message]
        base = None
        if member is not None and member.created_at < session.created_at and session.draft:
            # A session opened on an existing member refines its current draft on every turn
            # (a member created by this session's first turn is derived from the conversation).
            base = Definition.from_json(session.draft)
        derivation = self._deriver.derive(conversation, base)
        check_definition(derivation.definition, "/draft")
        reply = " ".join(
            [derivation.reply, *(p["explanation"] for p in approval_preview(derivation.definition))]
        )
        now = self._clock.now()
        with self._store(write=True) as tx:
            current = _session_or_404(tx, actor, session_id)  # row-locked on PostgreSQL
            if len(current.messages) != len(session.messages):
                # Another turn was saved while this one was being derived: its draft ignores
                # that message, so saving it would lose it.
                raise ConcurrentTurn(session_id)
            member_id = current.member_id
            if member_id is None:
                created = _create_member(tx, actor, now, current.crew_id, derivation)
                member_id = created.id
            else:
                member_row = tx.members.get_member(actor.workspace_id, member_id)
                if member_row is None:
                    raise NotFound("member", member_id)
                put_draft(tx, actor, now, member_row, derivation.definition)
            at = now.isoformat().replace("+00:00", "Z")
            updated = replace(
                current,
                member_id=member_id,
                messages=[
                    *current.messages,
                    {"role": "user", "content": message, "at": at},
                    {"role": "assistant", "content": reply, "at": at},
                ],
                draft=derivation.definition.to_json(),
                updated_at=now,
            )
            tx.authoring.save(updated)
            tx.commit()
        return TurnResult(reply, derivation.definition, updated)

    # -- templates -----------------------------------------------------------------------

    def list_templates(
        self, actor: Actor, page: PageRequest, *, text: str | None = None, tag: str | None = None
    ) -> Page[Template]:
        """Search the catalog by text (name, summary, ref) and tag; ordered by ref."""
        actor.require(Role.VIEWER)
        needle = text.lower() if text else None
        # Cursors are opaque ``[0-9a-z_]`` strings: the ref with '-' as '_' (refs never hold '_').
        after = None if page.cursor is None else page.cursor.replace("_", "-")
        rows = [
            t
            for t in catalog()
            if (after is None or t.ref > after)
            and (tag is None or tag in t.tags)
            and (needle is None or needle in f"{t.ref} {t.name} {t.summary}".lower())
        ]
        return page_of(rows[: page.limit + 1], page, lambda t: t.ref.replace("-", "_"))

    def get_template(self, actor: Actor, ref: str) -> Template:
        """:raises NotFound: no template with this ref."""
        actor.require(Role.VIEWER)
        return _template(ref)

    def install_template(
        self,
        actor: Actor,
        ref: str,
        *,
        crew_id: str,
        name: str,
        description: str = "",
        parameters: dict[str, str] | None = None,
    ) -> Member:
        """Create a member draft from a template, atomically.

        :raises PermissionDenied: the actor is below author.
        :raises NotFound: no template with this ref.
        :raises RuleViolation: parameters that do not fit, or a filled definition breaking a rule.
        :raises ReferencedResourceNotFound: no such crew.
        :raises DuplicateName: the member name is taken.
        """
        actor.require(Role.AUTHOR)
        template = _template(ref)
        definition = template.filled(parameters or {})
        check_definition(definition, "/definition")
        now = self._clock.now()
        with self._store(write=True) as tx:
            member = add_member_with_draft(
                tx,
                actor,
                now,
                crew_id=crew_id,
                name=name,
                description=description or template.summary,
                definition=definition,
                origin={"template": ref},
            )
            tx.commit()
        return member

    def check_template_action(self, actor: Actor, ref: str) -> Template:
        """Gate for deferred template operations: author role and an existing template.

        :raises PermissionDenied: below author. :raises NotFound: no such template.
        """
        actor.require(Role.AUTHOR)
        return _template(ref)


def _template(ref: str) -> Template:
    for template in catalog():
        if template.ref == ref:
            return template
    raise NotFound("template", ref)


def _create_member(
    tx: AuthoringTx, actor: Actor, now: datetime, crew_id: str, derivation: Derivation
) -> Member:
    # A derived name may collide with an existing member: number it instead of failing.
    for attempt in range(1, 50):
        candidate = derivation.name if attempt == 1 else f"{derivation.name[:90]} ({attempt})"
        try:
            return add_member_with_draft(
                tx,
                actor,
                now,
                crew_id=crew_id,
                name=candidate,
                description="Drafted in an authoring session.",
                definition=derivation.definition,
            )
        except DuplicateName:
            continue
    raise DuplicateName("member", derivation.name)


def _session_or_404(tx: AuthoringTx, actor: Actor, session_id: str) -> AuthoringSession:
    session = tx.authoring.get(actor.workspace_id, session_id)
    if session is None:
        raise NotFound("authoring session", session_id)
    return session
