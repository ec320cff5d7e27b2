"""The outbound HTTP tools at run time: allow-list, timeout, failures (a real local server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.peers import Peer, web_route
from tests.support.runs import GETTER, app_client, events, published_member, run_to_end

TIMEOUT = 0.5


@pytest.fixture(scope="module")
def web() -> Iterator[Peer]:
    peer = Peer(web_route).start()
    yield peer
    peer.close()


@pytest.fixture(scope="module")
def api(settings: Any, web: Peer) -> Iterator[httpx.Client]:
    with app_client(
        settings,
        tool_http_allowlist=(f"127.0.0.1:{web.port}", "allowed.invalid"),
        tool_http_timeout_seconds=TIMEOUT,
    ) as c:
        yield c


def get(api: httpx.Client, tenant: Any, url: str) -> dict[str, Any]:
    member = published_member(api, tenant.headers(), GETTER)
    return run_to_end(api, tenant.headers(), member["id"], {"url": url})


class TestHttpGet:
    def test_an_allow_listed_server_answers_and_the_run_succeeds(self, api, tenant, web):
        path = "/ok/" + tenant.workspace_id
        run = get(api, tenant, web.url(path))
        assert run["status"] == "succeeded", run["error"]
        assert len(web.received("GET", path)) == 1
        [tool] = [
            e["data"]
            for e in events(api, tenant.headers(), run["id"])
            if e["type"] == "tool.succeeded"
        ]
        result = json.loads(tool["result"])
        assert result["status"] == 200
        assert result["json"] == {"path": path, "ok": True}

    def test_a_host_off_the_allow_list_fails_the_run(self, api, tenant, web):
        run = get(api, tenant, f"http://localhost:{web.port}/ok")
        assert run["status"] == "failed"
        assert run["error"] == {
            "code": "ToolFailed",
            "message": "Host 'localhost' is not on the tool allow-list.",
        }

    def test_another_port_of_an_allow_listed_host_is_not_allowed(self, api, tenant, web):
        run = get(
            api,
            tenant,
            f"http://127.0.0.1:{web.port + 1 if web.port < 65535 else web.port - 1}/ok",
        )
        assert run["status"] == "failed"
        assert "not on the tool allow-list" in run["error"]["message"]

    def test_a_url_that_is_not_http_fails_the_run(self, api, tenant):
        run = get(api, tenant, "file:///etc/passwd")
        assert run["status"] == "failed"
        assert run["error"]["message"] == "The URL must be an absolute http(s) URL."

    def test_a_malformed_url_fails_the_call_not_the_server(self, api, tenant):
        run = get(api, tenant, "http://h:8123:8124/")
        assert run["status"] == "failed"
        assert run["error"] == {"code": "ToolFailed", "message": "The URL is malformed."}

    def test_a_slow_server_times_out_and_fails_the_run(self, api, tenant, web):
        path = "/slow/" + tenant.workspace_id
        run = get(api, tenant, web.url(path))
        assert run["status"] == "failed"
        assert run["error"]["code"] == "ToolFailed"
        assert run["error"]["message"] == f"GET {web.url(path)} timed out after {TIMEOUT:g}s."

    def test_an_error_status_fails_the_run(self, api, tenant, web):
        run = get(api, tenant, web.url("/error"))
        assert run["status"] == "failed"
        assert run["error"]["message"].endswith("answered HTTP 500.")

    def test_an_unresolvable_allow_listed_host_fails_the_run(self, api, tenant):
        run = get(api, tenant, "http://allowed.invalid/")
        assert run["status"] == "failed"
        assert run["error"]["code"] == "ToolFailed"
        assert run["error"]["message"].startswith("GET http://allowed.invalid/ failed: ")
