"""The ScaiCrew domain: rules and use cases, free of HTTP and of any web framework.

The public surface is what handlers and the composition root may use.
"""

from domain import errors, services
from domain.model import Actor, ActorKind, Role
from domain.unit_of_work import SqlUnitOfWork, UnitOfWorkFactory

__all__ = [
    "Actor",
    "ActorKind",
    "Role",
    "SqlUnitOfWork",
    "UnitOfWorkFactory",
    "errors",
    "services",
]
