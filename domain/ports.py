"""What the engine needs from the outside world, as protocols the adapters implement.

The domain calls models and HTTP through these ports only; ``scaicrew.adapters`` holds the
implementations that speak HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class Usage:
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass(frozen=True)
class ModelReply:
    """Either tool calls to make, or the final output object of the run."""

    tool_calls: tuple[ToolCall, ...] = ()
    output: dict[str, Any] | None = field(default=None, hash=False)
    usage: Usage = Usage()


class ModelError(Exception):
    """The model could not answer usefully (timeout, HTTP error, garbage); readable message."""


class ToolError(Exception):
    """A tool call failed; the message is safe to show to the workspace's users."""


class Model(Protocol):
    name: str

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelReply:
        """Answer the conversation ``messages`` given the callable ``tools``.

        :raises ModelError: on any failure.
        """
        ...


class HttpPort(Protocol):
    def get(self, url: str) -> dict[str, Any]:
        """:raises ToolError: not allowed, unreachable, timed out."""
        ...

    def post(self, url: str, body: Any) -> dict[str, Any]:
        """:raises ToolError: not allowed, unreachable, timed out."""
        ...


# -- identity (issue 5) ----------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedIdentity:
    """Who the identity provider vouched for, from a validated ID token."""

    subject: str
    email: str | None = None
    name: str | None = None
    tenant: str | None = None  # the configured tenant claim's value, if any


class IdentityProvider(Protocol):
    """An OpenID Connect provider reached with the authorization code flow and PKCE.

    Implementations raise ``domain.errors.IdentityProviderUnavailable`` when the provider is
    unreachable or answers garbage, and ``domain.errors.LoginRejected`` when it refuses the
    code or its ID token does not validate.
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

    def mint(self, *, subject: str, tenant_id: str, workspace_id: str, role: str) -> str:
        """A signed session token for ``subject`` acting in ``workspace_id`` with ``role``."""
        ...


# -- triggers (issue 4) ----------------------------------------------------------------------


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with the configured keys (rotated away, corrupt)."""


class SecretBox(Protocol):
    """Symmetric, authenticated encryption of small secrets at rest (webhook HMAC secrets)."""

    def seal(self, plaintext: str) -> str:
        """An opaque, printable token holding ``plaintext`` encrypted."""
        ...

    def open(self, token: str) -> str:
        """The plaintext ``seal`` encrypted into ``token``.

        :raises SecretUnreadable: no configured key opens the token.
        """
        ...
