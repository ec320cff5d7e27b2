"""Seed data shared by the Schemathesis runs (pytest in-process and the CLI against uvicorn).

A fresh workspace with an admin member, one crew and two members of it: one published (so
version, program, handoff and run reads answer 200) and one still a draft (so publishing can
succeed), a queued run of the published member, and two authoring sessions (one for a new
member, one editing the published member). The ids, with the catalog's template refs, are
handed to Schemathesis so generated cases reach 2xx paths, not only 404s.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from domain import authoring, run_services, services, templates
from domain.model import Actor, Definition, EffectClass, Rigidity, Role, ToolSpec
from domain.unit_of_work import Database
from scaicrew.app import build_runtime
from scaicrew.cli import mint_session_token
from scaicrew.settings import Settings

SUBJECT = "contract-admin"


@dataclass(frozen=True)
class Seed:
    workspace_id: str
    token: str
    crew_id: str
    published_member_id: str
    draft_member_id: str
    run_id: str
    session_ids: tuple[str, ...]

    @property
    def crew_ids(self) -> list[str]:
        return [self.crew_id]

    @property
    def member_ids(self) -> list[str]:
        return [self.published_member_id, self.draft_member_id]

    @property
    def run_ids(self) -> list[str]:
        return [self.run_id]

    @property
    def template_refs(self) -> list[str]:
        return [template.ref for template in templates.catalog()]


def _definition(objective: str) -> Definition:
    return Definition(
        objective=objective,
        instructions="Read the queue and summarise it.",
        rules=("Never email customers directly.",),
        rigidity=Rigidity.GUIDED,
        tools=(
            ToolSpec("read_queue", EffectClass.EXTERNAL_READ),
            ToolSpec("send_email", EffectClass.EXTERNAL_WRITE),
        ),
    )


def new_workspace_id() -> str:
    return f"wsp_{secrets.token_hex(13)}"


def admin_token(settings: Settings, workspace_id: str) -> str:
    """A session token for the seeded workspace's admin, valid for the length of any run."""
    return mint_session_token(
        settings, workspace_id=workspace_id, subject=SUBJECT, role=Role.ADMIN, ttl_seconds=6 * 3600
    )


def seed(uow: Database, settings: Settings, workspace_id: str | None = None) -> Seed:
    """Create the workspace, a crew, a published and a draft member, a run, two authoring
    sessions; mint a token."""
    workspace_id = workspace_id or new_workspace_id()
    services.ensure_workspace_member(uow, workspace_id, SUBJECT, Role.ADMIN, name="Contract tests")
    actor = Actor(workspace_id=workspace_id, subject=SUBJECT, role=Role.ADMIN)
    crew = services.create_crew(uow, actor, "Contract crew", "Seeded for Schemathesis.")
    published = services.create_member(
        uow,
        actor,
        crew_id=crew.id,
        name="Published member",
        definition=_definition("Summarise new support tickets."),
    )
    services.publish_member(uow, actor, published.id)
    draft = services.create_member(
        uow,
        actor,
        crew_id=crew.id,
        name="Draft member",
        definition=_definition("Triage incoming bug reports."),
    )
    run, _ = run_services.start_run(build_runtime(settings, uow), actor, published.id, {})
    sessions = (
        authoring.create_session(uow, actor, crew.id).id,
        authoring.create_session(uow, actor, crew.id, published.id).id,
    )
    token = admin_token(settings, workspace_id)
    return Seed(workspace_id, token, crew.id, published.id, draft.id, run.id, sessions)
