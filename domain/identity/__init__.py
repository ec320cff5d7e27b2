"""Identity: logging in through an OIDC provider, session codes and refresh tokens."""

from domain.identity.errors import (
    IdentityProviderUnavailable,
    LoginNotConfigured,
    LoginRejected,
    MembershipRequired,
)
from domain.identity.model import LoginSettings, LoginStart, SessionGrant, WorkspaceSelection
from domain.identity.ports import IdentityProvider, SessionTokens, VerifiedIdentity
from domain.identity.repository import IdentityRepository, IdentityTx
from domain.identity.use_cases import Login, digest, pkce_challenge

__all__ = [
    "IdentityProvider",
    "IdentityProviderUnavailable",
    "IdentityRepository",
    "IdentityTx",
    "Login",
    "LoginNotConfigured",
    "LoginRejected",
    "LoginSettings",
    "LoginStart",
    "MembershipRequired",
    "SessionGrant",
    "SessionTokens",
    "VerifiedIdentity",
    "WorkspaceSelection",
    "digest",
    "pkce_challenge",
]
