"""What every capability shares: actors and roles, errors, ids, the clock, paging, signals,
the unit-of-work protocol and the secret box. The kernel imports no capability."""

from domain.kernel.actor import Actor, ActorKind, Role
from domain.kernel.clock import Clock, ManualClock, SystemClock
from domain.kernel.errors import (
    Conflict,
    CredentialRejected,
    DomainError,
    DuplicateName,
    InvalidField,
    NotFound,
    NotReady,
    PermissionDenied,
    PreconditionFailed,
    ReferencedResourceNotFound,
    RuleViolation,
)
from domain.kernel.ids import new_id
from domain.kernel.paging import Page, PageRequest, page_of
from domain.kernel.ports import SecretBox, SecretUnreadable
from domain.kernel.preconditions import Precondition
from domain.kernel.signals import Signal, SignalBus
from domain.kernel.trace_context import (
    TraceProducer,
    bind_trace_producer,
    queued_trace_context,
    unbind_trace_producer,
)
from domain.kernel.unit_of_work import Store, UnitOfWork

DEFAULT_TENANT = "default"

__all__ = [
    "DEFAULT_TENANT",
    "Actor",
    "ActorKind",
    "Clock",
    "Conflict",
    "CredentialRejected",
    "DomainError",
    "DuplicateName",
    "InvalidField",
    "ManualClock",
    "NotFound",
    "NotReady",
    "Page",
    "PageRequest",
    "PermissionDenied",
    "Precondition",
    "PreconditionFailed",
    "ReferencedResourceNotFound",
    "Role",
    "RuleViolation",
    "SecretBox",
    "SecretUnreadable",
    "Signal",
    "SignalBus",
    "Store",
    "SystemClock",
    "TraceProducer",
    "UnitOfWork",
    "bind_trace_producer",
    "new_id",
    "page_of",
    "queued_trace_context",
    "unbind_trace_producer",
]
