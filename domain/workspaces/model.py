"""Workspaces and who belongs to them: plain, immutable domain objects."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from domain.kernel.actor import Role


@dataclass(frozen=True)
class Workspace:
    id: str
    tenant_id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class WorkspaceAccess:
    """One workspace a subject belongs to, as that subject sees it (its name and the role)."""

    workspace_id: str
    workspace_name: str
    subject: str
    role: Role


@dataclass(frozen=True)
class Membership:
    """One subject of a workspace, as the workspace's admins see it."""

    subject: str
    role: Role
    email: str | None
    name: str | None
    created_at: datetime


def subject_cursor(subject: str) -> str:
    """The opaque cursor of a list ordered by subject (subjects may hold any character)."""
    return base64.urlsafe_b64encode(subject.encode()).decode().rstrip("=")


def subject_after(cursor: str | None) -> str | None:
    """The subject a cursor continues after; None starts from the beginning."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None  # a cursor we never issued: start from the beginning
