"""Resource ids: a short kind prefix and 26 base-32 characters that sort by creation time.

The first 10 characters encode the millisecond timestamp, the remaining 16 a random number.
Within one process, ids made in the same millisecond increment the previous random part
instead of drawing a new one (as ULIDs do), so ordering by id is ordering by creation; across
processes, ids of the same millisecond sort arbitrarily but stably.
"""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base 32, lower case
_RANDOM_BITS = 80
_lock = threading.Lock()
_last = (0, 0)  # (millisecond, random part) of the latest id of this process


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """Return a fresh id such as ``crw_01jdz3...`` for the kind ``prefix``."""
    global _last
    with _lock:
        millis = max(time.time_ns() // 1_000_000, _last[0])
        if millis == _last[0] and _last[1] + 1 < 2**_RANDOM_BITS:
            # Leave room above: a fresh draw could repeat or sort below the previous id.
            random_part = _last[1] + 1 + secrets.randbits(16)
        else:
            random_part = secrets.randbits(_RANDOM_BITS - 1)
        if random_part >= 2**_RANDOM_BITS:  # exhausted this millisecond: borrow the next one
            millis, random_part = millis + 1, secrets.randbits(_RANDOM_BITS - 1)
        _last = (millis, random_part)
    return f"{prefix}_{_encode(millis, 10)}{_encode(random_part, 16)}"
