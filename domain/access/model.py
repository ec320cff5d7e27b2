"""Workspace API keys and what a credential is worth now: plain frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.kernel.actor import Role


@dataclass(frozen=True)
class ApiKey:
    """A workspace API key as listed: never its secret (only its hash is stored)."""

    id: str
    workspace_id: str
    name: str
    role: Role
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class IssuedApiKey:
    """A key just created, with its secret: the only time the secret is shown."""

    key: ApiKey
    secret: str


@dataclass(frozen=True)
class KeyGrant:
    """What a presented key secret authenticates as, read at this request."""

    key_id: str
    workspace_id: str
    role: Role
