"""Use cases of the live stream: open a workspace stream, read its log, stream tickets.

Where a stream resumes: with no ``Last-Event-ID`` it follows live from the log's head; with
one it replays everything after it, then follows live. An id the log cannot continue from
(older than the retention, or beyond the head, as after a database restore) is answered with a
reset to the head: the client re-reads the state it shows and follows on from there.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.kernel.actor import Actor, ActorKind, Role
from domain.kernel.clock import Clock
from domain.kernel.signals import Signal
from domain.kernel.unit_of_work import Store
from domain.stream.hub import StreamHub
from domain.stream.repository import StreamTx

TICKET_PREFIX = "stk_"


@dataclass(frozen=True)
class StreamOpening:
    """A subscribed stream: it continues after ``after``; ``reset`` when the requested id could
    not be continued from. ``unsubscribe`` must be called when the stream ends."""

    after: int
    reset: bool
    unsubscribe: Callable[[], None]


class Stream:
    """The live stream of the actor's workspace, and single-use tickets that open it."""

    def __init__(self, store: Store[StreamTx], clock: Clock, hub: StreamHub) -> None:
        self._store = store
        self._clock = clock
        self.hub = hub

    def open_stream(
        self, actor: Actor, last_event_id: int | None, deliver: Callable[[Signal], None]
    ) -> StreamOpening:
        """Subscribe ``deliver`` to the actor's workspace, then decide where the stream resumes.

        Subscribing first, reading the log second: every event is then either in the replay
        or delivered live (possibly both; the caller drops duplicates by sequence).

        :raises PermissionDenied: the actor is below viewer.
        """
        actor.require(Role.VIEWER)
        unsubscribe = self.hub.subscribe(actor.workspace_id, deliver)
        try:
            with self._store() as tx:
                head = tx.events.head(actor.workspace_id)
                if last_event_id is None or last_event_id == head:
                    return StreamOpening(head, False, unsubscribe)
                if last_event_id > head:
                    return StreamOpening(head, True, unsubscribe)
                following = tx.events.read(actor.workspace_id, last_event_id, 1)
        except BaseException:
            unsubscribe()
            raise
        if not following or following[0].seq != last_event_id + 1:  # pruned by the retention
            return StreamOpening(head, True, unsubscribe)
        return StreamOpening(last_event_id, False, unsubscribe)

    def read_stream(
        self, actor: Actor, after: int, limit: int, through: int | None = None
    ) -> list[Signal]:
        """The workspace's logged events after ``after`` (up to ``through``), in order.

        :raises PermissionDenied: the actor is below viewer.
        """
        actor.require(Role.VIEWER)
        with self._store() as tx:
            return tx.events.read(actor.workspace_id, after, limit, through)

    def create_stream_ticket(self, actor: Actor) -> tuple[str, datetime]:
        """A single-use ticket that opens one stream as the actor, and when it expires.

        Only its hash is stored, so the log of the database never holds a usable ticket.

        :raises PermissionDenied: the actor is below viewer.
        """
        actor.require(Role.VIEWER)
        ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
        expires_at = self._clock.now() + timedelta(seconds=self.hub.settings.ticket_seconds)
        with self._store(write=True) as tx:
            tx.events.add_ticket(
                {
                    "ticket_hash": _hash(ticket),
                    "workspace_id": actor.workspace_id,
                    "subject": actor.subject,
                    "role": actor.role.label,
                    "kind": actor.kind.value,
                    "expires_at": expires_at,
                }
            )
            tx.commit()
        return ticket, expires_at

    def redeem_stream_ticket(self, ticket: str) -> Actor | None:
        """The actor a ticket was issued to, consuming the ticket; None if unknown, used or
        expired."""
        with self._store(write=True) as tx:
            row = tx.events.take_ticket(_hash(ticket), self._clock.now())
            tx.commit()
        if row is None:
            return None
        return Actor(
            workspace_id=row["workspace_id"],
            subject=row["subject"],
            role=Role.parse(row["role"]),
            kind=ActorKind(row["kind"]),
        )


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode("utf-8")).hexdigest()
