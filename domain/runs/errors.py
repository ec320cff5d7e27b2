"""Errors of runs: nothing to run, a reused idempotency key, a bad input, a decided approval,
a finished run."""

from __future__ import annotations

from domain.kernel.errors import Conflict


class NothingToRun(Conflict):
    """A run was asked of a member without a published version (or, for a dry run, a draft)."""

    slug = "nothing-to-run"

    def __init__(self, member_id: str, dry_run: bool) -> None:
        what = "draft to dry-run" if dry_run else "published version to run"
        super().__init__(f"Member '{member_id}' has no {what}.")
        self.member_id = member_id


class MemberArchived(NothingToRun):
    """A run was asked of an archived member (by hand, a trigger or a handoff)."""

    slug = "member-archived"

    def __init__(self, member_id: str) -> None:
        Conflict.__init__(self, f"Member '{member_id}' is archived; unarchive it to run it.")
        self.member_id = member_id


class IdempotencyKeyReused(Conflict):
    """An Idempotency-Key was sent again with a different request."""

    slug = "idempotency-key-reused"

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key '{key}' was already used with a different request body.")


class InputSchemaMismatch(Conflict):
    """A run input does not satisfy the member's declared input schema."""

    slug = "input-schema-mismatch"

    def __init__(self, problems: list[dict[str, str]]) -> None:
        first = problems[0]
        super().__init__(
            f"The input does not match the member's input schema: "
            f"{first['pointer'] or '/'}: {first['message']}"
        )
        self.problems = problems

    def details(self) -> dict[str, object]:
        return {"errors": [{"location": "body", **p} for p in self.problems]}


class ApprovalAlreadyDecided(Conflict):
    """A decision was asked of an approval that is no longer pending."""

    slug = "approval-decided"

    def __init__(self, approval_id: str, status: str) -> None:
        super().__init__(f"Approval '{approval_id}' was already decided ({status}).")
        self.status = status


class RunFinished(Conflict):
    """An operation that needs a live run (cancel) was asked of a finished one."""

    slug = "run-finished"

    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(f"Run '{run_id}' has already finished ({status}).")
        self.status = status
