"""Errors of triggers: a member that cannot be triggered, a webhook-only operation on a
schedule, a refused webhook delivery."""

from __future__ import annotations

from domain.kernel.errors import Conflict, CredentialRejected


class MemberNotPublished(Conflict):
    """A trigger names a member that has no published version to run."""

    slug = "member-not-published"

    def __init__(self, member_id: str) -> None:
        super().__init__(
            f"Member '{member_id}' has no published version; publish it before triggering it."
        )
        self.member_id = member_id

    def details(self) -> dict[str, object]:
        return {"pointer": "/member_id"}


class NotAWebhook(Conflict):
    """A webhook-only operation (secret rotation) was asked of a schedule trigger."""

    slug = "not-a-webhook"

    def __init__(self, trigger_id: str) -> None:
        super().__init__(f"Trigger '{trigger_id}' is not a webhook trigger: it has no secret.")
        self.trigger_id = trigger_id


class WebhookRejected(CredentialRejected):
    """A webhook delivery was refused: unknown, deleted or disabled trigger, bad or stale
    signature. The message is the same for every reason (it must not reveal which); the
    reason goes to the trigger's invocation log only."""

    slug = "webhook-rejected"
    MESSAGE = (
        "The delivery was not accepted: the trigger does not exist or is not enabled, or the "
        "signature or timestamp is not valid."
    )

    def __init__(self, reason: str) -> None:
        super().__init__(self.MESSAGE)
        self.reason = reason
