"""Errors of tool servers, and the rules on their URLs and headers.

Rules a schema cannot state (the host policy, header names) are conflicts with the
deployment's rules (409, ADR 0003), like every other rule violation here.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from domain.kernel.errors import DomainError, RuleViolation


class ToolServerUnavailable(DomainError):
    """The tool server could not be reached or did not speak MCP; nothing was stored."""

    slug = "tool-server-unavailable"

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"Tool server '{name}' could not be used: {problem}")


def unknown_server_tool(tool: str) -> RuleViolation:
    return RuleViolation(
        "unknown-server-tool",
        f"The tool server lists no tool '{tool[:128]}'.",
        f"/effect_classes/{tool[:128]}",
    )


_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
# Headers that describe the message or the transport: the MCP client sets them itself.
_RESERVED = {
    "host",
    "origin",
    "connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "keep-alive",
    "cookie",
    "last-event-id",
}
_RESERVED_PREFIXES = ("accept", "content-", "mcp-", "proxy-", "sec-")


def check_headers(headers: dict[str, str]) -> None:
    """Header names must be HTTP tokens and not ones the MCP client sets itself.

    :raises RuleViolation: ``header-refused`` naming the header (never its value).
    """
    for name in headers:
        lower = name.lower()
        if not _TOKEN.match(name) or lower in _RESERVED or lower.startswith(_RESERVED_PREFIXES):
            raise RuleViolation(
                "header-refused",
                f"Header '{name[:64]}' cannot be set on a tool server (not an HTTP header "
                "name, or one the MCP client sets itself).",
                f"/headers/{name[:64]}",
            )


def check_server_url(url: str, allowed_hosts: tuple[str, ...]) -> None:
    """A tool server URL must be absolute http(s); its host must be listed when a list is set,
    and without a list it must not be a loopback, private or link-local address.

    :raises RuleViolation: ``tool-server-url-refused`` (pointer ``/url``).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
        hostname = parts.hostname
    except ValueError:  # a port out of range, a malformed IPv6 literal
        raise _refused("its host or port is malformed") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise _refused("an absolute http(s) URL is required")
    host = hostname.lower()
    if allowed_hosts:
        allowed = {entry.lower() for entry in allowed_hosts}
        if host not in allowed and f"{host}:{port}" not in allowed:
            raise _refused(f"host '{host[:100]}' is not in TOOL_SERVER_ALLOWED_HOSTS")
        return
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise _refused(f"host '{host[:100]}' is not a public host")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if not address.is_global:
        raise _refused(f"address '{host}' is not a public address")


def _refused(reason: str) -> RuleViolation:
    return RuleViolation(
        "tool-server-url-refused", f"The tool server URL is refused: {reason}.", "/url"
    )
