"""Schemathesis against the in-process ASGI app: every check, every phase, zero failures.

``test_api`` runs the examples, coverage and fuzzing phases for every operation (one subtest
per operation); ``TestWorkflow`` walks the OpenAPI links (explicit and inferred) with the state
machine. Both authenticate as the admin of a freshly seeded workspace (a crew, a published
member, a draft member, a run, authoring sessions, pending approvals, workspace members,
session codes and refresh tokens) and often swap well-formed generated ids (and template refs,
subjects, session codes, refresh tokens) for the seeded ones, so cases reach the 2xx paths and
not only 404s. Login is configured against a real OIDC provider process on loopback. A
schedule and a webhook trigger are seeded too, and generated webhook deliveries are signed
with the seeded secret (``_register_webhook_signing``), so ingress can answer 202. All
checks run (``call_and_validate`` with the configured set, which is every check);
Schemathesis' own configuration is ``schemathesis.toml`` at the repository root (shared with
``run_cli.py``).

Runs are bounded and reproducible: fixed example counts, ``derandomize=True``, no deadline.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from contract_seed import APPROVALS, Seed, admin_token, new_workspace_id, seed
from hypothesis import strategies as st
from pydantic import SecretStr

from domain.database import Database
from domain.triggers import sign
from scaicrew.app import create_app
from scaicrew.settings import SessionGroup, Settings
from tests.support.mcp_server import McpServerProcess
from tests.support.oidc_provider import OidcProvider, login_settings

MAX_EXAMPLES = 100
STATEFUL_EXAMPLES = 60
STATEFUL_STEPS = 10
STATEFUL_APPROVALS = 2  # per scenario: each reseeds, and the links lead to the first pending one

CREW_ID = re.compile(r"^crw_[0-9a-z]{26}$")
MEMBER_ID = re.compile(r"^mem_[0-9a-z]{26}$")
RUN_ID = re.compile(r"^run_[0-9a-z]{26}$")
SESSION_ID = re.compile(r"^ses_[0-9a-z]{26}$")
APPROVAL_ID = re.compile(r"^apr_[0-9a-z]{26}$")
TEMPLATE_REF = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
TRIGGER_ID = re.compile(r"^trg_[0-9a-z]{26}$")
TOOL_SERVER_ID = re.compile(r"^tsv_[0-9a-z]{26}$")
TOOL_SERVER_URL = re.compile(
    r"^https?://(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?(?:[/?#][\x21-\x7e]*)?$"
)
WEBHOOK_PATH = "/v1/webhooks/{trigger_id}"
WEBHOOK_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
WEBHOOK_SIGNATURE = re.compile(r"^sha256=[0-9a-f]{64}$")
SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:|+-]{0,254}$")
LOGIN_SECRET = re.compile(r"^[A-Za-z0-9_-]{20,200}$")
LOGIN_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
LOGIN_WORKSPACE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _swap_ids(values: Any, fields: dict[str, tuple[re.Pattern[str], Any]]) -> Any:
    """A strategy that may replace well-formed ids in ``values`` by seeded ones.

    Only values that already match the id pattern are swapped, so a negative case stays
    negative and a positive one stays positive: only the chance of hitting a real row changes.
    """
    if not isinstance(values, dict):
        return st.just(values)
    choices = {
        key: st.sampled_from([*ids, values[key]])
        for key, (pattern, ids) in fields.items()
        if isinstance(values.get(key), str) and pattern.fullmatch(values[key])
    }
    if not choices:
        return st.just(values)
    return st.fixed_dictionaries(choices).map(lambda picked: {**values, **picked})


class _SeededIds:
    """The seeded ids, read when cases are drawn (the seed exists only once tests run)."""

    def __init__(self, seeds: list[Seed], attribute: str) -> None:
        self.seeds = seeds
        self.attribute = attribute

    def __iter__(self) -> Any:
        return iter(getattr(self.seeds[0], self.attribute) if self.seeds else [])


def _register_seed_hooks(schema: Any, seeds: list[Seed]) -> None:
    ids: dict[str, tuple[re.Pattern[str], Any]] = {
        "crew_id": (CREW_ID, _SeededIds(seeds, "crew_ids")),
        "member_id": (MEMBER_ID, _SeededIds(seeds, "member_ids")),
        "run_id": (RUN_ID, _SeededIds(seeds, "run_ids")),
        "session_id": (SESSION_ID, _SeededIds(seeds, "session_ids")),
        "ref": (TEMPLATE_REF, _SeededIds(seeds, "template_refs")),
        "trigger_id": (TRIGGER_ID, _SeededIds(seeds, "trigger_ids")),
        "tool_server_id": (TOOL_SERVER_ID, _SeededIds(seeds, "tool_server_ids")),
        "subject": (SUBJECT, _SeededIds(seeds, "subjects")),
    }
    login_secrets: dict[str, tuple[re.Pattern[str], Any]] = {
        "session_code": (LOGIN_SECRET, _SeededIds(seeds, "session_codes")),
        "refresh_token": (LOGIN_SECRET, _SeededIds(seeds, "refresh_tokens")),
        "login_verifier": (LOGIN_VERIFIER, _SeededIds(seeds, "login_verifiers")),
        "workspace_id": (LOGIN_WORKSPACE, _SeededIds(seeds, "workspace_ids")),
    }

    # Approve and reject draw from disjoint halves of the seeded approvals, so both reach 200
    # before the approvals run out (a decided approval answers 409 after that).
    approvals = {
        "approve": _SeededIds(seeds, "approve_ids"),
        "reject": _SeededIds(seeds, "reject_ids"),
    }
    all_approvals = _SeededIds(seeds, "approval_ids")

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: Any) -> Any:
        path = context.operation.path if context.operation is not None else ""
        pool = approvals.get(path.rsplit("/", 1)[-1], all_approvals)
        strategy = _swap_ids(path_parameters, {**ids, "approval_id": (APPROVAL_ID, pool)})
        number = path_parameters.get("number") if isinstance(path_parameters, dict) else None
        if isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= 2**31 - 1:
            # Both seeded members have a version 1.
            strategy = strategy.flatmap(
                lambda p: st.sampled_from([1, number]).map(lambda n: {**p, "number": n})
            )
        return strategy

    @schema.hook
    def flatmap_query(context: Any, query: Any) -> Any:
        return _swap_ids(query, ids)

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> Any:
        if not isinstance(body, dict):
            return st.just(body)
        if isinstance(body.get("handoffs"), list):
            items = body["handoffs"]
            targets = {"target_member_id": ids["member_id"]}
            return st.tuples(*(_swap_ids(item, targets) for item in items)).map(
                lambda swapped: {**body, "handoffs": list(swapped)}
            )
        return _swap_ids(
            body,
            {
                "crew_id": ids["crew_id"],
                "member_id": ids["member_id"],
                "subject": ids["subject"],
                # Registrations may name the run's real MCP server.
                "url": (TOOL_SERVER_URL, _SeededIds(seeds, "tool_server_urls")),
                **login_secrets,
            },
        )


def _register_webhook_signing(seeds: list[Seed]) -> None:
    """Sign generated webhook deliveries with the seeded secret, so positive cases reach 202.

    Only deliveries whose generated headers and body are already valid are signed (a negative
    case stays negative): the timestamp becomes now, the signature covers the exact bytes
    sent, and those bytes are passed to the transport instead of the body it would serialise.
    ``before_call`` hooks are global in Schemathesis (they are dispatched from ``Case.call``).
    """

    @schemathesis.hook
    def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
        if case.operation.path != WEBHOOK_PATH or not seeds or not seeds[0].webhook_secret:
            return
        headers = dict(case.headers or {})
        stamp = headers.get("X-ScaiCrew-Timestamp")
        signature = headers.get("X-ScaiCrew-Signature")
        if not (
            isinstance(case.body, dict)
            and isinstance(stamp, str)
            and isinstance(signature, str)
            and WEBHOOK_TIMESTAMP.fullmatch(stamp)
            and WEBHOOK_SIGNATURE.fullmatch(signature)
        ):
            return
        raw = json.dumps(case.body).encode("utf-8")
        now = str(int(time.time()))
        headers["X-ScaiCrew-Timestamp"] = now
        headers["X-ScaiCrew-Signature"] = sign(seeds[0].webhook_secret, now, raw)
        case.headers = headers
        kwargs["data"] = raw


class BoundApp:
    """The ASGI app under test, bound by a fixture before any test runs.

    Schemathesis needs its schema (and, for the coverage phase, authenticated cases) at import
    time: its lazy ``from_fixture`` loader fails on pytest 9.2, whose nodes lost ``_nodeid``.
    The database and its seed come from session fixtures (conftest.py), though. So the schema
    is loaded from an app built from the same factory and contract, and every request then goes
    through this proxy to the app that ``_bind_app`` builds over the session's database. That
    fixture also runs the bound app's lifespan (run workers, database disposal), so the proxy
    answers lifespan messages itself.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await self.app(scope, receive, send)


class Session:
    """What the bound app serves: its database, its settings and the current seeded workspace.

    Session tokens are minted at import, for a workspace the fixture then creates under that
    id; the app under test verifies them with these session-token settings (every other setting
    is conftest's).
    """

    token_settings = Settings(
        env="test", session=SessionGroup(secret=SecretStr("ct-" + secrets.token_hex(24)))
    )
    workspace_id = new_workspace_id()
    token = admin_token(token_settings, workspace_id)
    database: Database | None = None
    settings: Settings | None = None
    seeds: list[Seed] = []

    @classmethod
    def reseed(cls, workspace_id: str | None = None, approvals: int = APPROVALS) -> None:
        assert cls.database is not None and cls.settings is not None
        cls.seeds[:] = [seed(cls.database, cls.settings, workspace_id, approvals)]
        cls.token = cls.seeds[0].token


APP = BoundApp(
    create_app(Session.token_settings.with_changes(database_url="sqlite://", worker_threads=0))
)

schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.auth(refresh_interval=None)  # no caching: each stateful scenario has its own workspace
class SessionToken:
    """The seeded workspace admin's session token on every generated request."""

    def get(self, case: Any, context: Any) -> str:
        return Session.token

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


_register_seed_hooks(schema, Session.seeds)
_register_webhook_signing(Session.seeds)


@pytest.fixture(scope="module", autouse=True)
def _bind_app(
    settings: Settings, database: Database, oidc_provider: OidcProvider
) -> Iterator[None]:
    # A real MCP server on loopback, the only host tool servers may be registered on.
    mcp = McpServerProcess()
    Session.database = database
    # Login configured against a real provider process, so login answers 200, not 502.
    Session.settings = login_settings(settings, oidc_provider).with_changes(
        session_secret=Session.token_settings.session.secret,
        session_issuer=Session.token_settings.session.issuer,
        session_audience=Session.token_settings.session.audience,
        stream_max_seconds=0.5,  # GET /v1/stream ends, so each of its cases does
        # No in-process workers: a run stays where the scenario's own steps put it, so that
        # replays see the same answers (cancelling a run a worker may have finished meanwhile
        # would answer 200 or 409 by timing); the seed drives its runs itself.
        worker_threads=0,
        tool_server_allowed_hosts=mcp.host,
    )
    Session.reseed(Session.workspace_id)
    app = create_app(Session.settings)
    try:
        with app.test_client():  # runs the app's lifespan around the tests
            APP.app = app
            yield
    finally:
        mcp.stop()


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api(case: Any) -> None:
    case.call_and_validate()


class Workflow(schema.as_state_machine()):  # type: ignore[misc]
    """Link-driven scenarios, each in a fresh seeded workspace.

    A scenario's responses then depend only on its own steps (crew names, for instance, are
    unique per workspace), which Hypothesis needs to replay and shrink scenarios consistently.
    """

    def setup(self) -> None:
        Session.reseed(approvals=STATEFUL_APPROVALS)


TestWorkflow = Workflow.TestCase
TestWorkflow.settings = hypothesis.settings(
    TestWorkflow.settings,
    max_examples=STATEFUL_EXAMPLES,
    stateful_step_count=STATEFUL_STEPS,
    deadline=None,
    derandomize=True,
    database=None,
)
