"""Unit-test fixtures: a fresh in-memory store, a stopped clock, actors of each role."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.kernel import Actor, ManualClock, Role
from tests.unit.fakes import FakeStore

WORKSPACE = "wsp_unit"


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


def actor(role: Role = Role.AUTHOR, workspace_id: str = WORKSPACE) -> Actor:
    return Actor(workspace_id, f"user-{role.label}", role)
