"""The HTTP port of the built-in ``http_get``/``http_post`` tools: allow-list and timeout."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from domain.tools import ToolError

_MAX_BODY = 64 * 1024


class AllowListedHttp:
    """HTTP GET/POST to hosts on an allow-list only (``host`` or ``host:port`` entries)."""

    def __init__(self, allowlist: tuple[str, ...], timeout_seconds: float) -> None:
        self._allowed = {entry.lower() for entry in allowlist}
        self._timeout = timeout_seconds

    def _check(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ToolError("The URL must be an absolute http(s) URL.")
        host = parts.hostname.lower()
        port = parts.port
        if host not in self._allowed and f"{host}:{port}" not in self._allowed:
            raise ToolError(f"Host '{host}' is not on the tool allow-list.")
        return url

    def _call(self, method: str, url: str, body: Any = None) -> dict[str, Any]:
        self._check(url)
        try:
            with httpx.Client(timeout=self._timeout, follow_redirects=False) as client:
                response = client.request(method, url, json=body if method == "POST" else None)
        except httpx.TimeoutException:
            raise ToolError(f"{method} {url[:200]} timed out after {self._timeout:g}s.") from None
        except httpx.HTTPError as exc:
            raise ToolError(f"{method} {url[:200]} failed: {type(exc).__name__}.") from None
        text = response.text[:_MAX_BODY]
        if response.status_code >= 400:
            raise ToolError(f"{method} {url[:200]} answered HTTP {response.status_code}.")
        result: dict[str, Any] = {"status": response.status_code, "body": text}
        if response.headers.get("content-type", "").startswith("application/json"):
            try:
                result["json"] = response.json()
            except ValueError:
                pass
        return result

    def get(self, url: str) -> dict[str, Any]:
        return self._call("GET", url)

    def post(self, url: str, body: Any) -> dict[str, Any]:
        return self._call("POST", url, body)
