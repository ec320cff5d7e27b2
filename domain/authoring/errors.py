"""Errors of authoring: an unusable model answer, two turns of one session at once."""

from __future__ import annotations

from domain.kernel.errors import Conflict, DomainError


class ModelUnusable(DomainError):
    """The configured model answered something unusable, even after a retry."""

    slug = "model-unusable"


class ConcurrentTurn(Conflict):
    """Another turn of the same authoring session was saved while this one was derived."""

    slug = "concurrent-turn"

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"Another turn of session '{session_id}' was saved meanwhile; send the message again."
        )
