"""Conditional draft edits from several threads holding the same state: exactly one wins (the
precondition is checked under the member's row lock, in the edit's transaction)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from domain.kernel import PreconditionFailed
from tests.integration.conftest import DEFINITION

THREADS = 6


def test_of_several_edits_based_on_the_same_draft_exactly_one_succeeds(use_cases, actor):
    members = use_cases.members
    crew = members.create_crew(actor, "Editing crew")
    member = members.create_member(actor, crew_id=crew.id, name="Edited", definition=DEFINITION)
    seen = members.get_member_draft(actor, member.id)
    start = threading.Barrier(THREADS)

    def edit(index: int) -> object:
        definition = replace(DEFINITION, objective=f"Edit {index}")
        start.wait(timeout=10)
        try:
            return members.replace_member_draft(
                actor, member.id, definition, if_match=lambda current: current == seen
            )
        except PreconditionFailed as exc:
            return exc

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = [f.result(timeout=60) for f in [pool.submit(edit, i) for i in range(THREADS)]]

    won = [o for o in outcomes if not isinstance(o, PreconditionFailed)]
    assert len(won) == 1
    assert sum(isinstance(o, PreconditionFailed) for o in outcomes) == THREADS - 1
    current = members.get_member_draft(actor, member.id)
    assert current.definition == won[0].definition  # type: ignore[attr-defined]
