"""Domain errors: conditions that depend on state or business rules.

They carry structured fields and a message, never an HTTP status; the handler layer maps each
class to a problem response in one table (``handlers/problems.py``). The kernel holds the
general kinds; each capability raises subclasses of its own from its ``errors`` module.

    DomainError
    ├── NotFound                        a resource is absent from the caller's workspace
    │   └── ReferencedResourceNotFound  an id inside the request body names nothing
    ├── PermissionDenied                the actor's role is below what the use case needs
    │   └── identity.MembershipRequired the user has no (longer a) membership to act through
    ├── Conflict                        the request conflicts with current state
    │   ├── DuplicateName               a unique name is already taken
    │   ├── RuleViolation               a definition, handoff or template rule is broken
    │   │   └── members.HandoffCycle    the handoff graph would contain a cycle
    │   ├── members.NoDraftToPublish    publish asked of a member without a draft
    │   ├── runs.NothingToRun           run asked of a member with nothing runnable
    │   ├── runs.IdempotencyKeyReused   the same key came with a different request
    │   ├── runs.InputSchemaMismatch    a run input breaks the member's input schema
    │   ├── runs.ApprovalAlreadyDecided a second decision on an approval
    │   ├── budgets.BudgetExceeded      a blocking budget's limit is reached (BudgetExceeded)
    │   ├── authoring.ConcurrentTurn    two turns of one authoring session at once
    │   ├── workspaces.AlreadyMember    a subject is added to a workspace twice
    │   ├── workspaces.LastAdmin        the last admin of a workspace would be removed/demoted
    │   ├── workspaces.OwnMembership    an admin would remove or demote themself
    │   └── triggers.MemberNotPublished a trigger targets a member with no published version
    ├── PreconditionFailed              the resource changed since the caller read it (If-Match)
    ├── CredentialRejected              a credential names something that does not exist
    │   ├── identity.LoginRejected      a login state, session code or refresh token is refused
    │   └── triggers.WebhookRejected    a webhook delivery was refused (one answer for all)
    ├── authoring.ModelUnusable         the model's answer could not be used (after a retry)
    ├── identity.IdentityProviderUnavailable  the OIDC provider is down or answered garbage
    ├── identity.LoginNotConfigured     no OIDC provider is configured
    ├── NotReady                        the database answers, but not at the expected schema
    └── InvalidField                    a body value breaks a rule the contract cannot express
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    #: Names the problem kind for clients (the problem ``type``); None: the status's default.
    slug: str | None = None
    #: The problem's ``error.code``; None: the status's default (``Conflict``...).
    code: str | None = None

    def details(self) -> dict[str, object]:
        """Machine-readable specifics for the client (no internals)."""
        return {}

    def problem_slug(self) -> str | None:
        return self.slug


class NotReady(DomainError):
    """The service cannot serve yet: its database schema is not at the expected revision."""


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


class PreconditionFailed(DomainError):
    """An update was based on a state of the resource that is no longer current."""

    slug = "precondition-failed"

    def __init__(self) -> None:
        super().__init__(
            "The resource changed since it was read (its entity tag no longer matches "
            "If-Match); read it again and re-apply the change."
        )


class CredentialRejected(DomainError):
    """A verified credential names a workspace (or principal) that does not exist."""


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
