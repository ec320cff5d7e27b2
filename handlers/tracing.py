"""The per-request trace id, echoed as ``X-Request-ID`` and copied into every problem body."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

_trace_id: ContextVar[str] = ContextVar("scaicrew_trace_id", default="")
_ACCEPTED = re.compile(r"^[A-Za-z0-9._-]{8,128}$")


def current_trace_id() -> str:
    return _trace_id.get() or "unknown"


def start_trace(incoming: str | None) -> str:
    """Adopt a well-formed incoming ``X-Request-ID``, or mint a new id; return it."""
    trace_id = incoming if incoming and _ACCEPTED.match(incoming) else secrets.token_hex(16)
    _trace_id.set(trace_id)
    return trace_id
