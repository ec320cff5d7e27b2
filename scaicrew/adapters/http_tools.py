"""The HTTP port of the built-in ``http_get``/``http_post`` tools: allow-list, a total deadline
per call, a bounded read and the call's ``Idempotency-Key``."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from opentelemetry.propagate import inject

from domain.tools import ToolError

#: Bytes of a response body read at most (the rest is not read: the body is truncated).
MAX_BODY = 64 * 1024


class AllowListedHttp:
    """HTTP GET/POST to hosts on an allow-list only (``host`` or ``host:port`` entries).

    ``timeout_seconds`` bounds the whole call (connect, send, and reading the answer), not each
    read: a peer that trickles its answer is cut off at the deadline.
    """

    def __init__(self, allowlist: tuple[str, ...], timeout_seconds: float) -> None:
        self._allowed = {entry.lower() for entry in allowlist}
        self._timeout = timeout_seconds

    def _check(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            port = parts.port  # raises ValueError on "h:8123:8124" or a port out of range
        except ValueError:
            raise ToolError("The URL is malformed.") from None
        if parts.scheme not in ("http", "https") or not host:
            raise ToolError("The URL must be an absolute http(s) URL.")
        if host not in self._allowed and f"{host}:{port}" not in self._allowed:
            raise ToolError(f"Host '{host}' is not on the tool allow-list.")

    def _call(
        self, method: str, url: str, body: Any = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        self._check(url)
        headers = {} if idempotency_key is None else {"Idempotency-Key": idempotency_key}
        inject(headers)  # W3C traceparent when a trace is active; nothing otherwise
        deadline = time.monotonic() + self._timeout
        late = ToolError(f"{method} {url[:200]} timed out after {self._timeout:g}s.")
        try:
            with (
                httpx.Client(timeout=self._timeout, follow_redirects=False) as client,
                client.stream(
                    method, url, json=body if method == "POST" else None, headers=headers
                ) as response,
            ):
                # Each read may wait only for what is left of the call's deadline (httpcore
                # takes the read timeout from the request's extensions at every read).
                timeouts = response.request.extensions.get("timeout")
                content = bytearray()
                chunks = response.iter_bytes()
                while len(content) < MAX_BODY:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise late
                    if isinstance(timeouts, dict):
                        timeouts["read"] = left
                    chunk = next(chunks, None)
                    if chunk is None:
                        break
                    content += chunk
        except httpx.TimeoutException:
            raise late from None
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            raise ToolError(f"{method} {url[:200]} failed: {type(exc).__name__}.") from None
        if response.status_code >= 400:
            raise ToolError(f"{method} {url[:200]} answered HTTP {response.status_code}.")
        text = bytes(content[:MAX_BODY]).decode(response.encoding or "utf-8", errors="replace")
        result: dict[str, Any] = {"status": response.status_code, "body": text}
        if response.headers.get("content-type", "").startswith("application/json"):
            try:
                result["json"] = json.loads(text)
            except ValueError:
                pass
        return result

    def get(self, url: str, *, idempotency_key: str | None = None) -> dict[str, Any]:
        return self._call("GET", url, idempotency_key=idempotency_key)

    def post(self, url: str, body: Any, *, idempotency_key: str | None = None) -> dict[str, Any]:
        return self._call("POST", url, body, idempotency_key)
