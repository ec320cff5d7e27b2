"""Persistence of the workspace event log (the live stream's source) and of stream tickets.

Scoped by workspace, nothing commits. ``append`` is called by the unit of work right before it
commits, so the counter row lock (PostgreSQL) is held only for the commit itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, delete, insert, select, text

from domain.kernel.signals import Signal
from domain.kernel.unit_of_work import UnitOfWork
from domain.persistence import tables
from domain.persistence.sql import per_dialect, upsert_statement, utc

#: The PostgreSQL channel every committed event is announced on (``pg_notify``).
NOTIFY_CHANNEL = "scaicrew_events"
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; past this, only the range is sent
# and listeners read the events from the log.
_NOTIFY_LIMIT = 7000


class EventLog:
    def __init__(self, connection: Connection) -> None:
        self._c = connection
        self._postgres = connection.dialect.name == "postgresql"

    # -- the log ---------------------------------------------------------------------------

    def append(self, signals: list[Signal], now: datetime) -> list[Signal]:
        """Store ``signals`` with their workspace's next sequence numbers; return them stored.

        Workspaces are numbered in sorted order, so two transactions touching the same
        workspaces lock their counter rows in the same order (no deadlock).
        """
        by_workspace: dict[str, list[Signal]] = {}
        for signal in signals:
            by_workspace.setdefault(signal.workspace_id, []).append(signal)
        stored: list[Signal] = []
        for workspace_id in sorted(by_workspace):
            batch = by_workspace[workspace_id]
            last = self._advance(workspace_id, len(batch))
            first = last - len(batch) + 1
            rows = [
                Signal(workspace_id, s.kind, dict(s.data), seq=first + i, at=now, context=s.context)
                for i, s in enumerate(batch)
            ]
            self._c.execute(
                _INSERT_WORKSPACE_EVENTS,
                [
                    {
                        "workspace_id": workspace_id,
                        "seq": s.seq,
                        "type": s.kind,
                        "data": s.data,
                        "created_at": now,
                    }
                    for s in rows
                ],
            )
            if self._postgres:
                self._c.execute(
                    _NOTIFY,
                    {"channel": NOTIFY_CHANNEL, "payload": notify_payload(rows)},
                )
            stored.extend(rows)
        return stored

    def _advance(self, workspace_id: str, count: int) -> int:
        params = {"workspace_id": workspace_id, "count": count, "increment": count}
        return int(self._c.execute(_advance(self._c), params).scalar_one())

    def head(self, workspace_id: str) -> int:
        """The workspace's last sequence number (0 before its first event)."""
        counters = tables.workspace_event_counters
        value = self._c.execute(
            select(counters.c.last_seq).where(counters.c.workspace_id == workspace_id)
        ).scalar()
        return int(value or 0)

    def read(
        self, workspace_id: str, after: int, limit: int, through: int | None = None
    ) -> list[Signal]:
        """Events with ``after < seq (<= through)``, in order, at most ``limit``."""
        e = tables.workspace_events
        stmt = select(e).where(e.c.workspace_id == workspace_id, e.c.seq > after)
        if through is not None:
            stmt = stmt.where(e.c.seq <= through)
        rows = self._c.execute(stmt.order_by(e.c.seq).limit(limit)).all()
        return [_signal(row) for row in rows]

    def prune(self, before: datetime) -> int:
        """Delete events created before ``before``; return how many."""
        e = tables.workspace_events
        return int(self._c.execute(delete(e).where(e.c.created_at < before)).rowcount)

    # -- tickets ---------------------------------------------------------------------------

    def add_ticket(self, values: dict[str, Any]) -> None:
        self._c.execute(insert(tables.stream_tickets).values(**values))

    def take_ticket(self, ticket_hash: str, now: datetime) -> dict[str, Any] | None:
        """Delete the ticket and return it, if it exists and has not expired (single use)."""
        t = tables.stream_tickets
        row = self._c.execute(
            delete(t)
            .where(t.c.ticket_hash == ticket_hash, t.c.expires_at > now)
            .returning(t.c.workspace_id, t.c.subject, t.c.role, t.c.kind)
        ).first()
        return None if row is None else dict(row._mapping)

    def prune_tickets(self, now: datetime) -> int:
        t = tables.stream_tickets
        return int(self._c.execute(delete(t).where(t.c.expires_at <= now)).rowcount)


def notify_payload(signals: Iterable[Signal]) -> str:
    """The NOTIFY payload for one workspace's stored ``signals``: the events themselves, or
    only their sequence range when they are too large for a notification."""
    rows = list(signals)
    events = [[s.seq, s.kind, s.data, s.at.isoformat() if s.at else None] for s in rows]
    payload = json.dumps({"w": rows[0].workspace_id, "e": events}, separators=(",", ":"))
    if len(payload.encode("utf-8")) <= _NOTIFY_LIMIT:
        return payload
    return json.dumps({"w": rows[0].workspace_id, "r": [rows[0].seq, rows[-1].seq]})


def _signal(row: Any) -> Signal:
    return Signal(
        row.workspace_id, row.type, dict(row.data), seq=int(row.seq), at=utc(row.created_at)
    )


def decode_notification(payload: str) -> tuple[str, list[Signal], int | None]:
    """Read a NOTIFY payload: the workspace, its events, and (for a payload that only names
    the range) the last sequence to read from the log instead.

    :raises ValueError: the payload is not one of ours.
    """
    message = json.loads(payload)
    workspace_id = str(message["w"])
    if "r" in message:
        return workspace_id, [], int(message["r"][1])
    signals = [
        Signal(
            workspace_id,
            str(kind),
            dict(data),
            seq=int(seq),
            at=None if at is None else datetime.fromisoformat(at),
        )
        for seq, kind, data, at in message["e"]
    ]
    return workspace_id, signals, None


class StreamTx(UnitOfWork, Protocol):
    """What the stream use cases and hub need of a unit of work."""

    events: EventLog


@per_dialect  # every transaction that records an event runs it
def _advance(connection: Connection) -> Any:
    counters = tables.workspace_event_counters
    return (
        upsert_statement(connection)(counters)
        .values(workspace_id=bindparam("workspace_id"), last_seq=bindparam("count"))
        .on_conflict_do_update(
            index_elements=[counters.c.workspace_id],
            set_={"last_seq": counters.c.last_seq + bindparam("increment")},
        )
        .returning(counters.c.last_seq)
    )


# Built once: every signal of every commit is stored (and on PostgreSQL announced) here.
_INSERT_WORKSPACE_EVENTS = insert(tables.workspace_events)
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
