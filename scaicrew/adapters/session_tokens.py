"""Session tokens: the one place that signs them (login flow and ``scaicrew token``).

HS256 with ``SESSION_SECRET``; ``handlers.security.verify_session_token`` verifies them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import jwt

if TYPE_CHECKING:
    from scaicrew.settings import Settings

SESSION_ALGORITHM = "HS256"


class HmacSessionTokens:
    """Implements ``domain.identity.SessionTokens``."""

    def __init__(self, secret: str, issuer: str, audience: str, ttl_seconds: int) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self.ttl_seconds = ttl_seconds

    def mint(
        self,
        *,
        subject: str,
        tenant_id: str,
        workspace_id: str,
        role: str,
        ttl_seconds: int | None = None,
        now: int | None = None,
        login_id: str | None = None,
    ) -> str:
        """A signed session token for ``subject`` acting in ``workspace_id`` with ``role``."""
        issued = int(time.time()) if now is None else now
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject,
            "tenant_id": tenant_id,
            "workspace_id": workspace_id,
            "role": role,
            "iat": issued,
            "exp": issued + (ttl_seconds or self.ttl_seconds),
        }
        if login_id is not None:
            claims["sid"] = login_id  # the login (refresh family); revoking it refuses the token
        return jwt.encode(claims, self._secret, algorithm=SESSION_ALGORITHM)


def session_tokens(settings: Settings) -> HmacSessionTokens:
    """The session-token signer for ``settings``."""
    return HmacSessionTokens(
        settings.session.secret.get_secret_value(),
        settings.session.issuer,
        settings.session.audience,
        settings.session.ttl_seconds,
    )
