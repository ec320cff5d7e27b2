"""Integration fixtures: actors in fresh workspaces, acting through the real use cases."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from domain.kernel import Actor, Role
from domain.members import Definition, EffectClass, ToolSpec
from domain.use_cases import UseCases

DEFINITION = Definition(
    objective="Summarise new support tickets.",
    tools=(
        ToolSpec("read_queue", EffectClass.EXTERNAL_READ),
        ToolSpec("send_email", EffectClass.EXTERNAL_WRITE),
    ),
)


def fresh_workspace_id() -> str:
    return f"wsp_{secrets.token_hex(13)}"


@pytest.fixture
def make_actor(use_cases: UseCases) -> Any:
    """An admin actor in a fresh workspace."""

    def make(role: Role = Role.ADMIN) -> Actor:
        workspace_id = fresh_workspace_id()
        use_cases.workspaces.ensure_member(workspace_id, "integration-user", role)
        return Actor(workspace_id=workspace_id, subject="integration-user", role=role)

    return make


@pytest.fixture
def actor(make_actor: Any) -> Actor:
    return make_actor()
