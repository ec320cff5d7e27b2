"""Workspaces (the tenancy boundary) and their memberships."""

from domain.workspaces.errors import AlreadyMember, LastAdmin, OwnMembership
from domain.workspaces.model import Membership, Workspace, WorkspaceAccess
from domain.workspaces.repository import WorkspaceRepository, WorkspacesTx
from domain.workspaces.use_cases import Workspaces, create_first_workspace

__all__ = [
    "AlreadyMember",
    "LastAdmin",
    "OwnMembership",
    "Membership",
    "Workspace",
    "WorkspaceAccess",
    "WorkspaceRepository",
    "Workspaces",
    "WorkspacesTx",
    "create_first_workspace",
]
