"""MCP tool servers and the tool catalog, against a real MCP server process on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from domain.persistence import tables
from tests.api.helpers import missing_id, unique
from tests.support.mcp_server import McpServerProcess
from tests.support.peers import Peer, web_route
from tests.support.processes import free_port
from tests.support.runs import app_client

SECRET = "sk-test-" + "s3cr3t" * 6


@pytest.fixture(scope="module")
def mcp() -> Iterator[McpServerProcess]:
    server = McpServerProcess(key=SECRET)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def web() -> Iterator[Peer]:
    peer = Peer(web_route).start()
    yield peer
    peer.close()


@pytest.fixture(scope="module")
def api(settings: Any, mcp: McpServerProcess, web: Peer) -> Iterator[httpx.Client]:
    allowed = f"{mcp.host},127.0.0.1:{web.port},127.0.0.1:{UNREACHABLE}"
    with app_client(
        settings, tool_server_allowed_hosts=allowed, tool_server_timeout_seconds=3
    ) as c:
        yield c


UNREACHABLE = free_port()


def register(
    api: httpx.Client, tenant: Any, mcp: McpServerProcess, key: str = SECRET, **body: Any
) -> httpx.Response:
    payload = {"name": unique("crm").lower().replace(" ", "-")[:60], "url": mcp.url, **body}
    payload.setdefault("headers", {"X-Api-Key": key})
    return api.post("/v1/tool-servers", json=payload, headers=tenant.headers())


class TestRegister:
    def test_registering_lists_the_servers_tools_with_their_schemas(self, api, tenant, mcp):
        r = register(api, tenant, mcp)
        assert r.status_code == 201, r.text
        server = r.json()
        assert r.headers["Location"] == f"/v1/tool-servers/{server['id']}"
        assert server["header_names"] == ["X-Api-Key"]
        tools = {t["name"]: t for t in server["tools"]}
        assert sorted(tools) == ["big", "broken", "lookup", "send", "slow"]
        lookup = tools["lookup"]
        assert lookup["catalog_name"] == f"mcp:{server['name']}/lookup"
        assert lookup["effect_class"] == "external_write"
        assert lookup["input_schema"]["required"] == ["word"]
        assert "Look a word up" in lookup["description"]

    def test_reads_list_and_get_it_without_the_header_values(self, api, tenant, mcp):
        created = register(api, tenant, mcp).json()
        listed = api.get("/v1/tool-servers", headers=tenant.headers())
        assert listed.status_code == 200
        assert [s["id"] for s in listed.json()["items"]] == [created["id"]]
        got = api.get(f"/v1/tool-servers/{created['id']}", headers=tenant.headers())
        assert got.status_code == 200
        assert got.json() == created
        assert SECRET not in listed.text + got.text

    def test_the_header_value_is_stored_encrypted(self, api, tenant, mcp, database):
        created = register(api, tenant, mcp).json()
        t = tables.tool_servers
        with database() as tx:
            row = tx.connection.execute(select(t).where(t.c.id == created["id"])).one()
        assert row.headers_ciphertext and SECRET not in row.headers_ciphertext
        assert SECRET not in str(row._mapping)

    def test_a_duplicate_name_is_409(self, api, tenant, mcp):
        first = register(api, tenant, mcp).json()
        r = register(api, tenant, mcp, name=first["name"])
        assert r.status_code == 409
        assert r.json()["type"] == "/problems/duplicate-name"

    def test_a_host_off_the_allowed_list_is_409_and_nothing_is_stored(self, api, tenant, mcp):
        r = register(api, tenant, mcp, url="http://localhost:1/mcp")
        assert r.status_code == 409
        assert r.json()["type"] == "/problems/tool-server-url-refused"
        assert "TOOL_SERVER_ALLOWED_HOSTS" in r.json()["detail"]
        assert api.get("/v1/tool-servers", headers=tenant.headers()).json()["items"] == []

    def test_a_url_that_is_not_http_is_400(self, api, tenant, mcp):
        r = register(api, tenant, mcp, url="file:///etc/passwd")
        assert r.status_code == 400
        assert r.json()["error"]["details"]["errors"][0]["pointer"] == "/url"

    def test_a_reserved_header_name_is_409(self, api, tenant, mcp):
        r = register(api, tenant, mcp, headers={"Host": "evil"})
        assert r.status_code == 409
        assert r.json()["type"] == "/problems/header-refused"

    def test_a_viewer_cannot_register_or_list(self, api, tenant, mcp):
        from domain.kernel import Role

        body = {"name": "x", "url": mcp.url}
        r = api.post("/v1/tool-servers", json=body, headers=tenant.headers(Role.AUTHOR))
        assert r.status_code == 403
        assert api.get("/v1/tool-servers", headers=tenant.headers(Role.VIEWER)).status_code == 403


class TestUnusableServers:
    def test_a_wrong_key_is_502_naming_the_problem_and_nothing_is_stored(self, api, tenant, mcp):
        r = register(api, tenant, mcp, key="wrong-key")
        assert r.status_code == 502, r.text
        assert r.json()["type"] == "/problems/tool-server-unavailable"
        assert "MCP error" in r.json()["detail"]
        assert "wrong-key" not in r.text
        assert api.get("/v1/tool-servers", headers=tenant.headers()).json()["items"] == []

    def test_an_unreachable_server_is_502(self, api, tenant, mcp):
        r = register(api, tenant, mcp, url=f"http://127.0.0.1:{UNREACHABLE}/mcp")
        assert r.status_code == 502
        assert "unreachable" in r.json()["detail"]

    def test_a_server_answering_garbage_is_502(self, api, tenant, mcp, web):
        r = register(api, tenant, mcp, url=web.url("/ok/not-mcp"))
        assert r.status_code == 502, r.text
        assert r.json()["detail"].startswith("Tool server '")


class TestUpdateRefreshDelete:
    def test_effect_classes_are_assigned_reset_and_kept_over_a_refresh(self, api, tenant, mcp):
        server = register(api, tenant, mcp).json()
        url = f"/v1/tool-servers/{server['id']}"
        body = {"effect_classes": {"lookup": "external_read", "send": "spend"}}
        r = api.patch(url, json=body, headers=tenant.headers())
        assert r.status_code == 200, r.text
        effects = {t["name"]: t["effect_class"] for t in r.json()["tools"]}
        assert effects["lookup"] == "external_read" and effects["send"] == "spend"
        assert effects["slow"] == "external_write"
        r = api.patch(url, json={"effect_classes": {"send": None}}, headers=tenant.headers())
        effects = {t["name"]: t["effect_class"] for t in r.json()["tools"]}
        assert effects["send"] == "external_write" and effects["lookup"] == "external_read"
        refreshed = api.post(f"{url}/refresh", headers=tenant.headers())
        assert refreshed.status_code == 200, refreshed.text
        effects = {t["name"]: t["effect_class"] for t in refreshed.json()["tools"]}
        assert effects["lookup"] == "external_read"
        assert refreshed.json()["refreshed_at"] >= server["refreshed_at"]

    def test_an_effect_class_for_an_unlisted_tool_is_409(self, api, tenant, mcp):
        server = register(api, tenant, mcp).json()
        r = api.patch(
            f"/v1/tool-servers/{server['id']}",
            json={"effect_classes": {"nope": "internal"}},
            headers=tenant.headers(),
        )
        assert r.status_code == 409
        assert r.json()["type"] == "/problems/unknown-server-tool"

    def test_replaced_headers_are_used_by_the_next_refresh(self, api, tenant, mcp):
        server = register(api, tenant, mcp).json()
        url = f"/v1/tool-servers/{server['id']}"
        r = api.patch(url, json={"headers": {"X-Api-Key": "rotated"}}, headers=tenant.headers())
        assert r.status_code == 200 and r.json()["header_names"] == ["X-Api-Key"]
        assert api.post(f"{url}/refresh", headers=tenant.headers()).status_code == 502
        api.patch(url, json={"headers": {"X-Api-Key": SECRET}}, headers=tenant.headers())
        assert api.post(f"{url}/refresh", headers=tenant.headers()).status_code == 200

    def test_delete_forgets_it(self, api, tenant, mcp):
        server = register(api, tenant, mcp).json()
        url = f"/v1/tool-servers/{server['id']}"
        assert api.delete(url, headers=tenant.headers()).status_code == 204
        assert api.get(url, headers=tenant.headers()).status_code == 404
        assert api.post(f"{url}/refresh", headers=tenant.headers()).status_code == 404

    def test_another_workspaces_server_is_404(self, api, tenant, make_tenant, mcp):
        server = register(api, tenant, mcp).json()
        other = make_tenant()
        for method in ("get", "delete"):
            r = api.request(method, f"/v1/tool-servers/{server['id']}", headers=other.headers())
            assert r.status_code == 404
        r = api.get(f"/v1/tool-servers/{missing_id('tsv')}", headers=tenant.headers())
        assert r.status_code == 404


class TestCatalog:
    def test_the_catalog_lists_built_ins_and_server_tools_with_their_effect_classes(
        self, api, tenant, mcp
    ):
        from domain.kernel import Role

        server = register(api, tenant, mcp).json()
        api.patch(
            f"/v1/tool-servers/{server['id']}",
            json={"effect_classes": {"lookup": "external_read"}},
            headers=tenant.headers(),
        )
        r = api.get("/v1/tools", headers=tenant.headers(Role.VIEWER))
        assert r.status_code == 200
        tools = {t["name"]: t for t in r.json()["items"]}
        assert tools["http_get"]["source"] == "builtin"
        assert tools["notes_write"]["effect_class"] == "internal"
        lookup = tools[f"mcp:{server['name']}/lookup"]
        assert lookup["source"] == "mcp"
        assert lookup["effect_class"] == "external_read"
        assert lookup["input_schema"]["properties"]["word"]["type"] == "string"
        assert tools[f"mcp:{server['name']}/send"]["effect_class"] == "external_write"

    def test_another_workspaces_servers_are_not_in_the_catalog(self, api, tenant, make_tenant, mcp):
        register(api, tenant, mcp)
        other = make_tenant()
        names = [t["name"] for t in api.get("/v1/tools", headers=other.headers()).json()["items"]]
        assert not [n for n in names if n.startswith("mcp:")]


class TestSecretsNeverLeak:
    def test_no_response_log_record_or_workspace_event_carries_a_header_value(
        self, api, tenant, mcp, caplog, database
    ):
        caplog.set_level(logging.DEBUG)
        texts = []
        ok = register(api, tenant, mcp)
        texts.append(ok.text)
        url = f"/v1/tool-servers/{ok.json()['id']}"
        texts.append(register(api, tenant, mcp, url=f"http://127.0.0.1:{UNREACHABLE}/m").text)
        texts.append(register(api, tenant, mcp, name=ok.json()["name"]).text)
        texts.append(api.post(f"{url}/refresh", headers=tenant.headers()).text)
        texts.append(api.get("/v1/tools", headers=tenant.headers()).text)
        patched = api.patch(url, json={"headers": {"X-Api-Key": SECRET}}, headers=tenant.headers())
        texts.append(patched.text)
        with database() as tx:
            audit = [str(e) for e in tx.audit.entries(tenant.workspace_id, ok.json()["id"])]
            events = tx.connection.execute(
                select(tables.workspace_events).where(
                    tables.workspace_events.c.workspace_id == tenant.workspace_id
                )
            ).all()
        assert audit
        haystack = "\n".join(texts + audit + [str(e._mapping) for e in events] + [caplog.text])
        assert SECRET not in haystack


class TestMalformedUrls:
    @pytest.mark.parametrize(
        "url",
        [
            "https://[0.f6FCd3A44d.35eb2a60bEEB.:3afef]:8?w",
            "http://127.0.0.1:99999/mcp",
            "http://[::1]/mcp",
            "http://10.0.0.1/mcp",
        ],
    )
    def test_a_malformed_or_unlisted_url_is_409_not_a_crash(self, api, tenant, mcp, url):
        r = register(api, tenant, mcp, url=url)
        assert r.status_code == 409, r.text
        assert r.json()["type"] == "/problems/tool-server-url-refused"
