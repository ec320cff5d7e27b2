"""What login needs from the outside world: the identity provider and a token signer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class VerifiedIdentity:
    """Who the identity provider vouched for, from a validated ID token."""

    subject: str
    email: str | None = None
    name: str | None = None
    tenant: str | None = None  # the configured tenant claim's value, if any


class IdentityProvider(Protocol):
    """An OpenID Connect provider reached with the authorization code flow and PKCE.

    Implementations raise ``IdentityProviderUnavailable`` when the provider is unreachable or
    answers garbage, and ``LoginRejected`` when it refuses the code or its ID token does not
    validate (both from ``domain.identity.errors``).
    """

    def authorization_url(self, *, state: str, nonce: str, code_challenge: str) -> str:
        """The provider's authorize URL for this login (S256 challenge)."""
        ...

    def exchange_code(self, *, code: str, code_verifier: str, nonce: str) -> VerifiedIdentity:
        """Redeem ``code`` at the token endpoint and validate the ID token it returns."""
        ...


class SessionTokens(Protocol):
    """Signs session tokens (the one minting function, shared with ``scaicrew token``)."""

    ttl_seconds: int

    def mint(
        self,
        *,
        subject: str,
        tenant_id: str,
        workspace_id: str,
        role: str,
        login_id: str | None = None,
    ) -> str:
        """A signed session token for ``subject`` acting in ``workspace_id`` with ``role``;
        ``login_id`` names the login (refresh family) it belongs to, if any."""
        ...
