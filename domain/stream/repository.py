"""Persistence of the workspace event log (the live stream's source) and of stream tickets.

Scoped by workspace, nothing commits. ``append`` is called by the unit of work right before it
commits, so the counter row lock (PostgreSQL) is held only for the commit itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Connection,
    bindparam,
    column,
    delete,
    insert,
    select,
    text,
)

from domain.kernel.signals import Signal
from domain.kernel.unit_of_work import UnitOfWork
from domain.persistence import tables
from domain.persistence.driver import DriverStatements
from domain.persistence.sql import per_dialect, upsert_statement, utc

#: The PostgreSQL channel every committed event is announced on (``pg_notify``).
NOTIFY_CHANNEL = "scaicrew_events"
#: The PostgreSQL channel a commit that queues a run is also announced on (the payload names
#: the workspace): what worker processes listen to when nothing else of theirs needs every
#: event (ADR 0072).
WORK_CHANNEL = "scaicrew_work"
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; past this, only the range is sent
# and listeners read the events from the log.
_NOTIFY_LIMIT = 7000


class EventLog:
    def __init__(self, connection: Connection) -> None:
        self._c = connection
        self._hot = DriverStatements(connection)  # every committed signal is stored here
        self._postgres = connection.dialect.name == "postgresql"

    # -- the log ---------------------------------------------------------------------------

    def append(self, signals: list[Signal], now: datetime) -> list[Signal]:
        """Store ``signals`` with their workspace's next sequence numbers; return them stored.

        Workspaces are numbered in sorted order, so two transactions touching the same
        workspaces lock their counter rows in the same order (no deadlock). On PostgreSQL one
        statement per workspace advances the counter, inserts the events and announces them
        (ADR 0062); elsewhere, one to advance and one to insert.
        """
        by_workspace: dict[str, list[Signal]] = {}
        for signal in signals:
            by_workspace.setdefault(signal.workspace_id, []).append(signal)
        stored: list[Signal] = []
        for workspace_id in sorted(by_workspace):
            batch = by_workspace[workspace_id]
            if self._postgres:
                last = self._append_announced(workspace_id, batch, now)
            else:
                last = self._advance(workspace_id, len(batch))
            first = last - len(batch) + 1
            rows = [
                Signal(workspace_id, s.kind, dict(s.data), seq=first + i, at=now, context=s.context)
                for i, s in enumerate(batch)
            ]
            if not self._postgres:
                self._hot.execute(
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
            stored.extend(rows)
        return stored

    def _append_announced(self, workspace_id: str, batch: list[Signal], now: datetime) -> int:
        """PostgreSQL: advance the counter, insert ``batch`` numbered after it and NOTIFY it,
        in one statement; return the last sequence number."""
        pairs = [_kind_and_data(s) for s in batch]  # serialised once: inserted and notified
        template, ranged = _template(workspace_id, pairs, now)
        events = "[" + ",".join(pairs) + "]"
        params = {
            "workspace_id": workspace_id,
            "count": len(batch),
            "events": events,
            "created_at": now,
            "channel": NOTIFY_CHANNEL,
            "template": template,
        }
        work = any(announces_work(signal) for signal in batch)
        if work:
            params["work_channel"] = WORK_CHANNEL
        return int(self._hot.execute(_APPEND[ranged, work], params).first().last_seq)

    def _advance(self, workspace_id: str, count: int) -> int:
        params = {"workspace_id": workspace_id, "count": count, "increment": count}
        return int(self._hot.execute(_advance(self._c), params).scalar_one())

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


def announces_work(signal: Signal) -> bool:
    """Whether ``signal`` may mean a run for a worker to claim: a run queued (for the first
    time, or again after an approval). Its commit is announced on ``WORK_CHANNEL`` too."""
    return signal.kind == "run.changed" and signal.data.get("status") == "queued"


def notify_template(workspace_id: str, signals: Iterable[Signal], at: datetime) -> tuple[str, bool]:
    """The NOTIFY payload for one workspace's ``signals`` stored at ``at``, as a template for
    PostgreSQL's ``format()`` (``%`` written ``%%``), filled in by the statement that numbers
    the events, and whether it is the short form: the events themselves, with ``%s`` for each
    one's sequence number; or, when they are too large for a notification, only their range
    (``%1$s`` the first, ``%2$s`` the last), for listeners to read from the log."""
    return _template(workspace_id, [_kind_and_data(s) for s in signals], at)


def _kind_and_data(signal: Signal) -> str:
    """``[kind, data]`` as compact JSON: an element of the events the append statement
    inserts, and (without its brackets) of the notification."""
    return json.dumps([signal.kind, signal.data], separators=(",", ":"))


def _template(workspace_id: str, pairs: list[str], at: datetime) -> tuple[str, bool]:
    stamp = json.dumps(at.isoformat())
    events = ["[%s," + pair[1:-1].replace("%", "%%") + "," + stamp + "]" for pair in pairs]
    head = '{"w":' + json.dumps(workspace_id).replace("%", "%%")
    template = head + ',"e":[' + ",".join(events) + "]}"
    # A sequence number is at most 19 digits (BIGINT) where its %s takes 2 characters.
    if len(template.encode("utf-8")) + 17 * len(events) <= _NOTIFY_LIMIT:
        return template, False
    return head + ',"r":[%1$s,%2$s]}', True


def notify_payload(template: str, ranged: bool, first: int, last: int) -> str:
    """A ``notify_template`` filled in for events numbered ``first`` to ``last``, as PostgreSQL's
    ``format()`` fills it in (for tests and tools: the database does it on the write path)."""
    if ranged:
        return template.replace("%1$s", str(first)).replace("%2$s", str(last)).replace("%%", "%")
    return template % tuple(range(first, last + 1))


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


@per_dialect  # SQLite: every transaction that records an event runs it
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


def _append_statement(numbers: str, work: bool) -> Any:
    """PostgreSQL: the counter advanced by ``:count``, the ``:events`` (a JSON array of
    ``[type, data]``) inserted numbered after its old value, and ``format(:template, VARIADIC
    <numbers>)`` notified (with ``work``, the workspace on ``:work_channel`` too), in one
    statement returning the counter's new value. The data-modifying CTEs run once each
    whatever the final SELECT reads; the NOTIFY is sent on commit, like the rows become
    visible."""
    announce_work = ", pg_notify(:work_channel, :workspace_id) AS announced_work" if work else ""
    # Columns named and typed: ``DriverStatements`` prepares the statement (it is every
    # commit's with an event).
    columns = [column("last_seq", BigInteger()), column("announced")]
    if work:
        columns.append(column("announced_work"))
    return (
        text(
            f"""
        WITH counter AS (
            INSERT INTO workspace_event_counters AS c (workspace_id, last_seq)
            VALUES (:workspace_id, :count)
            ON CONFLICT (workspace_id) DO UPDATE SET last_seq = c.last_seq + EXCLUDED.last_seq
            RETURNING c.last_seq
        ), stored AS (
            INSERT INTO workspace_events (workspace_id, seq, type, data, created_at)
            SELECT :workspace_id, counter.last_seq - :count + e.n, e.event ->> 0, e.event -> 1,
                   :created_at
            FROM counter, jsonb_array_elements(CAST(:events AS JSONB)) WITH ORDINALITY
                AS e(event, n)
        )
        SELECT counter.last_seq,
               pg_notify(:channel, format(:template, VARIADIC {numbers})) AS announced
               {announce_work}
        FROM counter
        """
        )
        .bindparams(
            bindparam("count", type_=BigInteger()),
            bindparam("created_at", type_=tables.Stamp),
        )
        .columns(*columns)
    )


_NUMBERS = {
    False: "ARRAY(SELECT counter.last_seq - :count + g FROM generate_series(1, :count) AS g)"
    "::TEXT[]",
    True: "ARRAY[counter.last_seq - :count + 1, counter.last_seq]::TEXT[]",  # the range only
}
#: (whether the notification names only the range, whether it announces work) -> statement.
_APPEND = {
    (ranged, work): _append_statement(_NUMBERS[ranged], work)
    for ranged in (False, True)
    for work in (False, True)
}
