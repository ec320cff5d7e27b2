"""Optimistic concurrency: a use case that changes a resource may be given a precondition on
the resource's current state, checked inside its unit of work (after the row lock), so two
writers that read the same state cannot both succeed.

The domain does not know how a client names a state (the API uses entity tags over the
resource's representation); it only asks the precondition whether the current state is the
one the caller saw. ``None`` means there is no current state (nothing to edit yet).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from domain.kernel.errors import PreconditionFailed

T = TypeVar("T")

#: Whether the current state (None: there is none) is the one the caller based its change on.
Precondition = Callable[[T | None], bool]


def check(precondition: Precondition[T] | None, current: T | None) -> None:
    """Raise unless ``precondition`` holds for ``current`` (no precondition always holds).

    :raises PreconditionFailed: the resource changed since the caller read it.
    """
    if precondition is not None and not precondition(current):
        raise PreconditionFailed()
