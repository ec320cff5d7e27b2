"""Domain errors: conditions that depend on state or business rules.

They carry structured fields and a message, never an HTTP status; the handler layer maps each
class to a problem response in one table (``handlers/problems.py``).

    DomainError
    ├── NotFound                      a resource is absent from the caller's workspace
    │   └── ReferencedResourceNotFound  an id inside the request body names nothing
    ├── PermissionDenied              the actor's role is below what the use case needs
    │   └── MembershipRequired        the user has no (longer a) membership to act through
    ├── Conflict                      the request conflicts with current state
    │   ├── DuplicateName             a unique name is already taken
    │   ├── NoDraftToPublish          publish asked of a member without a draft
    │   ├── NothingToRun              run asked of a member with nothing runnable
    │   ├── IdempotencyKeyReused      the same key came with a different request
    │   ├── InputSchemaMismatch       a run input breaks the member's input schema
    │   ├── ApprovalAlreadyDecided    a second decision on an approval
    │   ├── ConcurrentTurn            two turns of one authoring session at once
    │   ├── AlreadyMember             a subject is added to a workspace twice
    │   ├── LastAdmin                 the last admin of a workspace would be removed/demoted
    │   ├── MemberNotPublished        a trigger targets a member with no published version
    │   └── RuleViolation             a definition or handoff rule is broken
    │       └── HandoffCycle          the handoff graph would contain a cycle
    ├── CredentialRejected            a credential names something that does not exist
    │   ├── LoginRejected             a login state, session code or refresh token is refused
    │   └── WebhookRejected           a webhook delivery was refused (one answer for every reason)
    ├── ModelUnusable                 the model's answer could not be used (after a retry)
    ├── IdentityProviderUnavailable   the OIDC provider is down or answered garbage
    ├── LoginNotConfigured            no OIDC provider is configured (501)
    └── InvalidField                  a body value breaks a rule the contract cannot express
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    #: Names the problem kind for clients (the problem ``type``); None: the status's default.
    slug: str | None = None

    def details(self) -> dict[str, object]:
        """Machine-readable specifics for the client (no internals)."""
        return {}

    def problem_slug(self) -> str | None:
        return self.slug


class NotFound(DomainError):
    """A resource does not exist in the caller's workspace (or exists only in another)."""

    def __init__(self, kind: str, identifier: str) -> None:
        super().__init__(f"No {kind} with id '{identifier}' in this workspace.")
        self.kind = kind
        self.identifier = identifier


class ReferencedResourceNotFound(NotFound):
    """An id given in the request body does not name a resource of the workspace."""

    def __init__(self, kind: str, identifier: str, pointer: str) -> None:
        super().__init__(kind, identifier)
        self.message = f"{pointer}: no {kind} with id '{identifier}' in this workspace."
        self.pointer = pointer

    def details(self) -> dict[str, object]:
        return {"pointer": self.pointer}


class PermissionDenied(DomainError):
    """The actor's role is below the role the use case requires."""

    def __init__(self, required: str, actual: str) -> None:
        super().__init__(f"This operation requires role '{required}'; the caller has '{actual}'.")
        self.required = required
        self.actual = actual

    def details(self) -> dict[str, object]:
        return {"required_role": self.required, "role": self.actual}


class Conflict(DomainError):
    """The request conflicts with the current state of a resource."""


class DuplicateName(Conflict):
    """A name that must be unique in its scope is already taken."""

    slug = "duplicate-name"

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"A {kind} named '{name}' already exists in this workspace.")
        self.kind = kind
        self.name = name

    def details(self) -> dict[str, object]:
        return {"pointer": "/name"}


class NoDraftToPublish(Conflict):
    """Publish was asked of a member whose latest version is already published."""

    slug = "no-draft"

    def __init__(self, member_id: str) -> None:
        super().__init__(f"Member '{member_id}' has no draft to publish; replace its draft first.")
        self.member_id = member_id


class RuleViolation(Conflict):
    """A rule on definitions or handoffs is broken; ``rule`` names it, ``pointer`` locates it."""

    def __init__(self, rule: str, message: str, pointer: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.pointer = pointer

    def details(self) -> dict[str, object]:
        return {"pointer": self.pointer}

    def problem_slug(self) -> str | None:
        return self.rule


class HandoffCycle(RuleViolation):
    """Declaring these handoffs would close a cycle in the workspace handoff graph."""

    def __init__(self, cycle: list[str], pointer: str) -> None:
        path = " -> ".join(cycle)
        super().__init__("handoff-cycle", f"These handoffs would close the cycle {path}.", pointer)
        self.cycle = cycle

    def details(self) -> dict[str, object]:
        return {"pointer": self.pointer, "cycle": list(self.cycle)}


class CredentialRejected(DomainError):
    """A verified credential names a workspace (or principal) that does not exist."""


class NothingToRun(Conflict):
    """A run was asked of a member without a published version (or, for a dry run, a draft)."""

    slug = "nothing-to-run"

    def __init__(self, member_id: str, dry_run: bool) -> None:
        what = "draft to dry-run" if dry_run else "published version to run"
        super().__init__(f"Member '{member_id}' has no {what}.")
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


class ModelUnusable(DomainError):
    """The configured model answered something unusable, even after a retry."""

    slug = "model-unusable"


class ConcurrentTurn(Conflict):
    """Another turn of the same authoring session was saved while this one was derived."""

    slug = "concurrent-turn"

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"Another turn of session '{session_id}' was saved meanwhile; send the message again."
        )


# -- identity: login, session codes, refresh tokens, workspace membership (issue 5) ------------


class LoginRejected(CredentialRejected):
    """A login state, session code, refresh token or ID token is refused; ``slug`` says which."""

    def __init__(self, slug: str, message: str) -> None:
        super().__init__(message)
        self.slug = slug


class LoginNotConfigured(DomainError):
    """No OIDC provider is configured on this server (OIDC_ISSUER and friends are unset)."""

    slug = "login-not-configured"

    def __init__(self) -> None:
        super().__init__("Login is not configured on this server (no OIDC provider).")


class IdentityProviderUnavailable(DomainError):
    """The OIDC provider could not be reached, timed out or answered something unusable."""

    slug = "identity-provider-unavailable"


class MembershipRequired(PermissionDenied):
    """The user has no membership (any more) in the workspace a token would be issued for."""

    def __init__(self, slug: str, message: str) -> None:
        DomainError.__init__(self, message)
        self.slug = slug
        self.required = "membership"
        self.actual = "none"

    def details(self) -> dict[str, object]:
        return {}


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


# -- triggers, schedules, webhook ingress (issue 4) ------------------------------------------


class InvalidField(DomainError):
    """A request body value breaks a rule the contract cannot express (a cron expression)."""

    slug = "validation-error"

    def __init__(self, pointer: str, reason: str, message: str) -> None:
        super().__init__(f"body {pointer}: {message}")
        self.pointer = pointer
        self.reason = reason
        self.field_message = message

    def details(self) -> dict[str, object]:
        return {
            "errors": [
                {
                    "location": "body",
                    "pointer": self.pointer,
                    "reason": self.reason,
                    "message": self.field_message,
                }
            ]
        }


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
