"""Seed data shared by the Schemathesis runs (pytest in-process and the CLI against uvicorn).

A fresh workspace with an admin member, one crew and two members of it: one published (so
version, program, handoff and run reads answer 200) and one still a draft (so publishing can
succeed), a queued run of the published member, and two authoring sessions (one for a new
member, one editing the published member). The ids, with the catalog's template refs, are
handed to Schemathesis so generated cases reach 2xx paths, not only 404s.

Pending approvals come from a third, published member whose only tool is ``http_post``
(``external_write``: it pauses for approval under any rigidity). Several runs of it are driven
by an engine dispatcher until each waits for approval, so approval reads and decisions can
answer 200 (decisions until every seeded approval is decided; 409 after). The posted URL is
never called before an approval, and after one the call fails (the host is not allow-listed):
an ordinary failed run.

For workspace membership and login: a dozen viewers (so member reads, role changes and removals
answer 200/204), and the admin's session codes, half of them already redeemed for refresh tokens
(so ``POST /v1/auth/token`` and ``POST /v1/auth/refresh`` can answer 200).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.authoring import templates
from domain.database import Database
from domain.identity import SessionGrant, digest, pkce_challenge
from domain.kernel import DEFAULT_TENANT, Actor, Role
from domain.members import Definition, EffectClass, Rigidity, ToolSpec
from domain.runs import ApprovalFilter, RunStatus
from domain.use_cases import UseCases
from scaicrew.app import build_use_cases
from scaicrew.cli import mint_session_token
from scaicrew.settings import Settings

SUBJECT = "contract-admin"
MEMBERS = 12  # viewers of the seeded workspace, for membership reads, role changes, removals
SESSION_CODES = 12  # one-shot session codes of the admin (half are redeemed for refresh tokens)
# The front end's login verifier every seeded session code is bound to (RFC 7636's example).
LOGIN_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
APPROVALS = 16  # pending approvals seeded for the example, coverage and fuzzing phases
APPROVAL_INPUT = {"url": "http://127.0.0.1:9/contract"}  # never reached: not allow-listed


@dataclass(frozen=True)
class Seed:
    workspace_id: str
    token: str
    crew_id: str
    published_member_id: str
    draft_member_id: str
    run_id: str
    session_ids: tuple[str, ...]
    approval_ids: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    session_codes: tuple[str, ...] = ()
    refresh_tokens: tuple[str, ...] = ()
    # A schedule and a webhook trigger of the published member, and the webhook's secret (so
    # the pytest hooks can sign ingress deliveries that reach 202).
    trigger_ids: tuple[str, ...] = ()
    webhook_secret: str = ""
    # A tool server registered on the real MCP server of the run (the first host of
    # TOOL_SERVER_ALLOWED_HOSTS), and that server's URL (hooks swap it into registrations).
    tool_server_ids: tuple[str, ...] = ()
    tool_server_url: str = ""

    @property
    def tool_server_urls(self) -> list[str]:
        return [self.tool_server_url] if self.tool_server_url else []

    @property
    def workspace_ids(self) -> list[str]:
        return [self.workspace_id]

    @property
    def login_verifiers(self) -> list[str]:
        return [LOGIN_VERIFIER]

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
    def approve_ids(self) -> list[str]:
        return list(self.approval_ids[0::2])

    @property
    def reject_ids(self) -> list[str]:
        return list(self.approval_ids[1::2])

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


def _approval_definition() -> Definition:
    return Definition(
        objective="Post the triaged ticket to the tracker.",
        instructions="Post the input to the URL it names.",
        rules=(),
        rigidity=Rigidity.GUIDED,
        tools=(ToolSpec("http_post", EffectClass.EXTERNAL_WRITE),),
    )


def _pending_approvals(use_cases: UseCases, actor: Actor, run_ids: list[str]) -> tuple[str, ...]:
    """Drive the runs until each waits for approval; the ids of their pending approvals.

    The dispatcher claims any claimable run (the app's own workers may be claiming too), so
    this loops until every one of ``run_ids`` waits, or fails after a minute.
    """
    dispatcher = use_cases.dispatcher("contract-seed")
    deadline = time.monotonic() + 60
    while True:
        with use_cases.database() as tx:
            statuses = {run_id: tx.runs.get(actor.workspace_id, run_id) for run_id in run_ids}
        waiting = [r for r in statuses.values() if r and r.status is RunStatus.WAITING_APPROVAL]
        if len(waiting) == len(run_ids):
            break
        stuck = [r.id for r in statuses.values() if r and r.status.finished]
        if stuck or time.monotonic() > deadline:
            raise RuntimeError(f"seeded runs did not reach waiting_approval: {statuses}")
        if not dispatcher.run_next():
            time.sleep(0.02)  # another worker holds the remaining runs
    with use_cases.database() as tx:
        approvals = [
            approval
            for run_id in run_ids
            for approval in tx.runs.list_approvals(
                actor.workspace_id, None, 10, ApprovalFilter(run_id=run_id)
            )
        ]
    return tuple(approval.id for approval in approvals)


def new_workspace_id() -> str:
    return f"wsp_{secrets.token_hex(13)}"


def admin_token(settings: Settings, workspace_id: str) -> str:
    """A session token for the seeded workspace's admin, valid for the length of any run."""
    return mint_session_token(
        settings, workspace_id=workspace_id, subject=SUBJECT, role=Role.ADMIN, ttl_seconds=6 * 3600
    )


def seed(
    uow: Database, settings: Settings, workspace_id: str | None = None, approvals: int = APPROVALS
) -> Seed:
    """Create the workspace, a crew, a published and a draft member, a run, two authoring
    sessions, ``approvals`` pending approvals (of a third member's runs); mint a token."""
    workspace_id = workspace_id or new_workspace_id()
    use_cases = build_use_cases(settings.with_changes(refresh_ttl_seconds=6 * 3600), uow)
    members = use_cases.members
    use_cases.workspaces.ensure_member(workspace_id, SUBJECT, Role.ADMIN, name="Contract tests")
    actor = Actor(workspace_id=workspace_id, subject=SUBJECT, role=Role.ADMIN)
    crew = members.create_crew(actor, "Contract crew", "Seeded for Schemathesis.")
    published = members.create_member(
        actor,
        crew_id=crew.id,
        name="Published member",
        definition=_definition("Summarise new support tickets."),
    )
    members.publish_member(actor, published.id)
    draft = members.create_member(
        actor,
        crew_id=crew.id,
        name="Draft member",
        definition=_definition("Triage incoming bug reports."),
    )
    approver = members.create_member(
        actor, crew_id=crew.id, name="Approval member", definition=_approval_definition()
    )
    members.publish_member(actor, approver.id)
    waiting = [
        use_cases.runs.start_run(actor, approver.id, dict(APPROVAL_INPUT))[0].id
        for _ in range(approvals)
    ]
    approval_ids = _pending_approvals(use_cases, actor, waiting) if waiting else ()
    # Queued after the approval runs are driven, so the seed's dispatcher leaves it queued.
    run, _ = use_cases.runs.start_run(actor, published.id, {})
    sessions = (
        use_cases.authoring.create_authoring_session(actor, crew.id).id,
        use_cases.authoring.create_authoring_session(actor, crew.id, published.id).id,
    )
    token = admin_token(settings, workspace_id)
    subjects = tuple(f"contract-member-{i}" for i in range(MEMBERS))
    for subject in subjects:
        use_cases.workspaces.add_workspace_membership(actor, subject, Role.VIEWER)
    codes, refresh_tokens = _login_secrets(use_cases, workspace_id)
    trigger_ids, webhook_secret = _triggers(use_cases, actor, published.id)
    tool_server_ids, tool_server_url = tool_servers(use_cases, actor, settings)
    return Seed(
        workspace_id,
        token,
        crew.id,
        published.id,
        draft.id,
        run.id,
        sessions,
        approval_ids,
        subjects,
        codes,
        refresh_tokens,
        trigger_ids,
        webhook_secret,
        tool_server_ids,
        tool_server_url,
    )


def tool_servers(
    use_cases: UseCases, actor: Actor, settings: Settings
) -> tuple[tuple[str, ...], str]:
    """Register the run's MCP server (at the first allowed host) in the actor's workspace:
    (the tool server's id, its URL); nothing without an allowed host."""
    hosts = settings.tools.server_allowed_hosts
    if not hosts:
        return (), ""
    url = f"http://{hosts[0]}/mcp"
    server = use_cases.tools.create_tool_server(actor, name="contract-tools", url=url)
    return (server.id,), url


def _triggers(use_cases: UseCases, actor: Actor, member_id: str) -> tuple[tuple[str, ...], str]:
    """A schedule and a webhook trigger of ``member_id``: (their ids, the webhook's secret)."""
    schedule = use_cases.triggers.create_trigger(
        actor, kind="schedule", member_id=member_id, name="Seeded schedule", cron="@daily"
    )
    webhook = use_cases.triggers.create_trigger(
        actor, kind="webhook", member_id=member_id, name="Seeded webhook"
    )
    assert webhook.secret is not None
    return (schedule.trigger.id, webhook.trigger.id), webhook.secret


def _login_secrets(
    use_cases: UseCases, workspace_id: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Session codes of the seeded admin (as a callback stores them), half of them redeemed for
    refresh tokens, so that ``POST /v1/auth/token`` and ``/refresh`` can answer 200."""
    now = datetime.now(UTC)
    codes = [secrets.token_urlsafe(32) for _ in range(SESSION_CODES)]
    with use_cases.database(write=True) as tx:
        for code in codes:
            tx.identity.add_session_code(
                digest(code),
                SUBJECT,
                DEFAULT_TENANT,
                now,
                now + timedelta(hours=6),
                login_challenge=pkce_challenge(LOGIN_VERIFIER),
            )
        tx.commit()
    refresh_tokens = []
    for code in codes[SESSION_CODES // 2 :]:
        grant = use_cases.login.redeem_session_code(
            session_code=code, login_verifier=LOGIN_VERIFIER, workspace_id=workspace_id
        )
        assert isinstance(grant, SessionGrant)
        refresh_tokens.append(grant.refresh_token)
    return tuple(codes[: SESSION_CODES // 2]), tuple(refresh_tokens)
