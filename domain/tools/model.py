"""Tools: what a member may call, and how far its effects reach."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class EffectClass(enum.Enum):
    """How far a tool call reaches; it decides whether the call waits for a human approval."""

    INTERNAL = "internal"
    EXTERNAL_READ = "external_read"
    EXTERNAL_WRITE = "external_write"
    SPEND = "spend"


@dataclass(frozen=True)
class CatalogTool:
    """A tool this deployment implements: its honest effect class and its argument schema."""

    name: str
    effect_class: EffectClass
    description: str
    parameters: dict[str, Any] = field(hash=False)
