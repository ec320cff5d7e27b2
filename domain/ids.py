"""Resource ids: a short kind prefix and 26 base-32 characters that sort by creation time.

The first 10 characters encode the millisecond timestamp, the remaining 16 are random, so
ordering by id is ordering by creation (within a millisecond, arbitrarily but stably).
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base 32, lower case


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """Return a fresh id such as ``crw_01jdz3...`` for the kind ``prefix``."""
    millis = time.time_ns() // 1_000_000
    return f"{prefix}_{_encode(millis, 10)}{_encode(secrets.randbits(80), 16)}"
