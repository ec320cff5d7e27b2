"""Stores for fault injection: a real database whose units of work are altered on entry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.database import Database


class PatchedStore:
    """A store over ``database`` (what use cases and workers take) whose every unit of work,
    once entered, is handed to ``patch``, which may replace its repositories' methods: a
    crash or a concurrent commit at an exact moment, with the real SQL underneath."""

    def __init__(self, database: Database, patch: Callable[[Any], None]) -> None:
        self._database = database
        self._patch = patch

    def __call__(self, *, write: bool = False) -> Any:
        return _Patched(self._database(write=write), self._patch)


class _Patched:
    def __init__(self, inner: Any, patch: Callable[[Any], None]) -> None:
        self._inner, self._patch = inner, patch

    def __enter__(self) -> Any:
        tx = self._inner.__enter__()
        self._patch(tx)
        return tx

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)
