"""Resource ids: a short kind prefix and 26 base-32 characters that sort by creation time.

The first 10 characters encode the millisecond timestamp, the remaining 16 a random number.
Within one process, ids made in the same millisecond increment the previous random part
instead of drawing a new one (as ULIDs do), so ordering by id is ordering by creation; across
processes, ids of the same millisecond sort arbitrarily but stably.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base 32, lower case
_RANDOM_BITS = 80
_lock = threading.Lock()
_last = (0, 0)  # (millisecond, random part) of the latest id of this process
# Random bytes drawn from the OS a few kilobytes at a time: each os.urandom call releases the
# GIL, and a thread that releases it mid-request hands the interpreter to another and waits
# to get it back (ADR 0059; the same hand-over per request's trace id cost GET about 8%).
_POOL_SIZE = 4096
_pool = b""
_pool_at = 0


def _randbits(bits: int) -> int:
    """A uniformly random integer of ``bits`` bits from the OS's CSPRNG (call under _lock)."""
    global _pool, _pool_at
    size = (bits + 7) // 8
    if _pool_at + size > len(_pool):
        _pool, _pool_at = os.urandom(_POOL_SIZE), 0
    chunk = _pool[_pool_at : _pool_at + size]
    _pool_at += size
    return int.from_bytes(chunk, "big") >> (size * 8 - bits)


def _forget_pool() -> None:
    global _pool, _pool_at
    _pool, _pool_at = b"", 0


# A forked child must not hand out the bytes its parent goes on using.
os.register_at_fork(after_in_child=_forget_pool)


# Every pair of characters, by the 10 bits it encodes: half the divisions of one character at
# a time (two ids per webhook delivery, five per run).
_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]


def _encode(value: int, length: int) -> str:
    """The low ``5 * length`` bits of ``value`` in ``length`` characters (``length`` even)."""
    pairs = []
    for _ in range(length // 2):
        value, rem = divmod(value, 1024)
        pairs.append(_PAIRS[rem])
    return "".join(reversed(pairs))


def new_id(prefix: str) -> str:
    """Return a fresh id such as ``crw_01jdz3...`` for the kind ``prefix``."""
    global _last
    with _lock:
        millis = max(time.time_ns() // 1_000_000, _last[0])
        if millis == _last[0] and _last[1] + 1 < 2**_RANDOM_BITS:
            # Leave room above: a fresh draw could repeat or sort below the previous id.
            random_part = _last[1] + 1 + _randbits(16)
        else:
            random_part = _randbits(_RANDOM_BITS - 1)
        if random_part >= 2**_RANDOM_BITS:  # exhausted this millisecond: borrow the next one
            millis, random_part = millis + 1, _randbits(_RANDOM_BITS - 1)
        _last = (millis, random_part)
    return f"{prefix}_{_encode(millis, 10)}{_encode(random_part, 16)}"
