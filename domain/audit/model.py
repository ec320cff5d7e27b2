"""One audit entry: who (actor), did what (action), to which resource, with which details;
and the filter an admin reads the log with."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class AuditEntry:
    id: str
    workspace_id: str
    at: datetime
    actor_subject: str
    actor_kind: str
    action: str
    subject_type: str
    subject_id: str
    data: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to list; None leaves a criterion out. ``at_or_after`` is inclusive,
    ``before`` exclusive."""

    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    at_or_after: datetime | None = None
    before: datetime | None = None
