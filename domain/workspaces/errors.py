"""Errors of workspace membership."""

from __future__ import annotations

from domain.kernel.errors import Conflict


class AlreadyMember(Conflict):
    """The subject already belongs to the workspace (change its role instead)."""

    slug = "already-member"

    def __init__(self, subject: str) -> None:
        super().__init__(f"'{subject}' is already a member of this workspace.")
        self.subject = subject


class LastAdmin(Conflict):
    """Removing or demoting this member would leave the workspace without an admin."""

    slug = "last-admin"

    def __init__(self, subject: str) -> None:
        super().__init__(
            f"'{subject}' is the last admin of this workspace; make another member admin first."
        )
        self.subject = subject


class OwnMembership(Conflict):
    """An admin tried to remove or demote themself: another admin has to (no one locks
    themself out of a workspace by accident, or by a script gone wrong)."""

    slug = "own-membership"

    def __init__(self, subject: str) -> None:
        super().__init__(
            f"'{subject}' is your own membership; another admin has to remove or demote you."
        )
        self.subject = subject
