"""Crews, members and their versions, definitions and handoffs: plain, immutable objects."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from domain.tools import EffectClass


class Rigidity(enum.Enum):
    STRICT = "strict"
    GUIDED = "guided"
    ADAPTIVE = "adaptive"
    AUTONOMOUS = "autonomous"


class VersionStatus(enum.Enum):
    DRAFT = "draft"
    PUBLISHED = "published"


@dataclass(frozen=True)
class ToolSpec:
    name: str
    effect_class: EffectClass
    whitelisted: bool = False
    description: str = ""


@dataclass(frozen=True)
class Definition:
    """What a member version holds."""

    objective: str
    instructions: str = ""
    rules: tuple[str, ...] = ()
    rigidity: Rigidity = Rigidity.GUIDED
    tools: tuple[ToolSpec, ...] = ()
    # A JSON Schema that run inputs must satisfy; None accepts any object.
    input_schema: dict[str, Any] | None = field(default=None, hash=False, compare=True)
    # The run's wall-clock deadline; None: the deployment's default (a setting).
    max_run_seconds: int | None = None
    # How long an approval waits for a decision; None: the deployment's default (a setting).
    approval_timeout_seconds: int | None = None
    # What an expired approval does to its run: ``fail`` (``ApprovalExpired``) or ``reject``
    # (as a human reject would); None: ``fail``.
    on_approval_timeout: str | None = None

    def to_json(self) -> dict[str, object]:
        limits = {  # written only when set: definitions without them keep their exact JSON
            key: value
            for key, value in (
                ("max_run_seconds", self.max_run_seconds),
                ("approval_timeout_seconds", self.approval_timeout_seconds),
                ("on_approval_timeout", self.on_approval_timeout),
            )
            if value is not None
        }
        return {
            **limits,
            "objective": self.objective,
            "instructions": self.instructions,
            "rules": list(self.rules),
            "rigidity": self.rigidity.value,
            "input_schema": self.input_schema,
            "tools": [
                {
                    "name": t.name,
                    "effect_class": t.effect_class.value,
                    "whitelisted": t.whitelisted,
                    "description": t.description,
                }
                for t in self.tools
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Definition:
        """Build a definition from its JSON form (already shape-validated by the caller)."""
        raw_rules = data.get("rules") or []
        raw_tools = data.get("tools") or []
        assert isinstance(raw_rules, list) and isinstance(raw_tools, list)
        return cls(
            objective=str(data["objective"]),
            instructions=str(data.get("instructions") or ""),
            rules=tuple(str(r) for r in raw_rules),
            rigidity=Rigidity(str(data.get("rigidity") or Rigidity.GUIDED.value)),
            tools=tuple(
                ToolSpec(
                    name=str(t["name"]),
                    effect_class=EffectClass(str(t["effect_class"])),
                    whitelisted=bool(t.get("whitelisted", False)),
                    description=str(t.get("description") or ""),
                )
                for t in raw_tools
            ),
            input_schema=_object_or_none(data.get("input_schema")),
            max_run_seconds=_int_or_none(data.get("max_run_seconds")),
            approval_timeout_seconds=_int_or_none(data.get("approval_timeout_seconds")),
            on_approval_timeout=(
                None
                if data.get("on_approval_timeout") is None
                else str(data["on_approval_timeout"])
            ),
        )


def _object_or_none(value: object) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Crew:
    id: str
    workspace_id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime

    def edited(self, now: datetime, *, name: str | None, description: str | None) -> Crew:
        """The crew renamed and/or re-described (None keeps a field)."""
        return replace(
            self,
            name=self.name if name is None else name,
            description=self.description if description is None else description,
            updated_at=now,
        )


@dataclass(frozen=True)
class Member:
    id: str
    workspace_id: str
    crew_id: str
    name: str
    description: str
    active_version_id: str | None
    active_version_number: int | None
    draft_version_number: int | None
    latest_version_number: int
    identity: str | None
    created_at: datetime
    updated_at: datetime
    #: When the member was archived; None while it is not (issue 14).
    archived_at: datetime | None = None

    @property
    def status(self) -> str:
        return "published" if self.active_version_id else "draft"

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    @property
    def ever_published(self) -> bool:
        return self.identity is not None

    def edited(self, now: datetime, *, name: str | None, crew_id: str | None) -> Member:
        """The member renamed and/or moved to another crew (None keeps a field)."""
        return replace(
            self,
            name=self.name if name is None else name,
            crew_id=self.crew_id if crew_id is None else crew_id,
            updated_at=now,
        )

    def with_archived(self, archived_at: datetime | None, now: datetime) -> Member:
        return replace(self, archived_at=archived_at, updated_at=now)

    def version_to_run(self, *, dry_run: bool) -> int | None:
        """The number of the version a run executes: the active one, or for a dry run the
        draft; None when there is none."""
        return self.draft_version_number if dry_run else self.active_version_number

    def with_new_draft(self, now: datetime) -> Member:
        """The member once a new draft (the next number) is forked after a publish."""
        number = self.latest_version_number + 1
        return replace(
            self, draft_version_number=number, latest_version_number=number, updated_at=now
        )

    def touched(self, now: datetime) -> Member:
        return replace(self, updated_at=now)

    def published(self, version: Version, now: datetime) -> Member:
        """The member once ``version`` (its draft) is published and made active; the first
        publish gives the member its identity."""
        return replace(
            self,
            active_version_id=version.id,
            active_version_number=version.number,
            draft_version_number=None,
            identity=self.identity or f"member:{self.id}",
            updated_at=now,
        )


@dataclass(frozen=True)
class Version:
    id: str
    workspace_id: str
    member_id: str
    number: int
    status: VersionStatus
    definition: Definition
    program: dict[str, object] | None
    artifact_hash: str | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    published_at: datetime | None
    published_by: str | None


@dataclass(frozen=True)
class HandoffCondition:
    output_field: str
    equals: str | int | float | bool

    def matches(self, output: object) -> bool:
        """True when ``output`` is an object whose ``output_field`` equals ``equals``."""
        if not isinstance(output, dict) or self.output_field not in output:
            return False
        value = output[self.output_field]
        # bool is an int in Python: never let True match 1.
        if isinstance(value, bool) != isinstance(self.equals, bool):
            return False
        return bool(value == self.equals)


@dataclass(frozen=True)
class Handoff:
    target_member_id: str
    condition: HandoffCondition | None = None


@dataclass(frozen=True)
class HandoffSet:
    member_id: str
    handoffs: tuple[Handoff, ...]
    updated_at: datetime | None
