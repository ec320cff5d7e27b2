"""A subscription's fan-out never skips an event that commits while it looks.

On PostgreSQL each statement of a transaction reads its own snapshot (READ COMMITTED). The
fan-out found no event after the subscription's cursor, then read the workspace's head, and
took a head past the cursor for events the retention had pruned: an event committed between
the two reads was skipped, and its deliveries were never made (`make bench`'s deliveries
scenario lost one of 200 with two delivery processes). The head is now read first, then
looked past again.
"""

from __future__ import annotations

from typing import Any

import pytest

from domain.database import Database
from domain.kernel import Actor, Role, Signal, SystemClock
from domain.subscriptions import SubscriptionDeliverer
from scaicrew.app import build_use_cases
from tests.support.stores import PatchedStore


def commits_while_it_looks(database: Database, workspace_id: str) -> tuple[PatchedStore, list[int]]:
    """A store over ``database`` whose first empty look past a cursor lets another connection
    commit an event before it answers: the moment of the race, made certain. With it, the
    list that says (once non-empty) that the event was committed."""
    committed: list[int] = []

    def patch(tx: Any) -> None:
        look = tx.subscriptions.events_after

        def events_after(*args: Any) -> Any:
            found = look(*args)
            if not found and not committed:
                committed.append(1)
                with database(write=True) as other:
                    other.record(Signal(workspace_id, "trigger.fired", {"n": 1}))
                    other.commit()
            return found

        tx.subscriptions.events_after = events_after

    return PatchedStore(database, patch), committed


def test_an_event_committed_between_the_look_and_the_head_is_delivered(isolated):
    if isolated.database.is_sqlite:
        pytest.skip("a SQLite transaction reads one snapshot; PostgreSQL one per statement")
    db, workspace_id = isolated.database, isolated.tenant.workspace_id
    settings = isolated.settings.with_changes(subscription_allowed_hosts="127.0.0.1:9")
    use_cases = build_use_cases(settings, db)
    actor = Actor(workspace_id, "user-admin", Role.ADMIN)
    subscription, _secret = use_cases.subscriptions.create_subscription(
        actor, url="http://127.0.0.1:9/hook", event_types=["trigger.fired"]
    )
    store, committed = commits_while_it_looks(db, workspace_id)
    assert use_cases.ports.delivery is not None
    deliverer = SubscriptionDeliverer(
        store,
        SystemClock(),
        use_cases.ports.secret_box,
        use_cases.ports.delivery,
        settings.subscriptions,
        "fan-out",
    )

    deliverer._fan_out(subscription.id)  # the step the race is in (a private one)

    assert committed
    with db() as tx:
        pending = tx.subscriptions.next_pending(subscription.id)
        head = tx.subscriptions.head(workspace_id)
        cursor = tx.subscriptions.get_any(subscription.id).cursor
    assert pending is not None and pending.event_id == str(head)
    assert cursor == head
