"""The rules on tool server URLs and header names (pure functions)."""

from __future__ import annotations

import pytest

from domain.kernel import RuleViolation
from domain.tools import check_headers, check_server_url, split_mcp_tool_name


class TestUrls:
    @pytest.mark.parametrize(
        "url",
        [
            "http://localhost/mcp",
            "http://127.0.0.1:8000/mcp",
            "http://10.1.2.3/mcp",
            "http://192.168.0.1/mcp",
            "http://169.254.169.254/latest",
            "http://[::1]/mcp",
            "http://printer.local/mcp",
            "ftp://example.com/mcp",
            "https://[zz::1/mcp",
            "http://example.com:70000/mcp",
        ],
    )
    def test_without_a_list_loopback_private_and_malformed_urls_are_refused(self, url):
        with pytest.raises(RuleViolation) as caught:
            check_server_url(url, ())
        assert caught.value.rule == "tool-server-url-refused"

    def test_without_a_list_a_public_host_is_allowed(self):
        check_server_url("https://mcp.example.com/mcp", ())
        check_server_url("https://8.8.8.8/mcp", ())

    def test_with_a_list_only_listed_hosts_or_host_ports_are_allowed(self):
        allowed = ("127.0.0.1:9000", "mcp.example.com")
        check_server_url("http://127.0.0.1:9000/mcp", allowed)
        check_server_url("https://mcp.example.com:8443/mcp", allowed)
        for url in ("http://127.0.0.1:9001/mcp", "https://other.example.com/mcp"):
            with pytest.raises(RuleViolation):
                check_server_url(url, allowed)


class TestHeaders:
    @pytest.mark.parametrize(
        "name", ["Host", "content-type", "Accept", "Mcp-Session-Id", "Origin", "bad name", ""]
    )
    def test_transport_headers_and_non_tokens_are_refused_naming_the_header(self, name):
        with pytest.raises(RuleViolation) as caught:
            check_headers({name: "v"})
        assert caught.value.rule == "header-refused"

    def test_credentials_are_fine(self):
        check_headers({"Authorization": "Bearer x", "X-Api-Key": "k"})


def test_catalog_names_split_into_server_and_tool():
    assert split_mcp_tool_name("mcp:crm/lookup") == ("crm", "lookup")
    assert split_mcp_tool_name("mcp:crm/") is None
    assert split_mcp_tool_name("http_get") is None
