"""Encryption of trigger secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) keys derived
with HKDF-SHA256 from the configured key material.

Several comma-separated key materials may be configured: the first encrypts, every one
decrypts, so a key can be rotated without losing the secrets sealed under the old one.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from domain.kernel import SecretUnreadable

_INFO = b"scaicrew trigger secrets v1"

#: Tokens whose plaintext a box remembers. A token is immutable (a rotation seals a new one),
#: so what it opens to never changes; decrypting it again on every webhook delivery cost about
#: 2.5% of the delivery's instructions (ADR 0063). The keys that open them are in memory anyway.
OPENED_TOKENS_KEPT = 1024


def _fernet(material: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        material.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(key))


class FernetSecretBox:
    """A ``domain.kernel.SecretBox`` over Fernet."""

    def __init__(self, materials: list[str]) -> None:
        if not materials or not all(materials):
            raise ValueError("at least one non-empty key material is required")
        self._fernet = MultiFernet([_fernet(m) for m in materials])
        # Per box: a box with other keys must not answer from this one's memory.
        self._opened = lru_cache(maxsize=OPENED_TOKENS_KEPT)(self._decrypt)

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def open(self, token: str) -> str:
        return self._opened(token)

    def _decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError) as exc:
            raise SecretUnreadable("no configured key opens this secret") from exc
