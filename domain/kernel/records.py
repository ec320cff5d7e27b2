"""Copying frozen records with some fields changed, cheaply.

``dataclasses.replace`` builds the copy through ``__init__``, which on a frozen dataclass sets
every field with ``object.__setattr__``: a run (30 fields) is copied several times per step,
and each copy cost more than some of the step's statements (ADR 0063).
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


@cache
def _copyable(cls: type) -> frozenset[str] | None:
    """The field names of ``cls`` if a copy of its ``__dict__`` is what ``replace`` would
    build (a dataclass with a ``__dict__``, no ``__post_init__``, every field set by
    ``__init__``), else None."""
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__"):
        return None
    if "__slots__" in cls.__dict__:
        return None
    fields = dataclasses.fields(cls)
    if not all(f.init for f in fields):
        return None
    return frozenset(f.name for f in fields)


def evolve(record: T, **changes: Any) -> T:
    """``dataclasses.replace(record, **changes)``, without running ``__init__`` where that
    gives the same record (see ``_copyable``; otherwise ``replace`` itself is called).

    :raises TypeError: a name in ``changes`` is not a field, as ``replace`` does.
    """
    cls: type = type(record)
    names = _copyable(cls)
    if names is None:
        return dataclasses.replace(record, **changes)  # type: ignore[type-var]
    unknown = changes.keys() - names
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")
    copy: T = object.__new__(cls)
    # A frozen dataclass refuses attribute assignment, not its instance dictionary.
    state = copy.__dict__
    state.update(record.__dict__)
    state.update(changes)
    return copy
