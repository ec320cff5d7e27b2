"""Errors of login: refused secrets, an absent or failing identity provider, no membership."""

from __future__ import annotations

from domain.kernel.errors import CredentialRejected, DomainError, PermissionDenied


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
