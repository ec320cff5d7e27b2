"""Identity records: login states, session codes, refresh tokens, workspace members.

Plain frozen dataclasses (no persistence, no transport); ``domain.identity_repository`` reads
and writes them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from domain.model import Role


@dataclass(frozen=True)
class LoginState:
    nonce: str
    code_verifier: str
    expires_at: datetime


@dataclass(frozen=True)
class SessionCode:
    subject: str
    tenant_id: str
    expires_at: datetime
    redeemed_at: datetime | None


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
class WorkspaceMember:
    subject: str
    role: Role
    email: str | None
    name: str | None
    created_at: datetime


def encode_cursor(subject: str) -> str:
    return base64.urlsafe_b64encode(subject.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None  # a cursor we never issued: start from the beginning
