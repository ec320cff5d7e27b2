"""Login records and results: plain frozen dataclasses (no persistence, no transport)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.workspaces import WorkspaceAccess


@dataclass(frozen=True)
class LoginSettings:
    state_ttl_seconds: int
    session_code_ttl_seconds: int
    refresh_ttl_seconds: int


@dataclass(frozen=True)
class LoginState:
    nonce: str
    code_verifier: str
    expires_at: datetime
    login_challenge: str | None


@dataclass(frozen=True)
class SessionCode:
    subject: str
    tenant_id: str
    expires_at: datetime
    redeemed_at: datetime | None
    login_challenge: str | None = None


@dataclass(frozen=True)
class RefreshToken:
    id: str
    family_id: str
    subject: str
    tenant_id: str
    workspace_id: str
    expires_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class LoginStart:
    authorization_url: str
    state: str
    expires_at: datetime


@dataclass(frozen=True)
class SessionGrant:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_at: datetime
    workspace: WorkspaceAccess


@dataclass(frozen=True)
class WorkspaceSelection:
    workspaces: list[WorkspaceAccess]
