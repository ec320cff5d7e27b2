"""What delivering needs from the outside world: one bounded HTTP POST."""

from __future__ import annotations

from typing import Protocol

from domain.subscriptions.model import DeliveryResponse


class DeliveryError(Exception):
    """The POST did not get an answer: connection refused, timeout, TLS, DNS, too long."""


class DeliveryPort(Protocol):
    def post(
        self, url: str, headers: dict[str, str], body: bytes, timeout_seconds: float
    ) -> DeliveryResponse:
        """POST ``body`` without following redirects, reading at most a bounded answer.

        :raises DeliveryError: no answer within ``timeout_seconds`` (in all).
        """
        ...
