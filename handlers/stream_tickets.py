"""The stream ticket scheme (``streamTicket`` in openapi.yaml): ``GET /v1/stream?ticket=...``.

Named by ``x-apikeyInfoFunc``; kept apart from ``handlers.stream`` because it is no operation.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool

from domain.kernel import Actor
from handlers._http import use_cases
from handlers.problems import ApiError
from handlers.security import current_role

_TICKET = re.compile(r"^stk_[A-Za-z0-9_-]{43}$")


async def verify_stream_ticket(apikey: str, request: Any = None) -> Any:
    """Accept a stream ticket (``?ticket=``) once, as the identity it was issued to."""
    if not _TICKET.match(apikey):
        raise ApiError(401, "The stream ticket is malformed.")
    redeem = use_cases().stream.redeem_stream_ticket
    who: Actor | None = await run_in_threadpool(redeem, apikey)
    if who is None:
        raise ApiError(401, "The stream ticket is unknown, already used or expired.")
    info = {
        "sub": who.subject,
        "workspace_id": who.workspace_id,
        "role": who.role.label,
        "kind": who.kind.value,
    }
    # Issued before a removal, demotion or key revocation: worth what the identity is now.
    role = await current_role(info)
    if role is None:
        raise ApiError(401, "The stream ticket's identity no longer has access to the workspace.")
    return {**info, "role": role.label}
