"""Keyset pagination: a page of rows and the cursor of the next one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    limit: int = 50
    cursor: str | None = None
    #: Also count every row of the list under the same filters (``Page.total``).
    include_total: bool = False


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next one (``None`` on the last page), and the
    exact count of the whole list when it was asked for."""

    items: list[T]
    next_cursor: str | None = None
    total: int | None = None


def page_of(
    rows: list[T], page: PageRequest, cursor_of: Callable[[T], str], total: int | None = None
) -> Page[T]:
    """The page of ``rows`` a repository fetched with ``page.limit + 1`` rows.

    The extra row only says that another page exists; the cursor is the last kept row's key.
    """
    if len(rows) > page.limit:
        kept = rows[: page.limit]
        return Page(kept, cursor_of(kept[-1]), total)
    return Page(rows, None, total)
