"""Runs driven by an OpenAI-compatible chat-completions endpoint (a real local HTTP server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from domain.kernel import Role
from tests.support.peers import Peer, chat_route, run_input_of, web_route
from tests.support.runs import (
    NOTES,
    POSTER,
    app_client,
    approvals_of,
    definition,
    event_types,
    events,
    published_member,
    run_to_end,
    start,
    wait_for,
)

TIMEOUT = 1.0
UNITS_PER_1K = 2.5


@pytest.fixture(scope="module")
def chat() -> Iterator[Peer]:
    peer = Peer(chat_route).start()
    yield peer
    peer.close()


@pytest.fixture(scope="module")
def web() -> Iterator[Peer]:
    peer = Peer(web_route).start()
    yield peer
    peer.close()


@pytest.fixture(scope="module")
def api(settings: Any, chat: Peer, web: Peer) -> Iterator[httpx.Client]:
    with app_client(
        settings,
        tool_http_allowlist=(f"127.0.0.1:{web.port}",),
        model="openai",
        model_base_url=chat.url("/v1/"),
        model_api_key=SecretStr("sk-test-key"),
        model_name="test-model-1",
        model_timeout_seconds=TIMEOUT,
        cost_units_per_1k_tokens=UNITS_PER_1K,
    ) as c:
        yield c


def requests_for(chat: Peer, marker: str) -> list[dict[str, Any]]:
    """The chat requests made for runs whose input carries ``marker``."""
    return [
        r.json()
        for r in chat.received("POST", "/v1/chat/completions")
        if run_input_of(r.json()).get("marker") == marker
    ]


class TestChatCompletionsModel:
    def test_tool_calls_then_a_final_json_answer(self, api, chat, tenant):
        h = tenant.headers()
        member = published_member(api, h, NOTES)
        marker = tenant.workspace_id
        note = {"key": "from-model", "value": "written by the model"}
        run = run_to_end(
            api, h, member["id"], {"scenario": "notes", "marker": marker, "note": note}
        )
        assert run["status"] == "succeeded", run["error"]
        assert run["output"] == {"done": True, "written": True}
        assert (run["tokens_in"], run["tokens_out"]) == (300, 50)
        assert run["cost_units"] == pytest.approx(350 / 1000 * UNITS_PER_1K)

        first, second = requests_for(chat, marker)
        assert first["model"] == "test-model-1"
        assert first["messages"][0]["role"] == "system"
        assert first["messages"][0]["content"].startswith("Objective: Exercise the run engine.")
        assert json.loads(first["messages"][1]["content"])["marker"] == marker
        tools = {t["function"]["name"]: t for t in first["tools"]}
        assert set(tools) == {"notes_write", "notes_read"}
        assert tools["notes_write"]["type"] == "function"
        assert tools["notes_write"]["function"]["parameters"]["required"] == ["key", "value"]
        # the second request carries the call and its result, linked by the call id
        assistant, result = second["messages"][-2:]
        assert assistant["tool_calls"][0]["id"] == "call_a"
        assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == note
        assert result["role"] == "tool" and result["tool_call_id"] == "call_a"
        assert json.loads(result["content"]) == {"key": "from-model", "written": True}

        replies = [e["data"] for e in events(api, h, run["id"]) if e["type"] == "model.replied"]
        assert replies == [
            {
                "model": "test-model-1",
                "tool_calls": ["notes_write"],
                "tokens_in": 100,
                "tokens_out": 20,
            },
            {"model": "test-model-1", "tool_calls": [], "tokens_in": 200, "tokens_out": 30},
        ]

    def test_the_usage_lands_in_the_cost_ledger(self, api, tenant):
        h = tenant.headers()
        member = published_member(api, h, NOTES)
        before = datetime.now(UTC) - timedelta(seconds=1)
        for _ in range(2):
            run_to_end(api, h, member["id"], {"scenario": "notes"})
        after = datetime.now(UTC) + timedelta(seconds=1)
        window = f"from={before.isoformat()}&to={after.isoformat()}".replace("+", "%2B")
        body = api.get(f"/v1/cost?{window}", headers=tenant.headers(Role.VIEWER)).json()
        assert body["members"] == [
            {
                "member_id": member["id"],
                "runs": 2,
                "tokens_in": 600,
                "tokens_out": 100,
                "cost_units": pytest.approx(700 / 1000 * UNITS_PER_1K),
            }
        ]

    def test_the_api_key_is_sent_as_a_bearer_token(self, api, chat, tenant):
        h = tenant.headers()
        member = published_member(api, h, definition())
        run_to_end(api, h, member["id"], {"marker": "auth-" + tenant.workspace_id})
        [request] = [
            r
            for r in chat.received("POST")
            if run_input_of(r.json()).get("marker") == "auth-" + tenant.workspace_id
        ]
        assert request.headers["authorization"] == "Bearer sk-test-key"
        assert "tools" not in request.json()  # a member without tools sends none

    def test_a_final_answer_that_is_not_json_becomes_text_output(self, api, tenant):
        h = tenant.headers()
        member = published_member(api, h, definition())
        run = run_to_end(api, h, member["id"], {"scenario": "text"})
        assert run["status"] == "succeeded"
        assert run["output"] == {"text": "All done."}

    @pytest.mark.parametrize(
        ("scenario", "code", "message"),
        [
            ("garbage", "ModelError", "not a chat completion"),
            ("html", "ModelError", "not a chat completion"),
            ("error", "ModelError", "HTTP 500"),
            ("slow", "ModelError", f"timed out after {TIMEOUT:g}s"),
            ("bad_arguments", "ModelError", "not a chat completion"),
            ("unknown_tool", "UnknownTool", "'launch_rockets'"),
            ("nul_output", "ModelError", "NUL character"),
            ("nul_arguments", "ModelError", "NUL character"),
        ],
    )
    def test_a_misbehaving_endpoint_fails_the_run_with_a_readable_error(
        self, api, tenant, scenario, code, message
    ):
        h = tenant.headers()
        member = published_member(api, h, NOTES)
        run = run_to_end(api, h, member["id"], {"scenario": scenario})
        assert run["status"] == "failed"
        assert run["error"]["code"] == code
        assert message in run["error"]["message"]
        assert run["finished_at"] is not None
        assert event_types(api, h, run["id"])[-1] == "run.failed"
        assert "Traceback" not in json.dumps(run)


def test_a_model_that_never_answers_hits_the_step_limit(api, tenant):
    h = tenant.headers()
    member = published_member(api, h, NOTES)
    run = run_to_end(api, h, member["id"], {"scenario": "loop"})
    assert run["status"] == "failed"
    assert run["error"] == {"code": "StepLimit", "message": "The run exceeded its step limit."}
    types = event_types(api, h, run["id"])
    assert types.count("model.replied") == types.count("tool.succeeded") == 16  # 32 steps


def test_each_gated_call_needs_its_own_approval_even_under_a_reused_call_id(api, tenant, web):
    """Some endpoints number tool calls per reply (``call_0`` every time): approving the first
    POST must not approve the second."""
    h = tenant.headers()
    member = published_member(api, h, POSTER)
    base = web.url("/reused/" + tenant.workspace_id)
    run = start(api, h, member["id"], {"scenario": "repeat_post", "url": base})
    for n in (1, 2):
        wait_for(api, h, run["id"], ("waiting_approval",))
        pending = [a for a in approvals_of(api, h, run["id"]) if a["status"] == "pending"]
        assert [a["arguments"]["url"] for a in pending] == [f"{base}/{n}"]
        assert len(web.received("POST", "/reused/" + tenant.workspace_id)) == n - 1
        r = api.post(f"/v1/approvals/{pending[0]['id']}/approve", headers=h)
        assert r.status_code == 200, r.text
    done = wait_for(api, h, run["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["output"] == {"posted": 2}
    posts = web.received("POST", "/reused/" + tenant.workspace_id)
    assert [p.path.rsplit("/", 1)[1] for p in posts] == ["1", "2"]
