"""Definitions and runs using tool server tools, against a real MCP server process: the catalog
check at save and publish, the pinned schema, and calls through the engine's one tool path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import create_crew, create_member, publish
from tests.support.mcp_server import McpServerProcess
from tests.support.runs import (
    app_client,
    approvals_of,
    definition,
    events,
    run_to_end,
    start,
    wait_for,
)

SECRET = "sk-run-" + "k3y" * 10
# Long enough for an MCP session and call on a machine busy with two suites at once.
CALL_TIMEOUT = 4.0


@pytest.fixture(scope="module")
def mcp() -> Iterator[McpServerProcess]:
    server = McpServerProcess(key=SECRET)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def doomed() -> Iterator[McpServerProcess]:
    """A server that is stopped in the middle of a test (server down)."""
    server = McpServerProcess()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(settings: Any, mcp: McpServerProcess, doomed: McpServerProcess) -> Iterator[httpx.Client]:
    with app_client(
        settings,
        tool_server_allowed_hosts=f"{mcp.host},{doomed.host}",
        tool_call_timeout_seconds=CALL_TIMEOUT,
        tool_result_max_chars=500,
    ) as c:
        yield c


@pytest.fixture
def server(api: httpx.Client, tenant: Any, mcp: McpServerProcess) -> str:
    """A tool server named ``tools`` in the tenant's workspace, ``lookup`` marked a read."""
    body = {"name": "tools", "url": mcp.url, "headers": {"X-Api-Key": SECRET}}
    r = api.post("/v1/tool-servers", json=body, headers=tenant.headers())
    assert r.status_code == 201, r.text
    effects = {"effect_classes": {"lookup": "external_read", "slow": "internal"}}
    effects["effect_classes"].update(broken="internal", big="internal")
    r = api.patch(f"/v1/tool-servers/{r.json()['id']}", json=effects, headers=tenant.headers())
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def member(api: httpx.Client, tenant: Any, *tools: tuple[str, str]) -> dict[str, Any]:
    crew = create_crew(api, tenant.headers())
    created = create_member(api, tenant.headers(), crew["id"], definition=definition(*tools))
    publish(api, tenant.headers(), created["id"])
    return created


def run(api: httpx.Client, tenant: Any, member_id: str, **tool_args: Any) -> dict[str, Any]:
    return run_to_end(api, tenant.headers(), member_id, {"tool_args": tool_args})


def tool_results(api: httpx.Client, tenant: Any, run_id: str) -> list[dict[str, Any]]:
    return [
        e["data"] for e in events(api, tenant.headers(), run_id) if e["type"] == "tool.succeeded"
    ]


class TestDefinitionsAgainstTheCatalog:
    def test_an_unknown_server_tool_is_409_at_save_naming_it(self, api, tenant, server):
        crew = create_crew(api, tenant.headers())
        for name in ("mcp:tools/nope", "mcp:nowhere/lookup"):
            body = {
                "crew_id": crew["id"],
                "name": name,
                "definition": definition((name, "internal")),
            }
            r = api.post("/v1/members", json=body, headers=tenant.headers())
            assert r.status_code == 409, r.text
            assert r.json()["type"] == "/problems/unknown-tool"
            assert name in r.json()["detail"]

    def test_another_effect_class_than_the_catalogs_is_409_at_save(self, api, tenant, server):
        crew = create_crew(api, tenant.headers())
        created = create_member(api, tenant.headers(), crew["id"])
        tools = definition(("mcp:tools/lookup", "external_write"))
        r = api.put(f"/v1/members/{created['id']}/draft", json=tools, headers=tenant.headers())
        assert r.status_code == 409, r.text
        assert r.json()["type"] == "/problems/tool-effect-class"
        assert "mcp:tools/lookup" in r.json()["detail"]

    def test_publish_pins_the_tools_input_schema_in_the_program(self, api, tenant, server):
        created = member(api, tenant, ("mcp:tools/lookup", "external_read"))
        r = api.get(f"/v1/members/{created['id']}/versions/1", headers=tenant.headers())
        [tool] = r.json()["program"]["tools"]
        assert tool["input_schema"]["required"] == ["word"]

    def test_a_tool_gone_from_the_catalog_since_the_save_is_409_at_publish(
        self, api, tenant, server
    ):
        crew = create_crew(api, tenant.headers())
        tools = definition(("mcp:tools/lookup", "external_read"))
        created = create_member(api, tenant.headers(), crew["id"], definition=tools)
        api.delete(f"/v1/tool-servers/{server}", headers=tenant.headers())
        r = api.post(f"/v1/members/{created['id']}/publish", headers=tenant.headers())
        assert r.status_code == 409
        assert r.json()["type"] == "/problems/unknown-tool"


class TestRuns:
    def test_a_read_tool_is_called_and_its_result_is_in_the_events(self, api, tenant, server):
        created = member(api, tenant, ("mcp:tools/lookup", "external_read"))
        done = run(api, tenant, created["id"], **{"mcp:tools/lookup": {"word": "hi"}})
        assert done["status"] == "succeeded", done["error"]
        [result] = tool_results(api, tenant, done["id"])
        assert result["tool"] == "mcp:tools/lookup"
        assert json.loads(result["result"])["structured_content"]["upper"] == "HI"

    def test_the_offline_model_takes_arguments_from_the_run_input_by_default(
        self, api, tenant, server
    ):
        created = member(api, tenant, ("mcp:tools/lookup", "external_read"))
        done = run_to_end(api, tenant.headers(), created["id"], {"word": "abc", "other": 1})
        assert done["status"] == "succeeded", done["error"]
        [result] = tool_results(api, tenant, done["id"])
        assert json.loads(result["result"])["structured_content"]["length"] == 3

    def test_arguments_off_the_input_schema_fail_before_the_call(self, api, tenant, server):
        created = member(api, tenant, ("mcp:tools/lookup", "external_read"))
        done = run(api, tenant, created["id"], **{"mcp:tools/lookup": {"word": 5}})
        assert done["status"] == "failed"
        assert done["error"]["code"] == "ToolFailed"
        assert "invalid arguments" in done["error"]["message"]

    def test_a_write_tool_waits_for_approval_then_runs(self, api, tenant, server):
        created = member(api, tenant, ("mcp:tools/send", "external_write"))
        args = {"mcp:tools/send": {"to": "ada", "text": "hello"}}
        queued = start(api, tenant.headers(), created["id"], {"tool_args": args})
        wait_for(api, tenant.headers(), queued["id"], ("waiting_approval",))
        [approval] = approvals_of(api, tenant.headers(), queued["id"])
        r = api.post(f"/v1/approvals/{approval['id']}/approve", headers=tenant.headers())
        assert r.status_code == 200, r.text
        done = wait_for(api, tenant.headers(), queued["id"])
        assert done["status"] == "succeeded", done["error"]
        [result] = tool_results(api, tenant, done["id"])
        assert "sent 5 characters to ada" in result["result"]

    def test_a_dry_run_stubs_the_call(self, api, tenant, server):
        crew = create_crew(api, tenant.headers())
        tools = definition(("mcp:tools/send", "external_write"))
        created = create_member(api, tenant.headers(), crew["id"], definition=tools)
        args = {"mcp:tools/send": {"to": "ada", "text": "hello"}}
        done = run_to_end(api, tenant.headers(), created["id"], {"tool_args": args}, dry_run=True)
        assert done["status"] == "succeeded", done["error"]
        [result] = tool_results(api, tenant, done["id"])
        assert result["dry_run"] is True
        assert json.loads(result["result"])["stubbed"] == "mcp:tools/send"

    def test_a_failing_tool_fails_the_run_with_the_servers_message(self, api, tenant, server):
        created = member(api, tenant, ("mcp:tools/broken", "internal"))
        done = run(api, tenant, created["id"], **{"mcp:tools/broken": {"reason": "quota"}})
        assert done["status"] == "failed"
        assert done["error"]["code"] == "ToolFailed"
        assert "the backend refused: quota" in done["error"]["message"]

    def test_a_slow_tool_hits_the_total_call_deadline(self, api, tenant, server):
        created = member(api, tenant, ("mcp:tools/slow", "internal"))
        done = run(api, tenant, created["id"], **{"mcp:tools/slow": {"seconds": 10}})
        assert done["status"] == "failed"
        assert done["error"]["message"].endswith(f"no answer within {CALL_TIMEOUT:g}s.")

    def test_a_large_result_is_cut_to_the_limit(self, api, tenant, server):
        created = member(api, tenant, ("mcp:tools/big", "internal"))
        done = run(api, tenant, created["id"], **{"mcp:tools/big": {"size": 5000}})
        assert done["status"] == "succeeded", done["error"]
        [result] = tool_results(api, tenant, done["id"])
        cut = json.loads(result["result"])
        assert cut["truncated"] is True and len(cut["text"]) == 500

    def test_a_server_that_went_down_fails_the_run(self, api, tenant, doomed):
        body = {"name": "doomed", "url": doomed.url}
        r = api.post("/v1/tool-servers", json=body, headers=tenant.headers())
        assert r.status_code == 201, r.text
        api.patch(
            f"/v1/tool-servers/{r.json()['id']}",
            json={"effect_classes": {"lookup": "internal"}},
            headers=tenant.headers(),
        )
        created = member(api, tenant, ("mcp:doomed/lookup", "internal"))
        doomed.stop()
        done = run(api, tenant, created["id"], **{"mcp:doomed/lookup": {"word": "x"}})
        assert done["status"] == "failed"
        assert done["error"]["code"] == "ToolFailed"
        assert "unreachable" in done["error"]["message"]

    def test_the_header_value_is_in_no_run_event_or_answer(self, api, tenant, server):
        created = member(api, tenant, ("mcp:tools/lookup", "external_read"))
        done = run(api, tenant, created["id"], **{"mcp:tools/lookup": {"word": "w"}})
        assert done["status"] == "succeeded", done["error"]
        failed = run(api, tenant, created["id"], **{"mcp:tools/lookup": {}})
        assert failed["status"] == "failed"
        seen = [json.dumps(events(api, tenant.headers(), r["id"])) for r in (done, failed)]
        seen += [json.dumps(done), json.dumps(failed)]
        assert SECRET not in "".join(seen)


class TestSpendPastAnApproveBudget:
    @pytest.mark.parametrize("whitelisted", [True, False])
    def test_a_spend_call_waits_for_an_approval_naming_the_budget(
        self, api, tenant, mcp, whitelisted
    ):
        body = {"name": "pay", "url": mcp.url, "headers": {"X-Api-Key": SECRET}}
        r = api.post("/v1/tool-servers", json=body, headers=tenant.headers())
        assert r.status_code == 201, r.text
        effects = {"effect_classes": {"lookup": "spend"}}
        r = api.patch(f"/v1/tool-servers/{r.json()['id']}", json=effects, headers=tenant.headers())
        assert r.status_code == 200, r.text
        crew = create_crew(api, tenant.headers())
        # Whitelisted: no checkpoint of its own, so only the budget asks for an approval;
        # otherwise the checkpoint's one approval names the budget.
        tool = {"name": "mcp:pay/lookup", "effect_class": "spend", "whitelisted": whitelisted}
        spender = {"objective": "Pay.", "tools": [tool]}
        created = create_member(api, tenant.headers(), crew["id"], definition=spender)
        publish(api, tenant.headers(), created["id"])
        budget = {
            "name": "Tiny",
            "scope": {"type": "member", "id": created["id"]},
            "period": "day",
            "limit_units": 0.000001,  # the first model call reaches it
            "on_exceeded": "approve",
        }
        r = api.post("/v1/budgets", json=budget, headers=tenant.headers())
        assert r.status_code == 201, r.text
        budget_id = r.json()["id"]
        args = {"mcp:pay/lookup": {"word": "coin"}}
        run_id = start(api, tenant.headers(), created["id"], {"tool_args": args})["id"]
        wait_for(api, tenant.headers(), run_id, ("waiting_approval",))
        [approval] = approvals_of(api, tenant.headers(), run_id)
        assert approval["tool"] == "mcp:pay/lookup" and approval["budget_id"] == budget_id
        assert approval["effect_class"] == "spend"
        assert not [e for e in events(api, tenant.headers(), run_id) if e["type"] == "tool.started"]
        decided = [approval["id"]]
        r = api.post(f"/v1/approvals/{approval['id']}/approve", headers=tenant.headers())
        assert r.status_code == 200, r.text
        while True:  # then the next model call needs one too
            done = wait_for(
                api, tenant.headers(), run_id, ("waiting_approval", "succeeded", "failed")
            )
            if done["status"] != "waiting_approval":
                break
            pending = [
                a for a in approvals_of(api, tenant.headers(), run_id) if a["id"] not in decided
            ]
            [next_one] = pending
            assert next_one["tool"] == "model" and next_one["budget_id"] == budget_id
            decided.append(next_one["id"])
            r = api.post(f"/v1/approvals/{next_one['id']}/approve", headers=tenant.headers())
            assert r.status_code == 200, r.text
        assert done["status"] == "succeeded", done["error"]
        [result] = tool_results(api, tenant, run_id)
        assert result["tool"] == "mcp:pay/lookup"
