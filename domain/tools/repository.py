"""Persistence of workspace notes, the storage of the ``notes_*`` tools (nothing commits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from domain.persistence import tables
from domain.persistence.sql import per_dialect, upsert_statement


class NoteRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def read(self, workspace_id: str, key: str) -> str | None:
        n = tables.notes
        row = self._c.execute(
            select(n.c.value).where(n.c.workspace_id == workspace_id, n.c.key == key)
        ).first()
        return None if row is None else str(row.value)

    def write(self, workspace_id: str, key: str, value: str, now: datetime) -> None:
        """Insert or replace in one statement: concurrent first writes of a key cannot collide."""
        params = {"workspace_id": workspace_id, "key": key, "value": value, "updated_at": now}
        self._c.execute(_write_note(self._c), params)


@per_dialect  # the notes tool of every run step writes through it
def _write_note(connection: Connection) -> Any:
    n = tables.notes
    upsert = upsert_statement(connection)(n)
    return upsert.on_conflict_do_update(
        index_elements=[n.c.workspace_id, n.c.key],
        set_={"value": upsert.excluded.value, "updated_at": upsert.excluded.updated_at},
    )
