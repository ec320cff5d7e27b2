"""The one way a run starts, whatever its origin (manual, schedule, webhook, handoff).

``queue_run`` works inside the caller's unit of work: it resolves the version to run (the
member's active version, or its draft for a dry run), checks the input against that version's
input schema, inserts the queued run with its first event and records the ``run.changed``
signal (a run a trigger started is announced with ``trigger.fired`` first). Nothing is written
when a check fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.budgets import refuse_new_run
from domain.kernel.records import evolve
from domain.kernel.signals import Signal
from domain.kernel.trace_context import queued_trace_context
from domain.members import compile_definition, input_problems, nul_pointer, runnable
from domain.runs.errors import InputSchemaMismatch, MemberArchived, NothingToRun
from domain.runs.model import Run, RunOrigin
from domain.runs.repository import RunsTx


@dataclass(frozen=True)
class RunRequest:
    """What to run, for whom, and why."""

    member_id: str
    input: dict[str, Any] = field(hash=False)
    origin: RunOrigin
    #: Who the run is ``created_by``: a subject, ``trigger:<id>`` or ``run:<id>``.
    created_by: str
    dry_run: bool = False
    #: The run whose success handed off to this one (``origin=handoff``).
    parent: Run | None = None
    #: The trigger that fired this run (``origin=schedule`` or ``webhook``).
    trigger_id: str | None = None


def queue_run(tx: RunsTx, workspace_id: str, request: RunRequest, now: datetime) -> Run:
    """Queue a run of the member's version to run, inside ``tx``; return it.

    :raises NothingToRun: no published version (no draft, for a dry run).
    :raises MemberArchived: the member is archived.
    :raises InputSchemaMismatch: the input breaks the version's input schema.
    :raises BudgetExceeded: a ``block`` budget covering the member has reached its limit.
    """
    found = runnable(tx, workspace_id, request.member_id, dry_run=request.dry_run)
    if found is None:
        member_row = tx.members.get_member(workspace_id, request.member_id)
        if member_row is not None and member_row.archived:
            raise MemberArchived(request.member_id)
        raise NothingToRun(request.member_id, request.dry_run)
    member, version = found
    if member.archived:
        raise MemberArchived(member.id)
    if request.dry_run:
        program = compile_definition(version.definition).program
    else:
        assert version.program is not None
        program = version.program
    check_input(program, request.input)
    refuse_new_run(tx, workspace_id, member.crew_id, member.id, now)
    run = Run.queued(
        workspace_id=workspace_id,
        member_id=member.id,
        crew_id=member.crew_id,
        version_id=version.id,
        version_number=version.number,
        program=program,
        run_input=request.input,
        origin=request.origin,
        dry_run=request.dry_run,
        created_by=request.created_by,
        parent=request.parent,
        now=now,
    )
    trace_context = queued_trace_context(run.id)
    if trace_context is not None:  # copying a run is not free: only when traced
        run = evolve(run, trace_context=trace_context)
    queued: dict[str, Any] = {"origin": request.origin.value}
    if request.parent is not None:
        queued["parent_run_id"] = request.parent.id  # a child is never a dry run
    else:
        queued["dry_run"] = request.dry_run
    if request.trigger_id is not None:
        queued["trigger_id"] = request.trigger_id
    run = tx.runs.add(run, [("run.queued", queued)], now)
    if request.trigger_id is not None:
        fired = {"trigger_id": request.trigger_id, "run_id": run.id, "source": run.origin.value}
        tx.record(Signal(workspace_id, "trigger.fired", fired))
    tx.record(run.changed_signal())
    return run


def check_input(program: dict[str, Any], run_input: dict[str, Any]) -> None:
    """Check a run input against the program's input schema (the one place inputs are checked).

    :raises InputSchemaMismatch: a NUL character anywhere (PostgreSQL cannot store it,
        whatever the schema says), or the input breaks the schema.
    """
    nul_at = nul_pointer(run_input)
    if nul_at is not None:
        raise InputSchemaMismatch(
            [
                {
                    "pointer": "/input" + nul_at,
                    "reason": "nul",
                    "message": "Text may not contain NUL characters (U+0000).",
                }
            ]
        )
    schema = program.get("input_schema")
    if isinstance(schema, dict):
        problems = input_problems(schema, run_input)
        if problems:
            raise InputSchemaMismatch(problems)
