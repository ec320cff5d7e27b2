"""The member and the version a run executes, read with one statement (ADR 0062)."""

from __future__ import annotations

import time

from sqlalchemy import event

from domain.database import Database
from domain.kernel import Actor
from domain.members import Definition, EffectClass, ToolSpec
from domain.use_cases import UseCases

NOTES = Definition(objective="Keep notes.", tools=(ToolSpec("notes_write", EffectClass.INTERNAL),))


def test_the_active_version_or_for_a_dry_run_the_draft_in_one_statement(
    database: Database, use_cases: UseCases, actor: Actor
) -> None:
    members = use_cases.members
    crew = members.create_crew(actor, f"To run {time.monotonic_ns()}")
    member = members.create_member(
        actor, crew_id=crew.id, name=f"Runner {time.monotonic_ns()}", definition=NOTES
    )
    with database(write=True) as tx:  # only a draft: nothing to run, a draft to dry-run
        found = tx.members.get_member_to_run(actor.workspace_id, member.id, dry_run=False)
        assert found is not None and found[0].id == member.id and found[1] is None
        found = tx.members.get_member_to_run(actor.workspace_id, member.id, dry_run=True)
        assert found is not None and found[1] is not None and found[1].number == 1
    members.publish_member(actor, member.id)  # version 1 active, no draft until an edit
    seen: list[str] = []
    with database(write=True) as tx:

        def capture(_conn, _cursor, statement, _parameters, _context, _many) -> None:
            seen.append(statement)

        # On this unit of work's connection only, and removed: the engine is the session's.
        event.listen(tx.connection, "before_cursor_execute", capture)
        active = tx.members.get_member_to_run(actor.workspace_id, member.id, dry_run=False)
        draft = tx.members.get_member_to_run(actor.workspace_id, member.id, dry_run=True)
        unknown = tx.members.get_member_to_run(actor.workspace_id, "mem_unknown", dry_run=False)
        elsewhere = tx.members.get_member_to_run("wsp_elsewhere", member.id, dry_run=False)
        event.remove(tx.connection, "before_cursor_execute", capture)
    assert active is not None and active[1] is not None
    assert (active[1].number, active[1].program is not None) == (1, True)
    assert active[0].active_version_number == 1
    assert draft is not None and draft[0].draft_version_number is None and draft[1] is None
    assert active[1].member_id == member.id
    assert unknown is None and elsewhere is None
    assert len(seen) == 4  # one per call
