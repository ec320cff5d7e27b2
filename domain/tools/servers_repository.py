"""Persistence of tool servers (their headers stay sealed; nothing here commits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from domain.kernel.actor import Actor
from domain.kernel.errors import DuplicateName
from domain.kernel.unit_of_work import UnitOfWork
from domain.persistence import tables
from domain.persistence.sql import utc
from domain.tools.model import EffectClass, RemoteTool, ToolServer


class ToolServerRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(self, server: ToolServer) -> None:
        t = tables.tool_servers
        taken = self._c.execute(
            select(t.c.id).where(t.c.workspace_id == server.workspace_id, t.c.name == server.name)
        ).first()
        if taken is not None:
            raise DuplicateName("tool server", server.name)
        try:
            with self._c.begin_nested():
                self._c.execute(insert(t).values(**_row(server)))
        except IntegrityError as exc:  # a concurrent registration won the race
            raise DuplicateName("tool server", server.name) from exc

    def save(self, server: ToolServer) -> None:
        t = tables.tool_servers
        values = _row(server)
        del values["id"]
        self._c.execute(update(t).where(t.c.id == server.id).values(**values))

    def remove(self, server: ToolServer) -> None:
        t = tables.tool_servers
        self._c.execute(delete(t).where(t.c.id == server.id))

    def get(self, workspace_id: str, server_id: str) -> ToolServer | None:
        t = tables.tool_servers
        row = self._c.execute(
            select(t).where(t.c.workspace_id == workspace_id, t.c.id == server_id)
        ).first()
        return None if row is None else _server(row)

    def get_by_name(self, workspace_id: str, name: str) -> ToolServer | None:
        t = tables.tool_servers
        row = self._c.execute(
            select(t).where(t.c.workspace_id == workspace_id, t.c.name == name)
        ).first()
        return None if row is None else _server(row)

    def page(self, workspace_id: str, after: str | None, limit: int) -> list[ToolServer]:
        """Oldest first (ids are time-ordered); up to ``limit + 1`` rows after ``after``."""
        t = tables.tool_servers
        stmt = select(t).where(t.c.workspace_id == workspace_id)
        if after is not None:
            stmt = stmt.where(t.c.id > after)
        rows = self._c.execute(stmt.order_by(t.c.id).limit(limit + 1)).all()
        return [_server(row) for row in rows]

    def all(self, workspace_id: str) -> list[ToolServer]:
        t = tables.tool_servers
        rows = self._c.execute(
            select(t).where(t.c.workspace_id == workspace_id).order_by(t.c.name)
        ).all()
        return [_server(row) for row in rows]


class _Audit(Protocol):
    def append(
        self,
        actor: Actor,
        action: str,
        subject_type: str,
        subject_id: str,
        data: dict[str, Any],
        now: datetime,
    ) -> None: ...


class ToolServersTx(UnitOfWork, Protocol):
    """What the tool server use cases need of a unit of work (the audit log structurally:
    ``domain.tools`` sits beside ``domain.audit``, not above it)."""

    tool_servers: ToolServerRepository

    @property
    def audit(self) -> _Audit: ...


def _row(server: ToolServer) -> dict[str, Any]:
    return {
        "id": server.id,
        "workspace_id": server.workspace_id,
        "name": server.name,
        "url": server.url,
        "header_names": list(server.header_names),
        "headers_ciphertext": server.headers_ciphertext,
        "tools": [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in server.tools
        ],
        "effect_classes": {name: e.value for name, e in server.effect_classes.items()},
        "refreshed_at": server.refreshed_at,
        "created_by": server.created_by,
        "created_at": server.created_at,
        "updated_at": server.updated_at,
    }


def _server(row: Any) -> ToolServer:
    return ToolServer(
        id=row.id,
        workspace_id=row.workspace_id,
        name=row.name,
        url=row.url,
        header_names=tuple(row.header_names or ()),
        headers_ciphertext=row.headers_ciphertext,
        tools=tuple(
            RemoteTool(str(t["name"]), str(t.get("description") or ""), dict(t["input_schema"]))
            for t in row.tools or ()
        ),
        effect_classes={k: EffectClass(v) for k, v in (row.effect_classes or {}).items()},
        refreshed_at=utc(row.refreshed_at),
        created_by=row.created_by,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )
