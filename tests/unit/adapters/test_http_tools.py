"""The HTTP port of the built-in tools against a real loopback server: allow-list, timeout."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from domain.tools import ToolError
from scaicrew.adapters.http_tools import AllowListedHttp
from tests.support.peers import Peer, web_route


@pytest.fixture(scope="module")
def web() -> Iterator[Peer]:
    peer = Peer(web_route).start()
    yield peer
    peer.close()


class TestAllowListedHttp:
    def test_get_and_post_reach_an_allow_listed_host(self, web):
        http = AllowListedHttp(("127.0.0.1",), 2.0)
        got = http.get(web.url("/ok/unit"))
        assert got == {
            "status": 200,
            "body": '{"path": "/ok/unit", "ok": true}',
            "json": {"path": "/ok/unit", "ok": True},
        }
        posted = http.post(web.url("/sink/unit"), {"a": [1, 2]})
        assert posted["status"] == 201 and posted["json"] == {"received": {"a": [1, 2]}}
        [request] = web.received("POST", "/sink/unit")
        assert request.json() == {"a": [1, 2]}
        assert request.headers["content-type"] == "application/json"

    def test_a_host_port_entry_allows_that_port_only(self, web):
        http = AllowListedHttp((f"127.0.0.1:{web.port}",), 2.0)
        assert http.get(web.url("/ok"))["status"] == 200
        with pytest.raises(ToolError, match="not on the tool allow-list"):
            http.get(f"http://127.0.0.1:{web.port + 1}/ok")

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("http://localhost/ok", "Host 'localhost' is not on the tool allow-list."),
            ("http://127.0.0.1.nip.io/", "is not on the tool allow-list"),
            ("http://user@evil.test/", "Host 'evil.test' is not on the tool allow-list."),
            ("ftp://127.0.0.1/", "absolute http(s) URL"),
            ("/relative", "absolute http(s) URL"),
            ("", "absolute http(s) URL"),
        ],
    )
    def test_anything_else_is_refused_before_any_request(self, web, url, message):
        before = len(web.received())
        with pytest.raises(ToolError) as failure:
            AllowListedHttp(("127.0.0.1",), 2.0).get(url)
        assert message in str(failure.value)
        assert len(web.received()) == before

    def test_an_empty_allow_list_refuses_everything(self, web):
        with pytest.raises(ToolError, match="not on the tool allow-list"):
            AllowListedHttp((), 2.0).get(web.url("/ok"))

    def test_a_slow_answer_times_out(self, web):
        with pytest.raises(ToolError, match=r"timed out after 0.3s"):
            AllowListedHttp(("127.0.0.1",), 0.3).get(web.url("/slow/unit"))

    def test_an_error_status_is_a_tool_error(self, web):
        with pytest.raises(ToolError, match="answered HTTP 500"):
            AllowListedHttp(("127.0.0.1",), 2.0).get(web.url("/error"))
