"""The delivery port of subscriptions: one POST, no redirects, a total deadline, a bounded read,
and no POST to a name that resolves to a loopback, private or link-local address (ADR 0046)."""

from __future__ import annotations

import ipaddress
import socket
import time
from urllib.parse import urlsplit

import httpx

from domain.subscriptions import DeliveryError, DeliveryResponse

#: Bytes of an answer read at most (the rest is not read).
MAX_ANSWER = 64 * 1024


class HttpDelivery:
    """``DeliveryPort`` over httpx. ``timeout_seconds`` bounds the whole POST (connect, send
    and every read), so a receiver trickling its answer is cut off at the deadline.

    A host name (IP literals are checked by the domain) is resolved first: when any of its
    addresses is not global, nothing is sent unless the host is in ``allowed_hosts``
    (``SUBSCRIPTION_ALLOWED_HOSTS``: ``host`` or ``host:port``)."""

    def __init__(self, allowed_hosts: tuple[str, ...] = ()) -> None:
        self._allowed = {entry.lower() for entry in allowed_hosts}

    def post(
        self, url: str, headers: dict[str, str], body: bytes, timeout_seconds: float
    ) -> DeliveryResponse:
        deadline = time.monotonic() + timeout_seconds
        self._refuse_private_names(url)
        try:
            with (
                httpx.Client(timeout=timeout_seconds, follow_redirects=False) as client,
                client.stream("POST", url, content=body, headers=headers) as response,
            ):
                timeouts = response.request.extensions.get("timeout")
                read = 0
                for chunk in response.iter_bytes():
                    read += len(chunk)
                    left = deadline - time.monotonic()
                    if read >= MAX_ANSWER or left <= 0:
                        break
                    if isinstance(timeouts, dict):
                        timeouts["read"] = left
        except httpx.TimeoutException:
            raise DeliveryError(f"no answer within {timeout_seconds:g}s") from None
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            raise DeliveryError(f"POST failed: {type(exc).__name__}") from None
        return DeliveryResponse(response.status_code, _retry_after(response.headers))

    def _refuse_private_names(self, url: str) -> None:
        """:raises DeliveryError: the URL's host name resolves to a non-global address."""
        try:
            parts = urlsplit(url)
            host, port = (parts.hostname or "").lower(), parts.port
        except ValueError:
            raise DeliveryError("the target URL is malformed") from None
        if not host or host in self._allowed or f"{host}:{port}" in self._allowed:
            return
        try:
            ipaddress.ip_address(host)
            return  # a literal: the domain's check already applies
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            raise DeliveryError(f"the name '{host[:100]}' does not resolve") from None
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if not address.is_global:
                raise DeliveryError(
                    f"the name '{host[:100]}' resolves to a non-public address ({address}); "
                    "list it in SUBSCRIPTION_ALLOWED_HOSTS to allow it"
                )


def _retry_after(headers: httpx.Headers) -> float | None:
    """``Retry-After`` in seconds (an HTTP date is not honoured: the backoff applies)."""
    value = headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(min(int(value), 86_400))
    return None
