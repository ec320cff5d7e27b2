"""The unit of work as the use cases see it: one transaction, committed once.

A use case opens ``store(write=...)`` as a context manager, works through the repositories the
unit of work exposes and calls ``tx.commit()`` once at the end. Leaving the block without
committing (early return or an exception) rolls everything back. Repositories never commit.

Each capability declares the repositories its use cases need as a protocol extending
``UnitOfWork`` (``MembersTx``, ``RunsTx``...); the SQL unit of work in ``domain.persistence``
satisfies all of them, and a test's in-memory fake only the ones it exercises.

A use case records what it changed with ``tx.record(signal)``: the signal is written to the
workspace event log in the same transaction and published once it has committed.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

from domain.kernel.signals import Signal


class UnitOfWork(Protocol):
    def record(self, signal: Signal) -> None:
        """Store ``signal`` with this transaction's commit; publish it after."""
        ...

    def commit(self) -> None: ...


Tx = TypeVar("Tx", covariant=True)


class Store(Protocol[Tx]):
    """Opens units of work. ``write=True`` for a use case that changes something."""

    def __call__(self, *, write: bool = False) -> AbstractContextManager[Tx]: ...
