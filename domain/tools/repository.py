"""Persistence of workspace notes, the storage of the ``notes_*`` tools (nothing commits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select

from domain.persistence import tables
from domain.persistence.driver import DriverStatements
from domain.persistence.sql import per_dialect, upsert_statement


class NoteRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection
        self._hot = DriverStatements(connection)  # the notes tools of run steps

    def read(self, workspace_id: str, key: str) -> str | None:
        row = self._hot.execute(_READ_NOTE, {"workspace_id": workspace_id, "key": key}).first()
        return None if row is None else str(row.value)

    def write(self, workspace_id: str, key: str, value: str, now: datetime) -> None:
        """Insert or replace in one statement: concurrent first writes of a key cannot collide."""
        params = {"workspace_id": workspace_id, "key": key, "value": value, "updated_at": now}
        self._hot.execute(_write_note(self._c), params)


@per_dialect  # the notes tool of every run step writes through it
def _write_note(connection: Connection) -> Any:
    n = tables.notes
    upsert = upsert_statement(connection)(n)
    return upsert.on_conflict_do_update(
        index_elements=[n.c.workspace_id, n.c.key],
        set_={"value": upsert.excluded.value, "updated_at": upsert.excluded.updated_at},
    )


# Built once: ``DriverStatements`` prepares a statement by its identity.
_READ_NOTE = select(tables.notes.c.value).where(
    tables.notes.c.workspace_id == bindparam("workspace_id"),
    tables.notes.c.key == bindparam("key"),
)
