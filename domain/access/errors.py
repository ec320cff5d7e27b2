"""Errors of access: a key secret that authenticates nothing."""

from __future__ import annotations

from domain.kernel.errors import CredentialRejected


class ApiKeyRejected(CredentialRejected):
    """An unknown, revoked or expired API key (one answer for each: no oracle)."""

    slug = "invalid-api-key"

    def __init__(self) -> None:
        super().__init__("The API key is unknown, revoked or expired.")
