"""One audit entry: who (actor), did what (action), to which resource, with which details."""

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
