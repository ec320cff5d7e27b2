"""The delivery port of subscriptions: one POST, no redirects, a total deadline, a bounded read."""

from __future__ import annotations

import time

import httpx

from domain.subscriptions import DeliveryError, DeliveryResponse

#: Bytes of an answer read at most (the rest is not read).
MAX_ANSWER = 64 * 1024


class HttpDelivery:
    """``DeliveryPort`` over httpx. ``timeout_seconds`` bounds the whole POST (connect, send
    and every read), so a receiver trickling its answer is cut off at the deadline."""

    def post(
        self, url: str, headers: dict[str, str], body: bytes, timeout_seconds: float
    ) -> DeliveryResponse:
        deadline = time.monotonic() + timeout_seconds
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


def _retry_after(headers: httpx.Headers) -> float | None:
    """``Retry-After`` in seconds (an HTTP date is not honoured: the backoff applies)."""
    value = headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(min(int(value), 86_400))
    return None
