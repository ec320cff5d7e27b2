"""Ports every capability may need from the outside world."""

from __future__ import annotations

from typing import Protocol


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
