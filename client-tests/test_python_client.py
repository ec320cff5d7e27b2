"""The main flows through the Python client that ``openapi-python-client`` generates from
openapi.yaml with its default configuration, against a live server: what a team that generates
a client from our contract gets. Every call goes through generated models and parsers; a
response the contract misdescribes makes the client raise or return the wrong type."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from scai_crew_control_plane_api_client import AuthenticatedClient, Client
from scai_crew_control_plane_api_client.api.approvals import (
    approve_approval,
    get_approval,
    list_approvals,
    reject_approval,
)
from scai_crew_control_plane_api_client.api.authoring import (
    create_authoring_session,
    get_authoring_session,
    take_authoring_turn,
)
from scai_crew_control_plane_api_client.api.cost import get_cost
from scai_crew_control_plane_api_client.api.crews import create_crew, get_crew, list_crews
from scai_crew_control_plane_api_client.api.handoffs import (
    get_member_handoffs,
    replace_member_handoffs,
)
from scai_crew_control_plane_api_client.api.members import (
    create_member,
    get_member_draft,
    list_member_versions,
    publish_member,
)
from scai_crew_control_plane_api_client.api.runs import (
    get_run,
    list_run_events,
    list_runs,
    retry_run,
    start_run,
)
from scai_crew_control_plane_api_client.api.stream import stream_events
from scai_crew_control_plane_api_client.api.system import get_health
from scai_crew_control_plane_api_client.api.templates import install_template, list_templates
from scai_crew_control_plane_api_client.api.triggers import (
    create_trigger,
    delete_trigger,
    disable_trigger,
    get_trigger,
    list_trigger_invocations,
)
from scai_crew_control_plane_api_client.api.webhooks import receive_webhook
from scai_crew_control_plane_api_client.api.workspaces import get_workspace, update_workspace
from scai_crew_control_plane_api_client.models import (
    ApprovalRejection,
    AuthoringSessionCreate,
    AuthoringTurnInput,
    CrewCreate,
    DefinitionInput,
    EffectClass,
    ErrorEnvelopeCode,
    HandoffInput,
    HandoffSetInput,
    MemberCreate,
    Problem,
    RunCreate,
    RunCreateInput,
    RunStatus,
    ScheduleTriggerCreate,
    ScheduleTriggerCreateKind,
    TemplateInstall,
    ToolInput,
    WebhookPayload,
    WebhookTriggerCreate,
    WebhookTriggerCreateKind,
    WorkspaceUpdate,
)
from scai_crew_control_plane_api_client.models.handoff_condition_type_0 import (
    HandoffConditionType0,
)

from domain.triggers import sign

DEADLINE = 30.0


@pytest.fixture(scope="module")
def api(live: Any) -> Iterator[AuthenticatedClient]:
    client = AuthenticatedClient(
        base_url=live.base_url, token=live.token, raise_on_unexpected_status=True
    )
    with client:
        yield client


@pytest.fixture(scope="module")
def anonymous(live: Any) -> Iterator[Client]:
    with Client(base_url=live.base_url, raise_on_unexpected_status=True) as client:
        yield client


@pytest.fixture(scope="module")
def crew_id(api: AuthenticatedClient) -> str:
    r = create_crew.sync_detailed(client=api, body=CrewCreate(name="Generated client crew"))
    assert r.status_code == 201, r.content
    assert r.headers["location"] == f"/v1/crews/{r.parsed.id}"
    return str(r.parsed.id)


def _member(
    api: AuthenticatedClient, crew_id: str, name: str, *tools: tuple[str, EffectClass]
) -> str:
    body = MemberCreate(
        crew_id=crew_id,
        name=name,
        definition=DefinitionInput(
            objective=f"{name}: handle the input.",
            tools=[ToolInput(name=tool, effect_class=effect) for tool, effect in tools],
        ),
    )
    created = create_member.sync(client=api, body=body)
    assert not isinstance(created, Problem), created
    version = publish_member.sync(created.id, client=api)
    assert not isinstance(version, Problem) and version.number == 1
    return str(created.id)


def _run_input(**values: Any) -> RunCreateInput:
    run_input = RunCreateInput()
    run_input.additional_properties = values
    return run_input


def _wait(api: AuthenticatedClient, run_id: str, *statuses: RunStatus) -> Any:
    deadline = time.monotonic() + DEADLINE
    while True:
        run = get_run.sync(run_id, client=api)
        assert not isinstance(run, Problem), run
        if run.status in statuses:
            return run
        assert time.monotonic() < deadline, f"run {run_id} stuck in {run.status}"
        time.sleep(0.05)


def test_health_and_workspace(anonymous: Client, api: AuthenticatedClient) -> None:
    health = get_health.sync(client=anonymous)
    assert health is not None and health.status.value == "ok"
    updated = update_workspace.sync(client=api, body=WorkspaceUpdate(description="Via a client."))
    assert not isinstance(updated, Problem) and updated.description == "Via a client."
    workspace = get_workspace.sync(client=api)
    assert not isinstance(workspace, Problem) and workspace.id == updated.id


def test_crew_member_publish_run_to_success_and_events(
    api: AuthenticatedClient, crew_id: str
) -> None:
    crew = get_crew.sync(crew_id, client=api)
    assert not isinstance(crew, Problem) and crew.name == "Generated client crew"
    member_id = _member(api, crew_id, "Note keeper", ("notes_write", EffectClass.INTERNAL))
    unpublished = create_member.sync(
        client=api,
        body=MemberCreate(
            crew_id=crew_id, name="Draft only", definition=DefinitionInput(objective="x")
        ),
    )
    assert not isinstance(unpublished, Problem)
    draft = get_member_draft.sync(unpublished.id, client=api)
    assert not isinstance(draft, Problem) and draft.program is None and draft.number == 1
    versions = list_member_versions.sync(member_id, client=api)
    assert not isinstance(versions, Problem)
    assert versions.items[0].program is not None and versions.items[0].program.format_

    started = start_run.sync_detailed(
        member_id, client=api, body=RunCreate(input_=_run_input(ticket=42, tags=["a", "b"]))
    )
    assert started.status_code == 202 and started.headers["location"].startswith("/v1/runs/")
    run = _wait(api, started.parsed.id, RunStatus.SUCCEEDED, RunStatus.FAILED)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.input_.additional_properties == {"ticket": 42, "tags": ["a", "b"]}
    assert run.output is not None and isinstance(run.output.to_dict(), dict)

    events = list_run_events.sync(run.id, client=api)
    assert not isinstance(events, Problem)
    types = [event.type_ for event in events.items]
    assert types[0] == "run.queued" and types[-1] == "run.succeeded"

    text = stream_events.sync(client=api, last_event_id_query=0, max_seconds=1)
    assert isinstance(text, str) and "event: run.changed" in text


def test_approval_approve_and_reject(api: AuthenticatedClient, crew_id: str) -> None:
    member_id = _member(api, crew_id, "Poster", ("http_post", EffectClass.EXTERNAL_WRITE))
    approvals = []
    for _ in range(2):
        run = start_run.sync(
            member_id, client=api, body=RunCreate(input_=_run_input(url="http://127.0.0.1:9/"))
        )
        assert not isinstance(run, Problem)
        _wait(api, run.id, RunStatus.WAITING_APPROVAL)
        page = list_approvals.sync(client=api, run_id=run.id)
        assert not isinstance(page, Problem) and len(page.items) == 1
        approvals.append(page.items[0])
    assert approvals[0].arguments.additional_properties.get("url") == "http://127.0.0.1:9/"

    approved = approve_approval.sync(approvals[0].id, client=api)
    assert not isinstance(approved, Problem) and approved.status.value == "approved"
    rejected = reject_approval.sync(
        approvals[1].id, client=api, body=ApprovalRejection(reason="Not this one.")
    )
    assert not isinstance(rejected, Problem) and rejected.status.value == "rejected"
    again = approve_approval.sync(approvals[1].id, client=api)
    assert isinstance(again, Problem) and again.error.code == ErrorEnvelopeCode.CONFLICT
    read = get_approval.sync(approvals[1].id, client=api)
    assert not isinstance(read, Problem) and read.reason == "Not this one."
    failed = _wait(api, rejected.run_id, RunStatus.FAILED)
    assert failed.error is not None


def test_runs_pagination_and_cost(api: AuthenticatedClient, crew_id: str) -> None:
    member_id = _member(api, crew_id, "Counter", ("notes_write", EffectClass.INTERNAL))
    for n in range(3):
        run = start_run.sync(member_id, client=api, body=RunCreate(input_=_run_input(n=n)))
        assert not isinstance(run, Problem)
        _wait(api, run.id, RunStatus.SUCCEEDED)
    seen: list[str] = []
    cursor = None
    while True:
        page = list_runs.sync(client=api, member_id=member_id, limit=1, cursor=cursor)
        assert not isinstance(page, Problem)
        seen += [run.id for run in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 3
    cost = get_cost.sync(client=api)
    assert not isinstance(cost, Problem)
    assert any(m.member_id == member_id and m.runs == 3 for m in cost.members)


def test_template_install_and_authoring_turn(api: AuthenticatedClient, crew_id: str) -> None:
    templates = list_templates.sync(client=api)
    assert not isinstance(templates, Problem) and templates.items
    installed = install_template.sync(
        templates.items[0].ref,
        client=api,
        body=TemplateInstall(crew_id=crew_id, name="From template"),
    )
    assert not isinstance(installed, Problem) and installed.draft_version_number == 1

    session = create_authoring_session.sync(
        client=api, body=AuthoringSessionCreate(crew_id=crew_id)
    )
    assert not isinstance(session, Problem) and session.draft is None
    turn = take_authoring_turn.sync(
        session.id,
        client=api,
        body=AuthoringTurnInput(message="Every morning fetch our status page and keep a note."),
    )
    assert not isinstance(turn, Problem)
    assert turn.reply and turn.draft.objective and turn.session.member_id
    again = get_authoring_session.sync(session.id, client=api)
    assert not isinstance(again, Problem) and len(again.messages) == 2


def test_triggers_and_a_signed_webhook(
    live: Any, anonymous: Client, api: AuthenticatedClient, crew_id: str
) -> None:
    member_id = _member(api, crew_id, "Triggered", ("notes_write", EffectClass.INTERNAL))
    schedule = create_trigger.sync(
        client=api,
        body=ScheduleTriggerCreate(
            kind=ScheduleTriggerCreateKind.SCHEDULE,
            member_id=member_id,
            name="Mornings",
            cron="0 9 * * mon-fri",
            timezone="Europe/Amsterdam",
        ),
    )
    assert not isinstance(schedule, Problem) and schedule.timezone == "Europe/Amsterdam"
    assert disable_trigger.sync(schedule.id, client=api).enabled is False

    hook = create_trigger.sync(
        client=api,
        body=WebhookTriggerCreate(
            kind=WebhookTriggerCreateKind.WEBHOOK, member_id=member_id, name="Helpdesk"
        ),
    )
    assert not isinstance(hook, Problem) and hook.secret and hook.ingress_url
    payload = WebhookPayload()
    payload.additional_properties = {"ticket": 7, "subject": "Printer on fire"}
    # The signature covers the exact bytes sent: the generated client sends httpx's JSON.
    raw = httpx.Request("POST", live.base_url, json=payload.to_dict()).content
    stamp = str(int(time.time()))
    accepted = receive_webhook.sync(
        hook.id,
        client=anonymous,
        body=payload,
        x_scai_crew_timestamp=stamp,
        x_scai_crew_signature=sign(hook.secret, stamp, raw),
    )
    assert not isinstance(accepted, Problem), accepted
    run = _wait(api, accepted.run_id, RunStatus.SUCCEEDED)
    assert run.input_.additional_properties == json.loads(raw)
    log = list_trigger_invocations.sync(hook.id, client=api)
    assert not isinstance(log, Problem) and log.items[0].run_id == run.id

    assert delete_trigger.sync_detailed(schedule.id, client=api).status_code == 204
    gone = get_trigger.sync(schedule.id, client=api)
    assert isinstance(gone, Problem) and gone.status == 404


def test_handoffs(api: AuthenticatedClient, crew_id: str) -> None:
    source = _member(api, crew_id, "Source", ("notes_write", EffectClass.INTERNAL))
    target = _member(api, crew_id, "Target", ("notes_write", EffectClass.INTERNAL))
    body = HandoffSetInput(
        handoffs=[
            HandoffInput(
                target_member_id=target,
                condition=HandoffConditionType0(output_field="escalate", equals=True),
            )
        ]
    )
    replaced = replace_member_handoffs.sync(source, client=api, body=body)
    assert not isinstance(replaced, Problem), replaced
    read = get_member_handoffs.sync(source, client=api)
    assert not isinstance(read, Problem)
    [handoff] = read.handoffs
    assert handoff.target_member_id == target and handoff.position == 0
    assert handoff.condition is not None and handoff.condition.output_field == "escalate"


def test_errors_are_parsed_into_the_problem_model(
    live: Any, anonymous: Client, api: AuthenticatedClient
) -> None:
    missing = get_crew.sync("crw_" + "0" * 26, client=api)
    assert isinstance(missing, Problem)
    assert missing.status == 404 and missing.error.code == ErrorEnvelopeCode.NOTFOUND
    assert missing.detail and missing.instance == "/v1/crews/crw_" + "0" * 26
    assert missing.error.trace_id

    invalid = list_crews.sync(client=api, cursor="made-up")
    assert isinstance(invalid, Problem) and invalid.error.code == ErrorEnvelopeCode.INVALIDCURSOR

    bad = create_crew.sync(client=api, body=CrewCreate(name=""))
    assert isinstance(bad, Problem) and bad.error.code == ErrorEnvelopeCode.VALIDATIONERROR
    assert bad.error.details.errors[0].pointer == "/name"

    with AuthenticatedClient(base_url=live.base_url, token=live.viewer_token) as viewer:
        forbidden = create_crew.sync(client=viewer, body=CrewCreate(name="Nope"))
    assert isinstance(forbidden, Problem) and forbidden.error.code == ErrorEnvelopeCode.FORBIDDEN

    nobody = get_workspace.sync(client=anonymous)
    assert isinstance(nobody, Problem) and nobody.error.code == ErrorEnvelopeCode.UNAUTHORIZED

    run_id = "run_" + "0" * 26
    deferred = retry_run.sync(run_id, client=api)
    assert isinstance(deferred, Problem) and deferred.status == 404
