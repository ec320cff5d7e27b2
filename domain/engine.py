"""The dispatcher: claims queued runs and drives their compiled program to an end.

A run moves ``queued -> running -> (waiting_approval -> queued -> running)* -> succeeded |
failed``. Each step (a model reply, a tool result, a decision) is committed before the next
one starts, so a run whose worker dies resumes from its last committed step once its lease
expires (a live worker keeps its lease alive while a model or tool call is in flight). Model
calls and tools run outside any transaction. Tools may therefore run twice if a worker dies
between running one and recording its result (at-least-once).

Claiming is safe across processes: on PostgreSQL ``FOR UPDATE SKIP LOCKED`` gives each claimer a
different run, on SQLite the writing transaction holds the database lock.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from domain import tools as tool_catalog
from domain.ids import new_id
from domain.input_schema import input_problems, nul_pointer
from domain.model import (
    Approval,
    ApprovalStatus,
    EffectClass,
    Run,
    RunOrigin,
    RunStatus,
)
from domain.ports import ModelError, ModelReply, ToolError
from domain.runtime import Runtime
from domain.signals import Signal, run_changed
from domain.unit_of_work import UnitOfWork

logger = logging.getLogger("scaicrew.engine")

_RESULT_LIMIT = 4000  # characters of a tool result kept in events and the conversation


def _now() -> datetime:
    return datetime.now(UTC)


def append_events(
    tx: UnitOfWork, run: Run, events: list[tuple[str, dict[str, Any]]], now: datetime
) -> int:
    """Append ``events`` to the run's timeline; return the run's next free ``seq``."""
    seq = run.next_seq
    for event_type, data in events:
        tx.runs.append_event(run.id, seq, run.workspace_id, event_type, data, now)
        seq += 1
    return seq


def initial_state(program: dict[str, Any], run_input: dict[str, Any]) -> dict[str, Any]:
    """The conversation a run starts from: the compiled system prompt and the input."""
    tools = [
        tool_catalog.tool_schema(str(t["name"]), str(t.get("description", "")))
        for t in program.get("tools", [])
    ]
    return {
        "program": program,
        "tools": tools,
        "messages": [
            {"role": "system", "content": program["system_prompt"]},
            {"role": "user", "content": json.dumps(run_input, sort_keys=True)},
        ],
        "queue": [],
        "approved": [],
        "steps": 0,
    }


class Dispatcher:
    """Claims and executes runs; one instance per worker thread or process."""

    def __init__(self, runtime: Runtime, worker_id: str) -> None:
        self.rt = runtime
        self.worker_id = worker_id

    # -- claiming ------------------------------------------------------------------------

    def run_next(self) -> bool:
        """Claim one run and drive it as far as it goes; False when nothing was claimable."""
        run_id = self.claim()
        if run_id is None:
            return False
        try:
            self.execute(run_id)
        except Exception:  # never leave a run "running" because of our own bug
            logger.exception("run %s crashed the engine", run_id)
            self._fail(run_id, "InternalError", "The run failed because of an internal error.")
        return True

    def claim(self) -> str | None:
        """Claim the next claimable run in one transaction; its id, or None.

        A run recovered more than ``max_attempts`` times fails with ``WorkerLost`` instead.
        """
        now = _now()
        with self.rt.uow(write=True) as tx:
            run_id = tx.runs.claimable_run_id(now)
            if run_id is None:
                return None
            run = tx.runs.get_run(None, run_id)
            assert run is not None
            recovering = run.status is RunStatus.RUNNING
            if recovering and run.attempts >= self.rt.settings.max_attempts:
                message = f"The run's worker stopped {run.attempts} times."
                _record_failure(tx, run, "WorkerLost", message, now)
                claimed, status = None, RunStatus.FAILED
            else:
                if recovering:
                    event = "run.recovered"
                else:
                    event = "run.resumed" if run.started_at is not None else "run.started"
                seq = append_events(
                    tx, run, [(event, {"worker": self.worker_id, "attempt": run.attempts + 1})], now
                )
                tx.runs.update_run(
                    run.id,
                    {
                        "status": RunStatus.RUNNING.value,
                        "claimed_by": self.worker_id,
                        "lease_expires_at": now + timedelta(seconds=self.rt.settings.lease_seconds),
                        "attempts": run.attempts + (0 if event == "run.resumed" else 1),
                        "started_at": run.started_at or now,
                        "updated_at": now,
                        "next_seq": seq,
                    },
                )
                claimed, status = run_id, RunStatus.RUNNING
            tx.record(run_changed(run.workspace_id, run.id, status.value))
            tx.commit()
        return claimed

    # -- execution -----------------------------------------------------------------------

    def execute(self, run_id: str) -> None:
        for _ in range(self.rt.settings.max_steps):
            run = self._renew_lease(run_id)
            if run is None:
                return  # no longer ours: decided, failed, or reclaimed after our lease ran out
            state = run.state
            if state["queue"]:
                if not self._handle_call(run, state["queue"][0]):
                    return
                continue
            try:
                with self._heartbeat(run.id):
                    reply = self.rt.model.complete(state["messages"], state["tools"])
            except ModelError as exc:
                self._fail(run.id, "ModelError", str(exc)[:1000])
                return
            if not self._record_reply(run, reply):
                return
        self._fail(run_id, "StepLimit", "The run exceeded its step limit.")

    @contextmanager
    def _heartbeat(self, run_id: str) -> Iterator[None]:
        """Keep renewing the lease while a model or tool call is in flight: a call may outlast
        the lease, and a live worker must not lose its run to another (which would repeat the
        call). A worker that dies stops beating, so its run is still recovered."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.rt.settings.lease_seconds / 3):
                try:
                    if self._renew_lease(run_id) is None:
                        return  # no longer ours
                except Exception:  # the next beat (or the next step) tries again
                    logger.warning("could not renew the lease of run %s", run_id, exc_info=True)

        thread = threading.Thread(target=beat, name=f"lease-{run_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _renew_lease(self, run_id: str) -> Run | None:
        now = _now()
        with self.rt.uow(write=True) as tx:
            run = tx.runs.get_run(None, run_id)
            if (
                run is None
                or run.status is not RunStatus.RUNNING
                or run.claimed_by != self.worker_id
            ):
                return None
            lease = now + timedelta(seconds=self.rt.settings.lease_seconds)
            tx.runs.update_run(run_id, {"lease_expires_at": lease})
            tx.commit()
        return run

    def _still_ours(self, tx: UnitOfWork, run: Run) -> bool:
        """Whether ``run`` is unchanged since we read it: still running, claimed by us, no new
        events. Read inside the step's writing transaction (row lock on PostgreSQL, database
        lock on SQLite), so a worker whose lease ran out cannot write over the one that took
        the run over."""
        current = tx.runs.get_run(None, run.id)
        return (
            current is not None
            and current.status is RunStatus.RUNNING
            and current.claimed_by == self.worker_id
            and current.next_seq == run.next_seq
        )

    def _record_reply(self, run: Run, reply: ModelReply) -> bool:
        now = _now()
        state = dict(run.state)
        declared = {str(t["name"]) for t in state["program"].get("tools", [])}
        unknown = [c.name for c in reply.tool_calls if c.name not in declared]
        if unknown:
            self._fail(
                run.id,
                "UnknownTool",
                f"The model called '{unknown[0][:64]}', which this member does not declare.",
            )
            return False
        if reply.output is None and not reply.tool_calls:
            self._fail(run.id, "ModelError", "The model answered neither tool calls nor output.")
            return False
        answer = {"output": reply.output, "calls": [[c.id, c.arguments] for c in reply.tool_calls]}
        if nul_pointer(answer) is not None:  # PostgreSQL cannot store it: fail readably
            self._fail(run.id, "ModelError", "The model answered text with a NUL character.")
            return False
        usage = reply.usage
        cost = round(
            (usage.tokens_in + usage.tokens_out) / 1000 * self.rt.settings.cost_units_per_1k_tokens,
            6,
        )
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "model.replied",
                {
                    "model": self.rt.model.name,
                    "tool_calls": [c.name for c in reply.tool_calls],
                    "tokens_in": usage.tokens_in,
                    "tokens_out": usage.tokens_out,
                },
            )
        ]
        values: dict[str, Any] = {
            "tokens_in": run.tokens_in + usage.tokens_in,
            "tokens_out": run.tokens_out + usage.tokens_out,
            "cost_units": round(run.cost_units + cost, 6),
            "updated_at": now,
        }
        with self.rt.uow(write=True) as tx:
            if not self._still_ours(tx, run):
                return False
            tx.runs.add_cost(
                run.workspace_id,
                run.id,
                run.member_id,
                self.rt.model.name,
                usage.tokens_in,
                usage.tokens_out,
                cost,
                now,
            )
            if reply.tool_calls:
                calls = [
                    {"id": c.id, "name": c.name, "arguments": c.arguments} for c in reply.tool_calls
                ]
                state["messages"] = [
                    *state["messages"],
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": c["id"],
                                "type": "function",
                                "function": {
                                    "name": c["name"],
                                    "arguments": json.dumps(c["arguments"], sort_keys=True),
                                },
                            }
                            for c in calls
                        ],
                    },
                ]
                state["queue"] = calls
                state["steps"] = int(state.get("steps", 0)) + 1
                values["state"] = state
            else:
                assert reply.output is not None
                events.append(("run.succeeded", {"output_keys": sorted(reply.output)[:50]}))
                values.update(
                    status=RunStatus.SUCCEEDED.value,
                    output=reply.output,
                    finished_at=now,
                    claimed_by=None,
                    lease_expires_at=None,
                )
                tx.record(run_changed(run.workspace_id, run.id, RunStatus.SUCCEEDED.value))
                child = None if run.dry_run else self._handoff(tx, run, reply.output, now, events)
                if child is not None:
                    tx.record(run_changed(child.workspace_id, child.id, "queued"))
            values["next_seq"] = append_events(tx, run, events, now)
            if tx.runs.update_run(run.id, values, expect_status="running") != 1:
                return False
            tx.commit()
        return bool(reply.tool_calls)

    def _handoff(
        self,
        tx: UnitOfWork,
        run: Run,
        output: dict[str, Any],
        now: datetime,
        events: list[tuple[str, dict[str, Any]]],
    ) -> Run | None:
        for handoff in tx.repo.get_handoffs(run.workspace_id, run.member_id):
            if handoff.condition is not None and not handoff.condition.matches(output):
                continue
            target_id = handoff.target_member_id
            if run.depth + 1 > self.rt.settings.handoff_max_depth:
                events.append(
                    ("handoff.skipped", {"target_member_id": target_id, "reason": "depth_cap"})
                )
                return None
            target = tx.repo.get_member(run.workspace_id, target_id)
            if target is None or target.active_version_number is None:
                events.append(
                    ("handoff.skipped", {"target_member_id": target_id, "reason": "not_published"})
                )
                return None
            version = tx.repo.get_version(run.workspace_id, target_id, target.active_version_number)
            assert version is not None and version.program is not None
            schema = version.program.get("input_schema")
            problems = input_problems(schema, output) if isinstance(schema, dict) else []
            if problems:  # the child would run with an input its member does not accept
                events.append(
                    (
                        "handoff.skipped",
                        {
                            "target_member_id": target_id,
                            "reason": "input_schema_mismatch",
                            "errors": problems[:5],
                        },
                    )
                )
                return None
            child = new_run(
                workspace_id=run.workspace_id,
                member_id=target.id,
                crew_id=target.crew_id,
                version_id=version.id,
                version_number=version.number,
                program=version.program,
                run_input=output,
                origin=RunOrigin.HANDOFF,
                dry_run=False,
                created_by=f"run:{run.id}",
                parent_run_id=run.id,
                depth=run.depth + 1,
                now=now,
            )
            tx.runs.add_run(child)
            next_seq = append_events(
                tx, child, [("run.queued", {"origin": "handoff", "parent_run_id": run.id})], now
            )
            tx.runs.update_run(child.id, {"next_seq": next_seq})
            events.append(
                ("handoff.started", {"target_member_id": target.id, "child_run_id": child.id})
            )
            return child
        return None

    def _handle_call(self, run: Run, call: dict[str, Any]) -> bool:
        """Run the queued call at the head of the queue; False when the run must stop."""
        state = run.state
        tool = next(
            (t for t in state["program"].get("tools", []) if t["name"] == call["name"]), None
        )
        assert tool is not None  # checked when the reply was recorded
        approved = call["id"] in state.get("approved", [])
        if tool.get("checkpoint") and not run.dry_run and not approved:
            self._wait_for_approval(run, call, tool)
            return False
        if run.dry_run and tool["effect_class"] != EffectClass.INTERNAL.value:
            result: dict[str, Any] = {
                "dry_run": True,
                "stubbed": call["name"],
                "arguments": call["arguments"],
            }
        else:
            try:
                with self._heartbeat(run.id):
                    result = tool_catalog.execute(call["name"], call["arguments"], self._tools(run))
            except ToolError as exc:
                self._fail(run.id, "ToolFailed", str(exc)[:1000])
                return False
        text = json.dumps(result, sort_keys=True, default=str)[:_RESULT_LIMIT]
        now = _now()
        new_state = dict(state)
        new_state["queue"] = state["queue"][1:]
        if approved:  # an approval covers this one call, even if a later call reuses its id
            remaining = list(state.get("approved", []))
            remaining.remove(call["id"])
            new_state["approved"] = remaining
        new_state["messages"] = [
            *state["messages"],
            {"role": "tool", "tool_call_id": call["id"], "name": call["name"], "content": text},
        ]
        with self.rt.uow(write=True) as tx:
            if not self._still_ours(tx, run):
                return False
            seq = append_events(
                tx,
                run,
                [
                    (
                        "tool.succeeded",
                        {
                            "tool": call["name"],
                            "call_id": call["id"],
                            "dry_run": run.dry_run,
                            "result": text[:1000],
                        },
                    )
                ],
                now,
            )
            changed = tx.runs.update_run(
                run.id,
                {"state": new_state, "next_seq": seq, "updated_at": now},
                expect_status="running",
            )
            if changed != 1:
                return False
            tx.commit()
        return True

    def _wait_for_approval(self, run: Run, call: dict[str, Any], tool: dict[str, Any]) -> None:
        now = _now()
        approval = Approval(
            id=new_id("apr"),
            workspace_id=run.workspace_id,
            run_id=run.id,
            member_id=run.member_id,
            version_id=run.version_id,
            version_number=run.version_number,
            tool=call["name"],
            effect_class=str(tool["effect_class"]),
            arguments=call["arguments"],
            call_id=call["id"],
            status=ApprovalStatus.PENDING,
            reason=None,
            decided_by=None,
            decided_at=None,
            created_at=now,
        )
        with self.rt.uow(write=True) as tx:
            if not self._still_ours(tx, run):
                return
            tx.runs.add_approval(approval)
            seq = append_events(
                tx,
                run,
                [("approval.requested", {"approval_id": approval.id, "tool": call["name"]})],
                now,
            )
            tx.runs.update_run(
                run.id,
                {
                    "status": RunStatus.WAITING_APPROVAL.value,
                    "claimed_by": None,
                    "lease_expires_at": None,
                    "updated_at": now,
                    "next_seq": seq,
                },
                expect_status="running",
            )
            tx.record(run_changed(run.workspace_id, run.id, RunStatus.WAITING_APPROVAL.value))
            tx.record(
                Signal(
                    run.workspace_id,
                    "approval.requested",
                    {"approval_id": approval.id, "run_id": run.id, "tool": call["name"]},
                )
            )
            tx.commit()

    def _fail(self, run_id: str, code: str, message: str) -> None:
        now = _now()
        with self.rt.uow(write=True) as tx:
            run = tx.runs.get_run(None, run_id)
            if (
                run is None
                or run.status is not RunStatus.RUNNING
                or run.claimed_by != self.worker_id
            ):
                return  # finished, or taken over by another worker after our lease ran out
            _record_failure(tx, run, code, message, now)
            tx.record(run_changed(run.workspace_id, run_id, RunStatus.FAILED.value))
            tx.commit()

    def _tools(self, run: Run) -> tool_catalog.ToolContext:
        def read_note(key: str) -> str | None:
            with self.rt.uow() as tx:
                return tx.runs.read_note(run.workspace_id, key)

        def write_note(key: str, value: str) -> None:
            with self.rt.uow(write=True) as tx:
                tx.runs.write_note(run.workspace_id, key, value, _now())
                tx.commit()

        return tool_catalog.ToolContext(
            workspace_id=run.workspace_id,
            http=self.rt.http,
            read_note=read_note,
            write_note=write_note,
            now=_now,
        )


def _record_failure(tx: UnitOfWork, run: Run, code: str, message: str, now: datetime) -> None:
    seq = append_events(tx, run, [("run.failed", {"code": code, "message": message})], now)
    tx.runs.update_run(
        run.id,
        {
            "status": RunStatus.FAILED.value,
            "error": {"code": code, "message": message},
            "finished_at": now,
            "updated_at": now,
            "claimed_by": None,
            "lease_expires_at": None,
            "next_seq": seq,
        },
    )


def new_run(
    *,
    workspace_id: str,
    member_id: str,
    crew_id: str,
    version_id: str,
    version_number: int,
    program: dict[str, Any],
    run_input: dict[str, Any],
    origin: RunOrigin,
    dry_run: bool,
    created_by: str,
    parent_run_id: str | None,
    depth: int,
    now: datetime,
) -> Run:
    """A queued run of ``program`` (its first event is appended by the caller)."""
    return Run(
        id=new_id("run"),
        workspace_id=workspace_id,
        member_id=member_id,
        crew_id=crew_id,
        version_id=version_id,
        version_number=version_number,
        origin=origin,
        status=RunStatus.QUEUED,
        dry_run=dry_run,
        parent_run_id=parent_run_id,
        depth=depth,
        input=run_input,
        output=None,
        error=None,
        state=initial_state(program, run_input),
        created_by=created_by,
        created_at=now,
        updated_at=now,
        started_at=None,
        finished_at=None,
        claimed_by=None,
        lease_expires_at=None,
        attempts=0,
        next_seq=1,
        tokens_in=0,
        tokens_out=0,
        cost_units=0.0,
    )
