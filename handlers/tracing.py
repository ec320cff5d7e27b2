"""The per-request trace id, echoed as ``X-Request-ID`` and copied into every problem body,
and the facts about the request that its log line and metrics need (``RequestFacts``).

When an OpenTelemetry trace is active the observability middleware (``scaicrew.observability``)
offers its trace id first; a well-formed incoming ``X-Request-ID`` still wins.
"""

from __future__ import annotations

import random
import re
from contextvars import ContextVar
from dataclasses import dataclass

_trace_id: ContextVar[str] = ContextVar("scaicrew_trace_id", default="")
_facts: ContextVar[RequestFacts | None] = ContextVar("scaicrew_request_facts", default=None)
_ACCEPTED = re.compile(r"^[A-Za-z0-9._-]{8,128}$")


@dataclass
class RequestFacts:
    """Filled in while a request is handled, read once it is answered (a mutable holder, so
    code running in a copied context, such as the threadpool, can fill it in)."""

    trace_id: str = ""
    workspace_id: str = ""
    #: The OpenTelemetry trace id, when a trace is active: the trace id to adopt.
    suggested_trace_id: str = ""


def current_trace_id() -> str:
    return _trace_id.get() or "unknown"


def begin_request(facts: RequestFacts) -> None:
    _facts.set(facts)


def note_workspace(workspace_id: str) -> None:
    """The request acts in ``workspace_id`` (its credentials say so)."""
    facts = _facts.get()
    if facts is not None:
        facts.workspace_id = workspace_id


def start_trace(incoming: str | None) -> str:
    """Adopt a well-formed incoming ``X-Request-ID``, else the active trace's id, or mint a new
    id; return it."""
    facts = _facts.get()
    if incoming and _ACCEPTED.match(incoming):
        trace_id = incoming
    elif facts is not None and facts.suggested_trace_id:
        trace_id = facts.suggested_trace_id
    else:
        # Not secrets.token_hex: os.urandom releases the GIL, and the event loop, which mints
        # this id, then waits for a handler thread to hand it back (ADR 0059). A trace id
        # must be unique, not unguessable: it guards nothing.
        trace_id = f"{random.getrandbits(128):032x}"
    _trace_id.set(trace_id)
    if facts is not None:
        facts.trace_id = trace_id
    return trace_id
