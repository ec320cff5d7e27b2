"""Entity tags: optimistic concurrency (``If-Match``) and conditional reads (``If-None-Match``).

An entity tag is a strong validator derived from the resource's JSON representation (a hash of
its canonical form), so it changes exactly when what a client reads changes, and needs no
column. ``If-Match`` becomes a domain precondition, checked in the use case's transaction
after its row lock: of two writers holding the same tag, one wins and the other gets
``412 PreconditionFailed``. ``If-None-Match`` on a read answers ``304`` when it matches.
Tags are compared strongly for ``If-Match`` and weakly for ``If-None-Match`` (RFC 9110 13.1).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import orjson
from starlette.responses import Response

from handlers._http import ok, request_header

T = TypeVar("T")


def etag_of(body: Any) -> str:
    """The strong tag of a JSON representation: a hash of its canonical form (sorted keys,
    compact, UTF-8), computed on every read and every ``If-Match``."""
    try:
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # what orjson cannot encode (integers over 64 bits): the standard library
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        canonical = text.encode("utf-8")
    return '"' + hashlib.sha256(canonical).hexdigest()[:32] + '"'


def _tags(header: str | None) -> list[str] | None:
    if header is None:
        return None
    return [part.strip() for part in header.split(",") if part.strip()]


def if_match(serialise: Callable[[T], Any]) -> Callable[[T | None], bool] | None:
    """The domain precondition the request's ``If-Match`` asks for (None without one)."""
    tags = _tags(request_header("If-Match"))
    if tags is None:
        return None

    def holds(current: T | None) -> bool:
        if current is None:
            return False
        if "*" in tags:
            return True
        return etag_of(serialise(current)) in tags  # strong: a W/ tag never matches

    return holds


def tagged(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Any:
    """A JSON response carrying the representation's ``ETag``."""
    return ok(body, status, {**(headers or {}), "ETag": etag_of(body)})


def conditional(body: Any) -> Any:
    """A read's answer: ``304`` when ``If-None-Match`` names the current tag, else ``200``."""
    etag = etag_of(body)
    tags = _tags(request_header("If-None-Match"))
    if tags is not None and ("*" in tags or etag in {t.removeprefix("W/") for t in tags}):
        # A framework response: Connexion would try (and fail) to pick a content type for it.
        return Response(status_code=304, headers={"ETag": etag})
    return ok(body, 200, {"ETag": etag})
