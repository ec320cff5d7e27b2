"""Who acts: an actor in one workspace with one role, taken from the credential only."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from domain.kernel.errors import PermissionDenied


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
    API_KEY = "api_key"  # a workspace API key: role-gated like a user
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
        if self.kind not in (ActorKind.USER, ActorKind.API_KEY):
            return
        if self.role < role:
            raise PermissionDenied(required=role.label, actual=self.role.label)

    @classmethod
    def system(cls, workspace_id: str, subject: str) -> Actor:
        """The system acting in ``workspace_id`` on behalf of ``subject`` (a trigger, a run)."""
        return cls(workspace_id, subject, Role.ADMIN, ActorKind.SYSTEM)
