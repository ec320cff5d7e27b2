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

from domain.kernel import Actor, Role, Signal, SystemClock
from domain.subscriptions import SubscriptionDeliverer
from scaicrew.app import build_use_cases


class CommitsWhileItLooks:
    """A store over ``database`` whose first empty look past a cursor lets another connection
    commit an event before it answers: the moment of the race, made certain."""

    def __init__(self, database: Any, workspace_id: str) -> None:
        self._database = database
        self._workspace_id = workspace_id
        self.committed = False

    def __call__(self, *, write: bool = False) -> Any:
        tx = self._database(write=write)
        return _Looking(tx, self)

    def commit_an_event(self) -> None:
        self.committed = True
        with self._database(write=True) as other:
            other.record(Signal(self._workspace_id, "trigger.fired", {"n": 1}))
            other.commit()


class _Looking:
    def __init__(self, inner: Any, store: CommitsWhileItLooks) -> None:
        self._inner, self._store = inner, store

    def __enter__(self) -> Any:
        tx = self._inner.__enter__()
        look = tx.subscriptions.events_after

        def events_after(*args: Any) -> Any:
            found = look(*args)
            if not found and not self._store.committed:
                self._store.commit_an_event()
            return found

        tx.subscriptions.events_after = events_after
        return tx

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)


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
    store = CommitsWhileItLooks(db, workspace_id)
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

    assert store.committed
    with db() as tx:
        pending = tx.subscriptions.next_pending(subscription.id)
        head = tx.subscriptions.head(workspace_id)
        cursor = tx.subscriptions.get_any(subscription.id).cursor
    assert pending is not None and pending.event_id == str(head)
    assert cursor == head
