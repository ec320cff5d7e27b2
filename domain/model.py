"""Plain domain objects: immutable dataclasses and enums, no persistence or transport."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from domain.errors import PermissionDenied


class Role(enum.IntEnum):
    """Workspace roles; each includes the ones below it."""

    VIEWER = 1
    OPERATOR = 2
    AUTHOR = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, label: str) -> Role:
        """Return the role named ``label``; raise ``ValueError`` for an unknown name."""
        try:
            return cls[label.upper()]
        except KeyError:
            raise ValueError(f"unknown role {label!r}") from None


class ActorKind(enum.Enum):
    USER = "user"
    SERVICE = "service"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who is acting, in which workspace, with which role (from the credential only)."""

    workspace_id: str
    subject: str
    role: Role
    kind: ActorKind = ActorKind.USER

    def require(self, role: Role) -> None:
        """Check that the actor may do what needs ``role``.

        Service and system actors are not role-gated; they still act in one workspace.

        :raises PermissionDenied: the actor's role is lower than ``role``.
        """
        if self.kind is not ActorKind.USER:
            return
        if self.role < role:
            raise PermissionDenied(required=role.label, actual=self.role.label)


class Rigidity(enum.Enum):
    STRICT = "strict"
    GUIDED = "guided"
    ADAPTIVE = "adaptive"
    AUTONOMOUS = "autonomous"


class EffectClass(enum.Enum):
    INTERNAL = "internal"
    EXTERNAL_READ = "external_read"
    EXTERNAL_WRITE = "external_write"
    SPEND = "spend"


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

    def to_json(self) -> dict[str, object]:
        return {
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
        )


def _object_or_none(value: object) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class Workspace:
    id: str
    tenant_id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Membership:
    workspace_id: str
    workspace_name: str
    subject: str
    role: Role


@dataclass(frozen=True)
class Crew:
    id: str
    workspace_id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


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

    @property
    def status(self) -> str:
        return "published" if self.active_version_id else "draft"


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


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next one (``None`` on the last page)."""

    items: list[T]
    next_cursor: str | None = None


def page_of(rows: list[T], page: PageRequest, cursor_of: Callable[[T], str]) -> Page[T]:
    """The page of ``rows`` a repository fetched with ``page.limit + 1`` rows.

    The extra row only says that another page exists; the cursor is the last kept row's key.
    """
    if len(rows) > page.limit:
        kept = rows[: page.limit]
        return Page(kept, cursor_of(kept[-1]))
    return Page(rows, None)


@dataclass(frozen=True)
class PageRequest:
    limit: int = 50
    cursor: str | None = None


# -- the run vertical ------------------------------------------------------------------------


class RunStatus(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED)


class RunOrigin(enum.Enum):
    MANUAL = "manual"
    SCHEDULE = "schedule"
    WEBHOOK = "webhook"
    HANDOFF = "handoff"


class ApprovalStatus(enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Run:
    id: str
    workspace_id: str
    member_id: str
    crew_id: str
    version_id: str
    version_number: int
    origin: RunOrigin
    status: RunStatus
    dry_run: bool
    parent_run_id: str | None
    depth: int
    input: dict[str, Any]
    output: dict[str, Any] | None
    error: dict[str, Any] | None
    state: dict[str, Any] = field(hash=False)
    created_by: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    claimed_by: str | None
    lease_expires_at: datetime | None
    attempts: int
    next_seq: int
    tokens_in: int
    tokens_out: int
    cost_units: float


@dataclass(frozen=True)
class RunEvent:
    run_id: str
    seq: int
    at: datetime
    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Approval:
    id: str
    workspace_id: str
    run_id: str
    member_id: str
    version_id: str
    version_number: int
    tool: str
    effect_class: str
    arguments: dict[str, Any]
    call_id: str
    status: ApprovalStatus
    reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class MemberCost:
    member_id: str
    runs: int
    tokens_in: int
    tokens_out: int
    cost_units: float
