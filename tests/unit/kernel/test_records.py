"""``evolve``: what ``dataclasses.replace`` gives, cheaper where it can be."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from domain.kernel.records import evolve
from domain.runs import RunStatus
from tests.unit.runs.test_state_machine import a_run


@dataclass(frozen=True)
class Plain:
    a: int
    b: tuple[str, ...] = ()
    c: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Checked:
    a: int

    def __post_init__(self) -> None:
        if self.a < 0:
            raise ValueError("negative")


@dataclass(frozen=True, slots=True)
class Slotted:
    a: int
    b: int = 0


def test_a_copy_equals_what_replace_gives_and_leaves_the_original_alone():
    original = Plain(1, ("x",), {"k": 1})
    copy = evolve(original, a=2, b=("y",))
    assert copy == dataclasses.replace(original, a=2, b=("y",)) == Plain(2, ("y",), {"k": 1})
    assert original == Plain(1, ("x",), {"k": 1})
    assert type(copy) is Plain
    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.a = 3  # type: ignore[misc]


def test_an_unknown_field_is_refused_as_replace_refuses_it():
    with pytest.raises(TypeError, match="no field 'z'"):
        evolve(Plain(1), z=1)


def test_a_post_init_still_runs():
    with pytest.raises(ValueError, match="negative"):
        evolve(Checked(1), a=-1)


def test_slotted_records_are_copied_by_replace():
    assert evolve(Slotted(1, 2), b=3) == Slotted(1, 3)


def test_a_run_copy_is_a_run_with_the_change():
    run = a_run(RunStatus.RUNNING)
    copy = evolve(run, next_seq=run.next_seq + 4)
    assert copy == dataclasses.replace(run, next_seq=run.next_seq + 4)
    assert copy.changed_signal() == run.changed_signal()
