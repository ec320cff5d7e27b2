"""Use cases of tools: tool servers (admin) and the tool catalog (viewer).

Registering or refreshing a tool server connects to it (outside any transaction) and stores the
tools it lists. Header values are secrets: sealed with the deployment's key material on the way
in, opened only to talk to the server, never returned, logged or put in an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from domain.kernel.actor import Actor, Role
from domain.kernel.clock import Clock
from domain.kernel.errors import DuplicateName, NotFound, RuleViolation
from domain.kernel.ids import new_id
from domain.kernel.paging import Page, PageRequest, page_of
from domain.kernel.ports import SecretBox, SecretUnreadable
from domain.kernel.unit_of_work import Store
from domain.tools.catalog import CATALOG
from domain.tools.errors import (
    ToolServerUnavailable,
    check_headers,
    check_server_url,
    unknown_server_tool,
)
from domain.tools.model import (
    CatalogTool,
    EffectClass,
    RemoteTool,
    ToolServer,
    split_mcp_tool_name,
)
from domain.tools.ports import ToolError, ToolServerError, ToolServerPort
from domain.tools.servers_repository import ToolServersTx


@dataclass(frozen=True)
class ToolServerSettings:
    allowed_hosts: tuple[str, ...]
    timeout_seconds: float
    call_timeout_seconds: float
    result_max_chars: int


class Tools:
    """Tool servers of the actor's workspace and the catalog of tools a definition may use."""

    def __init__(
        self,
        store: Store[ToolServersTx],
        clock: Clock,
        secret_box: SecretBox,
        client: ToolServerPort,
        settings: ToolServerSettings,
    ) -> None:
        self._store = store
        self._clock = clock
        self._secret_box = secret_box
        self._client = client
        self.settings = settings

    def create_tool_server(
        self, actor: Actor, *, name: str, url: str, headers: dict[str, str] | None = None
    ) -> ToolServer:
        """Register an MCP tool server: connect, list its tools, store them.

        :raises PermissionDenied: the actor is below admin.
        :raises RuleViolation: the URL's host is not allowed, or a header name is refused.
        :raises DuplicateName: the workspace has a tool server of this name.
        :raises ToolServerUnavailable: the server could not be reached or does not speak MCP.
        """
        actor.require(Role.ADMIN)
        check_server_url(url, self.settings.allowed_hosts)
        headers = dict(headers or {})
        check_headers(headers)
        with self._store() as tx:  # fail fast on a taken name, before connecting
            if tx.tool_servers.get_by_name(actor.workspace_id, name) is not None:
                raise DuplicateName("tool server", name)
        tools = self._list(name, url, headers)
        now = self._clock.now()
        server = ToolServer(
            id=new_id("tsv"),
            workspace_id=actor.workspace_id,
            name=name,
            url=url,
            header_names=tuple(sorted(headers)),
            headers_ciphertext=self._seal(headers),
            tools=tools,
            effect_classes={},
            refreshed_at=now,
            created_by=actor.subject,
            created_at=now,
            updated_at=now,
        )
        with self._store(write=True) as tx:
            tx.tool_servers.add(server)
            tx.audit.append(
                actor,
                "tool_server.created",
                "tool_server",
                server.id,
                {"name": name, "url": url, "tools": len(tools)},
                now,
            )
            tx.commit()
        return server

    def list_tool_servers(self, actor: Actor, page: PageRequest) -> Page[ToolServer]:
        """Tool servers of the workspace, oldest first."""
        actor.require(Role.ADMIN)
        with self._store() as tx:
            rows = tx.tool_servers.page(actor.workspace_id, page.cursor, page.limit)
        return page_of(rows, page, lambda row: row.id)

    def get_tool_server(self, actor: Actor, server_id: str) -> ToolServer:
        """:raises NotFound: no such tool server in the actor's workspace."""
        actor.require(Role.ADMIN)
        with self._store() as tx:
            return _server_or_404(tx, actor, server_id)

    def update_tool_server(
        self,
        actor: Actor,
        server_id: str,
        *,
        effect_classes: dict[str, str | None] | None = None,
        headers: dict[str, str] | None = None,
    ) -> ToolServer:
        """Set per-tool effect classes (``None`` resets one to ``external_write``) and/or
        replace the headers.

        :raises NotFound: no such tool server.
        :raises RuleViolation: an effect class for a tool the server does not list, or a
            refused header name.
        """
        actor.require(Role.ADMIN)
        now = self._clock.now()
        if headers is not None:
            check_headers(headers)
        sealed = None if headers is None else self._seal(headers)
        with self._store(write=True) as tx:
            server = _server_or_404(tx, actor, server_id)
            changed = dict(server.effect_classes)
            listed = {t.name for t in server.tools}
            for tool, effect in (effect_classes or {}).items():
                if tool not in listed:
                    raise unknown_server_tool(tool)
                if effect is None:
                    changed.pop(tool, None)
                else:
                    changed[tool] = EffectClass(effect)
            updated = replace(server, effect_classes=changed, updated_at=now)
            if headers is not None:
                updated = replace(
                    updated, header_names=tuple(sorted(headers)), headers_ciphertext=sealed
                )
            tx.tool_servers.save(updated)
            data: dict[str, Any] = {
                "effect_classes": dict(effect_classes or {}),
                "headers_replaced": headers is not None,
            }
            tx.audit.append(actor, "tool_server.updated", "tool_server", server_id, data, now)
            tx.commit()
        return updated

    def refresh_tool_server(self, actor: Actor, server_id: str) -> ToolServer:
        """Re-read the server's tools (effect classes of tools still listed are kept).

        :raises NotFound: no such tool server.
        :raises ToolServerUnavailable: the server could not be reached; nothing changed.
        """
        actor.require(Role.ADMIN)
        with self._store() as tx:
            server = _server_or_404(tx, actor, server_id)
        tools = self._list(server.name, server.url, self.headers_of(server))
        now = self._clock.now()
        with self._store(write=True) as tx:
            current = _server_or_404(tx, actor, server_id)
            names = {t.name for t in tools}
            kept = {k: v for k, v in current.effect_classes.items() if k in names}
            updated = replace(
                current, tools=tools, effect_classes=kept, refreshed_at=now, updated_at=now
            )
            tx.tool_servers.save(updated)
            data = {"tools": len(tools)}
            tx.audit.append(actor, "tool_server.refreshed", "tool_server", server_id, data, now)
            tx.commit()
        return updated

    def delete_tool_server(self, actor: Actor, server_id: str) -> None:
        """Forget a tool server; runs calling its tools fail from now on.

        :raises NotFound: no such tool server.
        """
        actor.require(Role.ADMIN)
        now = self._clock.now()
        with self._store(write=True) as tx:
            server = _server_or_404(tx, actor, server_id)
            tx.tool_servers.remove(server)
            data = {"name": server.name}
            tx.audit.append(actor, "tool_server.deleted", "tool_server", server_id, data, now)
            tx.commit()

    def list_tools(self, actor: Actor) -> list[CatalogTool]:
        """Every tool a definition may use: the built-ins, then each server's, by name."""
        actor.require(Role.VIEWER)
        with self._store() as tx:
            servers = tx.tool_servers.all(actor.workspace_id)
        tools = list(CATALOG.values())
        for server in servers:
            tools.extend(server.catalog())
        return tools

    def call_tool(self, workspace_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Call tool server tool ``name`` (``mcp:<server>/<tool>``) for a run of the workspace,
        under the total call deadline (``TOOL_CALL_TIMEOUT_SECONDS``).

        :raises ToolError: the server is gone, its URL is no longer allowed, its headers cannot
            be opened, or the call failed (the server's message).
        """
        split = split_mcp_tool_name(name)
        if split is None:
            raise ToolError(f"'{name[:200]}' is not a tool server tool.")
        server_name, tool_name = split
        with self._store() as tx:
            server = tx.tool_servers.get_by_name(workspace_id, server_name)
        if server is None:
            raise ToolError(f"Tool server '{server_name}' is not registered in this workspace.")
        try:
            check_server_url(server.url, self.settings.allowed_hosts)
            headers = self.headers_of(server)
        except (RuleViolation, ToolServerUnavailable) as exc:
            raise ToolError(exc.message) from None
        return self._client.call_tool(
            server.url, headers, tool_name, arguments, self.settings.call_timeout_seconds
        )

    # -- helpers -------------------------------------------------------------------------

    def headers_of(self, server: ToolServer) -> dict[str, str]:
        """The server's headers in the clear (for talking to it only).

        :raises ToolServerUnavailable: the configured keys no longer open them.
        """
        if server.headers_ciphertext is None:
            return {}
        try:
            opened = json.loads(self._secret_box.open(server.headers_ciphertext))
        except SecretUnreadable:
            raise ToolServerUnavailable(
                server.name, "its headers cannot be decrypted with the configured keys."
            ) from None
        return {str(k): str(v) for k, v in opened.items()}

    def _seal(self, headers: dict[str, str]) -> str | None:
        return self._secret_box.seal(json.dumps(headers, sort_keys=True)) if headers else None

    def _list(self, name: str, url: str, headers: dict[str, str]) -> tuple[RemoteTool, ...]:
        try:
            tools = self._client.list_tools(url, headers, self.settings.timeout_seconds)
        except ToolServerError as exc:
            raise ToolServerUnavailable(name, str(exc)) from None
        return tuple(sorted(tools, key=lambda t: t.name))


def _server_or_404(tx: ToolServersTx, actor: Actor, server_id: str) -> ToolServer:
    server = tx.tool_servers.get(actor.workspace_id, server_id)
    if server is None:
        raise NotFound("tool server", server_id)
    return server
