"""Rate limits (issue 15, ADR 0034): fixed windows from the ``limits`` library, checked
before anything else reads the request.

Buckets: per client IP for every request; per credential (a hash of the ``Authorization``
header or stream ticket, so forged credentials are counted too) for the API; a stricter one per
client IP for ``/v1/auth/*``; per trigger for webhook ingress. A refused request answers
``429 RateLimited`` with ``Retry-After``; every limited response carries ``RateLimit-Limit``,
``RateLimit-Remaining`` and ``RateLimit-Reset`` of its tightest bucket. Storage is in memory
(per process) or Redis (shared by every process, ``RATE_LIMIT_STORAGE``). If the storage
fails, requests are let through and the failure is logged: a limiter outage must not take
the API down.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handlers.problems import PROBLEM_JSON, problem_bytes

logger = logging.getLogger("scaicrew.rate_limits")


@dataclass(frozen=True)
class RateRules:
    credential: str
    ip: str
    auth: str
    webhook: str


def storage_uri(configured: str) -> tuple[str, dict[str, Any]]:
    """The ``limits`` async storage URI and options for ``RATE_LIMIT_STORAGE``."""
    if configured.startswith(("redis://", "rediss://")):
        return "async+" + configured, {"implementation": "redispy"}
    return "async+memory://", {}


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, rules: RateRules, storage: str, key_prefix: str) -> None:
        self.app = app
        uri, options = storage_uri(storage)
        if uri.startswith("async+redis"):
            options["key_prefix"] = key_prefix
        self._limiter = FixedWindowRateLimiter(storage_from_string(uri, **options))  # type: ignore[arg-type]
        self._credential = parse(rules.credential)
        self._ip = parse(rules.ip)
        self._auth = parse(rules.auth)
        self._webhook = parse(rules.webhook)

    def _buckets(self, scope: Scope) -> list[tuple[RateLimitItem, str, str]]:
        path: str = scope.get("path", "")
        client = scope.get("client")
        ip = client[0] if client else "unknown"
        if path.startswith("/v1/auth/"):
            return [(self._auth, "auth", ip)]
        buckets = [(self._ip, "ip", ip)]
        if path.startswith("/v1/webhooks/"):
            trigger = path[len("/v1/webhooks/") :].split("/", 1)[0][:64]
            buckets.append((self._webhook, "webhook", trigger))
            return buckets
        credential = _credential(scope)
        if credential is not None:
            digest = hashlib.sha256(credential).hexdigest()[:32]
            buckets.append((self._credential, "credential", digest))
        return buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            verdict = await self._check(self._buckets(scope))
        except Exception:  # the storage is down: let the request through, say so
            logger.warning("rate limit storage unavailable; request not limited", exc_info=True)
            await self.app(scope, receive, send)
            return
        allowed, limit, remaining, reset = verdict
        headers = {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset),
        }
        if not allowed:
            await self._refuse(scope, send, headers, reset)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                for name, value in headers.items():
                    response_headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _check(
        self, buckets: list[tuple[RateLimitItem, str, str]]
    ) -> tuple[bool, int, int, int]:
        """Hit every bucket until one refuses; the tightest bucket's numbers."""
        now = time.time()
        tightest: tuple[bool, int, int, int] | None = None
        for item, namespace, key in buckets:
            allowed = await self._limiter.hit(item, namespace, key)
            stats = await self._limiter.get_window_stats(item, namespace, key)
            reset = max(1, min(item.get_expiry(), math.ceil(stats.reset_time - now)))
            verdict = (allowed, item.amount, stats.remaining, reset)
            if not allowed:
                return verdict
            if tightest is None or stats.remaining < tightest[2]:
                tightest = verdict
        assert tightest is not None
        return tightest

    @staticmethod
    async def _refuse(scope: Scope, send: Send, headers: dict[str, str], reset: int) -> None:
        message = f"Too many requests; retry in {reset} s."
        body = problem_bytes(429, message, instance=scope.get("path"))
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(reset).encode()),
                    *((k.lower().encode(), v.encode()) for k, v in headers.items()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _credential(scope: Scope) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            return bytes(value)
    query: bytes = scope.get("query_string", b"")
    if b"ticket=" in query:
        return query
    return None
