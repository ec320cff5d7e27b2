"""The dispatcher: claims queued runs and drives their compiled program to an end.

Each step (a model reply, a tool result, a decision) is committed before the next one starts,
so a run whose worker dies resumes from its last committed step once its lease expires (a live
worker keeps its lease alive while a model or tool call is in flight). Model calls and tools run
outside any transaction, except the catalog's tools over the database (the notes tools): they
run inside the transaction that records their result, so their write and the run's step commit
together (ADR 0068). ``external_read`` tools may therefore run twice if a worker dies between
running one and recording its result (at-least-once). ``external_write`` and
``spend`` calls are never silently repeated: the start of such a call is committed before it is
made, and a recovering worker that finds a call started without a result asks a human again
(a new approval with ``outcome_unknown``) instead of repeating it.

Claiming is safe across processes: on PostgreSQL ``FOR UPDATE SKIP LOCKED`` gives each claimer a
different run, on SQLite the writing transaction holds the database lock. Every step is written
only if the run is unchanged since the worker read it (still running, still ours, no new event),
so a worker whose lease ran out cannot write over the one that took the run over.

The dispatchers of one process may take turns for their database work (``DispatchTurns``,
ADR 0056): where the database serialises every writer anyway (SQLite), two threads
interleaving their steps only fight over the interpreter lock.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.budgets import (
    Admission,
    BudgetExceeded,
    OnExceeded,
    admit_model_call,
    release,
    settle_model_call,
    spend_needs_approval,
)
from domain.kernel.clock import Clock
from domain.kernel.records import evolve
from domain.kernel.signals import Signal
from domain.kernel.unit_of_work import Store
from domain.members import nul_pointer
from domain.runs.errors import InputSchemaMismatch, NothingToRun
from domain.runs.llm import LanguageModel, ModelError, ModelReply, ToolCall, answers_in_process
from domain.runs.model import Approval, ApprovalStatus, EventDraft, Run, RunOrigin, RunStatus
from domain.runs.repository import RunOwnership, RunsTx
from domain.runs.start import RunRequest, queue_run
from domain.tools import EffectClass, HttpPort, ToolContext, ToolError, execute, runs_in_process

logger = logging.getLogger("scaicrew.dispatcher")

_RESULT_LIMIT = 4000  # characters of a tool result kept in events and the conversation

#: Calls a tool server's tool for a run: (workspace id, ``mcp:<server>/<tool>``, arguments).
RemoteTools = Callable[[str, str, dict[str, Any]], dict[str, Any]]

#: Effect classes whose calls are never silently repeated (the others are at-least-once).
_AT_MOST_ONCE = frozenset({EffectClass.EXTERNAL_WRITE.value, EffectClass.SPEND.value})


@dataclass(frozen=True)
class RunSettings:
    handoff_max_depth: int
    lease_seconds: float
    max_steps: int
    max_attempts: int
    cost_units_per_1k_tokens: float
    #: A run's wall-clock budget when its definition names none (``max_run_seconds``).
    max_run_seconds: float
    #: How long an approval waits when the definition names nothing
    #: (``approval_timeout_seconds``).
    approval_timeout_seconds: float


class DispatchTurns:
    """Turns for the database work of the dispatchers of one process (ADR 0056).

    A dispatcher holds the turn while it claims and drives a run, and gives it up while a call
    that waits on something outside the process is in flight (a remote model, HTTP, a tool
    server; not the offline model or the notes tools), so the dispatchers of a process
    overlap only where they wait. Measured on SQLite, where writers queue one at a time
    anyway: two threads whose steps interleaved spent 65% more CPU per run (each SQLite call
    releases the interpreter lock, and the two threads handed it back and forth) and drained
    219 runs/s where one thread drained 340.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @contextmanager
    def taken(self) -> Iterator[None]:
        """Hold the turn (waiting for it) for the ``with`` block."""
        with self._lock:
            yield

    @contextmanager
    def given_up(self) -> Iterator[None]:
        """Inside ``taken``: let the other dispatchers have the turn for the ``with`` block,
        then wait for it again."""
        self._lock.release()
        try:
            yield
        finally:
            self._lock.acquire()


class Dispatcher:
    """Claims and executes runs; one instance per worker thread or process."""

    def __init__(
        self,
        store: Store[RunsTx],
        clock: Clock,
        model: LanguageModel,
        http: HttpPort,
        settings: RunSettings,
        worker_id: str,
        remote: RemoteTools | None = None,
        turns: DispatchTurns | None = None,
    ) -> None:
        self._store = store
        self._remote = remote
        self._turns = turns
        self._clock = clock
        self._model = model
        self._http = http
        self.settings = settings
        self.worker_id = worker_id
        #: (run id, call id) of the call whose start this worker's last commit recorded.
        self._armed: tuple[str, str] | None = None
        # (run id, next_seq, whether a budget covers its next model call) as our last step's
        # commit left the run: the next step starts from it without a read (ADR 0061).
        self._left: tuple[str, int, bool] | None = None
        self._beats: _Heartbeat | None = None

    # -- claiming ------------------------------------------------------------------------

    def run_next(self) -> bool:
        """Claim one run and drive it as far as it goes; False when nothing was claimable."""
        with self._turn():
            claimed = self._claim()
            if claimed is None:
                return False
            try:
                self._execute(claimed.id, claimed)
            except Exception:  # never leave a run "running" because of our own bug
                logger.exception("run %s crashed the dispatcher", claimed.id)
                message = "The run failed because of an internal error."
                self._fail(claimed.id, "InternalError", message)
            return True

    def _turn(self) -> AbstractContextManager[None]:
        return nullcontext() if self._turns is None else self._turns.taken()

    def claim(self) -> str | None:
        """Claim the next claimable run in one transaction; its id, or None.

        A run recovered more than ``max_attempts`` times fails with ``WorkerLost`` instead.
        """
        claimed = self._claim()
        return None if claimed is None else claimed.id

    def _claim(self) -> Run | None:
        """``claim``: the run as the claim saved it, or None."""
        now = self._clock.now()
        with self._store(write=True) as tx:
            run = tx.runs.claimable(now)
            if run is None:
                # Nothing written: end it as a success. An idle worker polls often, and a unit
                # of work left without a commit rolls back, which on PostgreSQL also makes the
                # driver forget the statements it prepared on the connection (ADR 0061).
                tx.commit()
                return None
            event = run.claim_event()
            if event == "run.recovered" and run.attempts >= self.settings.max_attempts:
                message = f"The run's worker stopped {run.attempts} times."
                run = _failed(tx, run, "WorkerLost", message, now)
                tx.runs.save(run)
                claimed = None
            else:
                attempt = {"worker": self.worker_id, "attempt": run.attempts + 1}
                budget = run.max_run_seconds(self.settings.max_run_seconds)
                taken = run.claimed(self.worker_id, now, self._lease_until(now), budget)
                saved = tx.runs.save_step(taken, [(event, attempt)], now, since=None, lease=True)
                assert saved is not None  # the row is ours: locked, or the database is
                run = claimed = saved
            tx.record(run.changed_signal())
            left = None if claimed is None else self._leaving(tx, claimed)
            tx.commit()
        self._left = left
        return claimed

    def _lease_until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.lease_seconds)

    # -- execution -----------------------------------------------------------------------

    def execute(self, run_id: str) -> None:
        """Drive a claimed run step by step until it stops, fails or ends."""
        with self._turn():
            self._execute(run_id)

    def _execute(self, run_id: str, saved: Run | None = None) -> None:
        """``execute``, in this dispatcher's turn; ``saved`` is the run as this worker's claim
        saved it, if at hand."""
        while True:
            current = self._current(run_id, saved)
            if current is None:
                return  # no longer ours: decided, failed, or reclaimed after our lease ran out
            run, budgeted = current
            if run.state.taken_steps() >= self.settings.max_steps:  # counted across resumes
                self._fail(run_id, "StepLimit", "The run exceeded its step limit.")
                return
            if run.overdue(self._clock.now()):
                self._fail(run_id, "RunTimedOut", _timed_out(run, self.settings))
                return
            if run.state.queue:
                saved = self._handle_call(run, run.state.queue[0])
                if saved is None:
                    return
                continue
            admission = self._admit(run) if budgeted else Admission(())
            if admission is None:
                return
            try:
                with self._heartbeat(run.id, waits=not answers_in_process(self._model)):
                    reply = self._model.complete(list(run.state.messages), list(run.state.tools))
            except ModelError as exc:
                self._release(admission)
                self._fail(run.id, "ModelError", str(exc)[:1000])
                return
            saved = self._record_reply(run, reply, admission)
            if saved is None:
                self._release(admission)
                return

    # -- budgets -------------------------------------------------------------------------

    def _admit(self, run: Run) -> Admission | None:
        """Admit the next model call past the budgets covering the run (reserving units from
        each); None when the run must stop: a ``block`` budget's limit is reached (the run
        fails with ``BudgetExceeded``) or an ``approve`` one's (it waits for a human, with an
        approval naming the budget). Called only for a run some budget covers (``_current``
        looks: most runs are covered by none, and pay no write transaction per model call)."""
        step = run.state.taken_steps()
        with self._store(write=True) as tx:
            if not self._still_ours(tx, run):
                return None
            admission = admit_model_call(
                tx,
                run.workspace_id,
                run.crew_id,
                run.member_id,
                self._clock.now(),
                self.settings.cost_units_per_1k_tokens,
                lambda budget_id: run.state.is_approved(_model_call(budget_id, step)),
            )
            tx.commit()
        budget = admission.refused_by
        if budget is None:
            return admission
        if budget.on_exceeded is OnExceeded.BLOCK:
            refused = BudgetExceeded(budget.id, budget.name, budget.window(self._clock.now()).key)
            self._fail(run.id, "BudgetExceeded", refused.message)
            return None
        call = _model_call(budget.id, step)
        self._wait_for_approval(run, call, EffectClass.SPEND.value, budget_id=budget.id)
        return None

    def _release(self, admission: Admission) -> None:
        """Give back the units a model call reserved whose cost will not be recorded."""
        if admission.reservations:
            with self._store(write=True) as tx:
                release(tx, admission.reservations)
                tx.commit()

    @contextmanager
    def _heartbeat(self, run_id: str, *, waits: bool = True) -> Iterator[None]:
        """Keep renewing the lease while a model or tool call is in flight: a call may outlast
        the lease, and a live worker must not lose its run to another (which would repeat the
        call). A worker that dies stops beating, so its run is still recovered. One beating
        thread per dispatcher (``_Heartbeat``), not one per call. A call that ``waits`` on
        something outside the process is made with this dispatcher's turn given up."""
        if self._beats is None:
            self._beats = _Heartbeat(self.settings.lease_seconds / 3, self._beat)
        with self._beats.beating(run_id):
            if self._turns is None or not waits:
                yield
            else:
                with self._turns.given_up():  # the call waits: the others may go on
                    yield

    def _beat(self, run_id: str) -> bool:
        try:
            return self._renew_lease(run_id) is not None
        except Exception:  # the next beat (or the next step) tries again
            logger.warning("could not renew the lease of run %s", run_id, exc_info=True)
            return True

    def _current(self, run_id: str, saved: Run | None = None) -> tuple[Run, bool] | None:
        """The run as it stands when it is still ours (None otherwise), and whether a budget
        covers it when its next step is a model call, read in one transaction without writing:
        the claim and every step's commit extend the lease (ADR 0051). Renewed here only when
        less than half of it is left (a step that wrote nothing, a slow one).

        ``saved`` is the run as our last step saved it: while the row still says it is ours
        and no event was added since, that is the run (its state is not read and decoded
        again; ADR 0054). When our own commit left it so a moment ago (``_leaving``), nothing
        is read at all: the step's writing transaction already checked that the run was ours
        and looked the budgets up (ADR 0061); a cancel committed since is seen by the next
        step's write, as one committed during a call is. A budget created after the look-up
        charges the call when it is settled."""
        now = self._clock.now()
        left, self._left = self._left, None
        if saved is not None and left is not None and left[:2] == (run_id, saved.next_seq):
            run, budgeted = saved, left[2]  # as our own commit left it a moment ago
        else:
            with self._store() as tx:
                found = self._as_it_stands(tx, run_id, saved)
                if not self._ours(found):
                    return None
                assert found is not None
                run, budgeted = found, _budgeted(tx, found)
        expires = run.lease_expires_at
        half = timedelta(seconds=self.settings.lease_seconds / 2)
        if expires is not None and expires - now >= half:
            return run, budgeted
        renewed = self._renew_lease(run_id)
        return None if renewed is None else (renewed, budgeted)

    def _leaving(self, tx: RunsTx, run: Run) -> tuple[str, int, bool]:
        """In a step's writing transaction, right before its commit: the run as the commit
        leaves it, and whether a budget covers it when its next step is a model call (one read
        here instead of a read transaction of its own before the next step, ADR 0061)."""
        return run.id, run.next_seq, _budgeted(tx, run)

    def _as_it_stands(self, tx: RunsTx, run_id: str, saved: Run | None) -> Run | None:
        """The run read in ``tx``: ``saved`` when the row says nothing happened to it since
        (its lease aside), else read whole (``_current`` then sees whether it is ours)."""
        owner = None if saved is None else tx.runs.ownership(run_id)
        if saved is not None and owner is not None and self._holds(owner, saved.next_seq):
            return evolve(saved, lease_expires_at=owner.lease_expires_at)
        return tx.runs.get(None, run_id)

    def _renew_lease(self, run_id: str) -> Run | None:
        """Extend our lease on the run; the run as it stands, or None if it is not ours."""
        now = self._clock.now()
        with self._store(write=True) as tx:
            run = tx.runs.get(None, run_id)
            if not self._ours(run):
                return None
            assert run is not None
            tx.runs.extend_lease(run_id, self._lease_until(now))
            tx.commit()
        return run

    def _ours(self, run: Run | None) -> bool:
        return (
            run is not None and run.status is RunStatus.RUNNING and run.claimed_by == self.worker_id
        )

    def _still_ours(self, tx: RunsTx, run: Run) -> bool:
        """Whether ``run`` is unchanged since we read it: still running, claimed by us, no new
        events. Read inside the step's writing transaction (row lock on PostgreSQL, database
        lock on SQLite)."""
        owner = tx.runs.ownership(run.id)
        if owner is None or not self._holds(owner, run.next_seq):
            return False
        tx.runs.stored_as(run)  # unchanged since read or saved: a save may skip its state
        return True

    def _holds(self, owner: RunOwnership, next_seq: int) -> bool:
        """Whether the row says the run is running, claimed by us, at event ``next_seq``."""
        return (
            owner.status is RunStatus.RUNNING
            and owner.claimed_by == self.worker_id
            and owner.next_seq == next_seq
        )

    def _record_reply(self, run: Run, reply: ModelReply, admission: Admission) -> Run | None:
        """Record the model's reply: queue its tool calls (the run as saved: go on) or finish
        the run (None, as when it must stop)."""
        declared = run.state.declared_tools()
        unknown = [c.name for c in reply.tool_calls if c.name not in declared]
        if unknown:
            self._fail(
                run.id,
                "UnknownTool",
                f"The model called '{unknown[0][:64]}', which this member does not declare.",
            )
            return None
        if reply.output is None and not reply.tool_calls:
            self._fail(run.id, "ModelError", "The model answered neither tool calls nor output.")
            return None
        answer = {"output": reply.output, "calls": [[c.id, c.arguments] for c in reply.tool_calls]}
        if nul_pointer(answer) is not None:  # PostgreSQL cannot store it: fail readably
            self._fail(run.id, "ModelError", "The model answered text with a NUL character.")
            return None
        now = self._clock.now()
        usage = reply.usage
        cost = round(
            (usage.tokens_in + usage.tokens_out) / 1000 * self.settings.cost_units_per_1k_tokens,
            6,
        )
        events: list[EventDraft] = [
            (
                "model.replied",
                {
                    "model": self._model.name,
                    "tool_calls": [c.name for c in reply.tool_calls],
                    "tokens_in": usage.tokens_in,
                    "tokens_out": usage.tokens_out,
                },
            )
        ]
        with self._store(write=True) as tx:
            # Whether the run is still ours is asked by the step's save, which locks its row:
            # if it is not, the transaction ends without a commit and nothing here stays.
            tx.cost.add(
                run.workspace_id,
                run.id,
                run.member_id,
                self._model.name,
                usage.tokens_in,
                usage.tokens_out,
                cost,
                now,
            )
            settle_model_call(
                tx,
                run.workspace_id,
                run.crew_id,
                run.member_id,
                now,
                admission.reservations,
                cost,
            )
            charged = run.charged(usage.tokens_in, usage.tokens_out, cost)
            if reply.tool_calls:
                after = charged.stepped(charged.state.with_calls(reply.tool_calls), now)
                after = self._arm(tx, after, events, now)
            else:
                assert reply.output is not None
                after = charged.succeeded(reply.output, now)
                events.append(("run.succeeded", {"output_keys": sorted(reply.output)[:50]}))
                tx.record(after.changed_signal())  # before the child's: the parent ended first
                if not run.dry_run:
                    self._hand_off(tx, run, reply.output, now, events)
            going_on = bool(reply.tool_calls)
            if going_on:  # the lease is renewed by this same statement
                after = evolve(after, lease_expires_at=self._lease_until(now))
            saved = tx.runs.save_step(after, events, now, since=run, lease=going_on)
            if saved is None:
                self._armed = None  # no call was made the next one: nothing armed
                return None
            left = self._leaving(tx, saved) if going_on else None
            tx.commit()
        self._left = left
        return saved if going_on else None

    def _hand_off(
        self, tx: RunsTx, run: Run, output: dict[str, Any], now: datetime, events: list[EventDraft]
    ) -> Run | None:
        """Start the first matching handoff's target as a child run, inside ``tx``; the events
        say what happened (started, or skipped and why)."""
        for handoff in tx.members.get_handoffs(run.workspace_id, run.member_id):
            if handoff.condition is not None and not handoff.condition.matches(output):
                continue
            target_id = handoff.target_member_id
            if run.depth + 1 > self.settings.handoff_max_depth:
                events.append(
                    ("handoff.skipped", {"target_member_id": target_id, "reason": "depth_cap"})
                )
                return None
            request = RunRequest(
                member_id=target_id,
                input=output,
                origin=RunOrigin.HANDOFF,
                created_by=f"run:{run.id}",
                parent=run,
            )
            try:
                child = queue_run(tx, run.workspace_id, request, now)
            except NothingToRun:
                events.append(
                    ("handoff.skipped", {"target_member_id": target_id, "reason": "not_published"})
                )
                return None
            except BudgetExceeded as exceeded:
                skipped_budget = {
                    "target_member_id": target_id,
                    "reason": "budget_exceeded",
                    "budget_id": exceeded.budget_id,
                }
                events.append(("handoff.skipped", skipped_budget))
                return None
            except InputSchemaMismatch as mismatch:
                # The child would run with an input its member does not accept.
                skipped = {
                    "target_member_id": target_id,
                    "reason": "input_schema_mismatch",
                    "errors": mismatch.problems[:5],
                }
                events.append(("handoff.skipped", skipped))
                return None
            started = {"target_member_id": target_id, "child_run_id": child.id}
            events.append(("handoff.started", started))
            return child
        return None

    def _handle_call(self, run: Run, call: ToolCall) -> Run | None:
        """Run the queued call at the head of the queue; the run as saved, or None when the run
        must stop.

        An ``external_write`` or ``spend`` call (whatever the tool: built-in or not) is never
        silently repeated: its start is committed before the call, and a call found started
        without a result goes back to a human, with a new approval saying that the outcome of
        the earlier attempt is unknown.
        """
        tool = run.state.program_tool(call.name)
        assert tool is not None  # checked when the reply was recorded
        effect_class = str(tool["effect_class"])
        once = not run.dry_run and effect_class in _AT_MOST_ONCE
        armed, self._armed = self._armed == (run.id, call.id), None  # started by our last commit
        if once and run.state.started_without_result(call) and not armed:
            self._wait_for_approval(run, call, effect_class, outcome_unknown=True)
            return None
        approved = run.state.is_approved(call)
        over: str | None = None  # an ``approve`` budget past its limit, for a ``spend`` call
        if effect_class == EffectClass.SPEND.value and not run.dry_run and not approved:
            if not armed:
                with self._store() as tx:
                    over = self._spend_over_budget(tx, run)
        if tool.get("checkpoint") and not run.dry_run and not approved:
            # A checkpoint's approval names the budget past its limit too (one approval).
            self._wait_for_approval(run, call, effect_class, budget_id=over)
            return None
        if over is not None:
            self._wait_for_approval(run, call, effect_class, budget_id=over)
            return None
        key = run.state.idempotency_key(run.id, call)
        if once and not armed:
            started = self._record_start(run, call, key)
            if started is None:
                return None
            run = started
        if runs_in_process(call.name):
            return self._call_in_process(run, call, key)
        if run.dry_run and effect_class != EffectClass.INTERNAL.value:
            result: dict[str, Any] = {
                "dry_run": True,
                "stubbed": call.name,
                "arguments": call.arguments,
            }
        else:
            try:
                with self._heartbeat(run.id):
                    pinned = tool.get("input_schema")
                    result = execute(call.name, call.arguments, self._tools(run, key), pinned)
            except ToolError as exc:
                self._fail(run.id, "ToolFailed", str(exc)[:1000])
                return None
        with self._store(write=True) as tx:
            return self._save_result(tx, run, call, result)

    def _call_in_process(self, run: Run, call: ToolCall, key: str) -> Run | None:
        """Run a catalog tool over the database (``runs_in_process``) inside the transaction
        that records its result: its write and the run's step commit together, or neither
        does (one writing transaction where there were two, ADR 0068). The run as saved, or
        None when it must stop (no longer ours: the tool wrote nothing)."""
        try:
            with self._store(write=True) as tx:
                result = execute(call.name, call.arguments, self._tools(run, key, tx))
                return self._save_result(tx, run, call, result)
        except ToolError as exc:  # rolled back: nothing the tool wrote stays
            self._fail(run.id, "ToolFailed", str(exc)[:1000])
            return None

    def _save_result(
        self, tx: RunsTx, run: Run, call: ToolCall, result: dict[str, Any]
    ) -> Run | None:
        """Record ``call``'s result as the run's next step and commit ``tx``, if the run is
        still ours as we left it (the save asks, locking its row); the run as saved, or None
        when it changed meanwhile (nothing is committed: what ``tx`` wrote is undone)."""
        text = json.dumps(result, sort_keys=True, default=str)[:_RESULT_LIMIT]
        now = self._clock.now()
        done = {
            "tool": call.name,
            "call_id": call.id,
            "dry_run": run.dry_run,
            "result": text[:1000],
        }
        events: list[EventDraft] = [("tool.succeeded", done)]
        after = self._arm(tx, run.stepped(run.state.after_call(call, text), now), events, now)
        after = evolve(after, lease_expires_at=self._lease_until(now))  # the next step's
        saved = tx.runs.save_step(after, events, now, since=run, lease=True)
        if saved is None:
            self._armed = None  # no call was made the next one: nothing armed
            return None
        left = self._leaving(tx, saved)
        tx.commit()
        self._left = left
        return saved

    def _spend_over_budget(self, tx: RunsTx, run: Run) -> str | None:
        """The ``approve`` budget whose reached limit a ``spend`` call of ``run`` must be
        approved over (None: none is reached)."""
        budget = spend_needs_approval(
            tx, run.workspace_id, run.crew_id, run.member_id, self._clock.now()
        )
        return None if budget is None else budget.id

    def _arm(self, tx: RunsTx, run: Run, events: list[EventDraft], now: datetime) -> Run:
        """Inside the commit that makes a call the next one: when that call is an
        ``external_write``/``spend`` call needing no approval, record its start in this same
        commit (no extra one) and remember that this worker did. A worker that dies before
        the call leaves it started without a result: asked again, as after a death mid-call."""
        self._armed = None
        if run.dry_run or not run.state.queue:
            return run
        call = run.state.queue[0]
        tool = run.state.program_tool(call.name)
        if tool is None or tool.get("checkpoint") or tool["effect_class"] not in _AT_MOST_ONCE:
            return run
        if tool["effect_class"] == EffectClass.SPEND.value and not run.state.is_approved(call):
            if self._spend_over_budget(tx, run) is not None:
                return run  # asked of a human first (``_handle_call``), then started
        key = run.state.idempotency_key(run.id, call)
        events.append(
            ("tool.started", {"tool": call.name, "call_id": call.id, "idempotency_key": key})
        )
        self._armed = (run.id, call.id)
        return run.stepped(run.state.starting(call), now)

    def _record_start(self, run: Run, call: ToolCall, key: str) -> Run | None:
        """Commit that ``call`` starts (its approval used up), in a unit of work of its own
        before the call; the run as saved, or None when it is no longer ours."""
        now = self._clock.now()
        started = {"tool": call.name, "call_id": call.id, "idempotency_key": key}
        with self._store(write=True) as tx:
            after = run.stepped(run.state.starting(call), now)
            saved = tx.runs.save_step(after, [("tool.started", started)], now, since=run)
            if saved is None:
                return None
            tx.commit()
        return saved

    def _wait_for_approval(
        self,
        run: Run,
        call: ToolCall,
        effect_class: str,
        *,
        outcome_unknown: bool = False,
        budget_id: str | None = None,
    ) -> None:
        now = self._clock.now()
        timeout = run.state.program.get("approval_timeout_seconds")
        approval = Approval.requested(
            run,
            call,
            effect_class,
            now,
            outcome_unknown=outcome_unknown,
            timeout_seconds=(
                float(timeout)
                if isinstance(timeout, int | float)
                else self.settings.approval_timeout_seconds
            ),
            budget_id=budget_id,
        )
        with self._store(write=True) as tx:
            if not self._still_ours(tx, run):
                return
            tx.runs.add_approval(approval)
            requested: dict[str, Any] = {"approval_id": approval.id, "tool": call.name}
            if outcome_unknown:
                requested["outcome_unknown"] = True
            if budget_id is not None:
                requested["budget_id"] = budget_id
            after = tx.runs.append_events(run, [("approval.requested", requested)], now)
            after = after.awaiting_approval(now)
            tx.runs.save(after, expect_status=RunStatus.RUNNING)
            tx.record(after.changed_signal())
            tx.record(
                Signal(
                    run.workspace_id,
                    "approval.requested",
                    {
                        "approval_id": approval.id,
                        "run_id": run.id,
                        "tool": call.name,
                        # What a human needs to decide (outbound approval notices, issue 16).
                        "member_id": approval.member_id,
                        "effect_class": approval.effect_class,
                        "arguments": approval.arguments,
                        "expires_at": (
                            None
                            if approval.expires_at is None
                            else approval.expires_at.isoformat().replace("+00:00", "Z")
                        ),
                        "budget_id": budget_id,
                    },
                )
            )
            tx.commit()

    # -- the sweep: deadlines and approval expiry ------------------------------------------

    def sweep(self, batch: int = 50) -> int:
        """Fail the runs past their deadline (``RunTimedOut``, whatever they were doing) and
        expire the approvals past ``expires_at``; how many were acted on.

        Safe with several sweepers: on PostgreSQL each takes different rows (``SKIP LOCKED``),
        and every change is guarded by the status it expects (on SQLite, the write lock).
        """
        done = 0
        now = self._clock.now()
        with self._store(write=True) as tx:
            for run_id in tx.runs.overdue_ids(now, batch):
                run = tx.runs.get(None, run_id)
                if run is None or not run.overdue(now) or run.status.finished:
                    continue
                run = _failed(tx, run, "RunTimedOut", _timed_out(run, self.settings), now)
                tx.runs.save(run)
                tx.record(run.changed_signal())
                done += 1
            tx.commit()
        with self._store(write=True) as tx:
            for approval_id in tx.runs.expired_approval_ids(now, batch):
                done += self._expire(tx, approval_id, now)
            tx.commit()
        return done

    def _expire(self, tx: RunsTx, approval_id: str, now: datetime) -> int:
        """Expire one pending approval: its run fails with ``ApprovalExpired`` or, where the
        definition says ``on_approval_timeout: reject``, is rejected as a human would."""
        approval = tx.runs.get_any_approval(approval_id)
        if approval is None or not tx.runs.decide_approval(
            approval_id, ApprovalStatus.EXPIRED, "system", None, now
        ):
            return 0
        run = tx.runs.get(None, approval.run_id)
        if run is None or run.status is not RunStatus.WAITING_APPROVAL:
            return 1
        expired = {"approval_id": approval_id, "tool": approval.tool}
        run = tx.runs.append_events(run, [("approval.expired", expired)], now)
        if run.state.program.get("on_approval_timeout") == "reject":
            code = "ApprovalRejected"
            message = f"Approval of '{approval.tool}' was rejected: it expired undecided."
        else:
            code = "ApprovalExpired"
            message = f"Approval of '{approval.tool}' expired undecided."
        run = _failed(tx, run, code, message, now)
        tx.runs.save(run, expect_status=RunStatus.WAITING_APPROVAL)
        tx.record(run.changed_signal())
        tx.record(
            Signal(
                run.workspace_id,
                "approval.decided",
                {"approval_id": approval_id, "run_id": run.id, "status": "expired"},
            )
        )
        return 1

    def _fail(self, run_id: str, code: str, message: str) -> None:
        now = self._clock.now()
        with self._store(write=True) as tx:
            run = tx.runs.get(None, run_id)
            if not self._ours(run):
                return  # finished, or taken over by another worker after our lease ran out
            assert run is not None
            run = _failed(tx, run, code, message, now)
            tx.runs.save(run)
            tx.record(run.changed_signal())
            tx.commit()

    def _tools(self, run: Run, idempotency_key: str, tx: RunsTx | None = None) -> ToolContext:
        """What a tool of ``run`` may reach; its notes are read and written in ``tx`` (the
        notes tools run inside the transaction recording their result), else each in a unit
        of work of its own."""

        def read_note(key: str) -> str | None:
            if tx is not None:
                return tx.notes.read(run.workspace_id, key)
            with self._store() as own:
                return own.notes.read(run.workspace_id, key)

        def write_note(key: str, value: str) -> None:
            if tx is not None:
                tx.notes.write(run.workspace_id, key, value, self._clock.now())
                return
            with self._store(write=True) as own:
                own.notes.write(run.workspace_id, key, value, self._clock.now())
                own.commit()

        def call_remote(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
            if self._remote is None:
                raise ToolError(f"Tool '{name[:200]}' cannot be called: no tool servers here.")
            return self._remote(run.workspace_id, name, arguments)

        return ToolContext(
            workspace_id=run.workspace_id,
            http=self._http,
            read_note=read_note,
            write_note=write_note,
            now=self._clock.now,
            call_remote=call_remote,
            idempotency_key=idempotency_key,
        )


def _budgeted(tx: RunsTx, run: Run) -> bool:
    """Whether the run's next step is a model call that some budget covers (most runs are
    covered by none, and their model calls need no admission)."""
    return not run.state.queue and bool(
        tx.budgets.covering(run.workspace_id, run.crew_id, run.member_id)
    )


def _model_call(budget_id: str, step: int) -> ToolCall:
    """The model call a run makes at ``step``, as an approval over ``budget_id`` names it."""
    return ToolCall(f"budget:{budget_id}:step:{step}", "model", {"budget_id": budget_id})


def _timed_out(run: Run, settings: RunSettings) -> str:
    return f"The run passed its deadline of {run.max_run_seconds(settings.max_run_seconds):g}s."


def _failed(tx: RunsTx, run: Run, code: str, message: str, now: datetime) -> Run:
    """The run failed with ``code``: its ``run.failed`` event appended (the caller saves)."""
    run = tx.runs.append_events(run, [("run.failed", {"code": code, "message": message})], now)
    return run.failed(code, message, now)


class _Heartbeat:
    """The lease-renewing thread of one dispatcher: it beats (``renew(run_id)``) every
    ``interval`` seconds while a call is in flight, and sleeps otherwise. Started on the first
    call and ended after ``idle_seconds`` without one, so an idle dispatcher holds no thread.
    When a call ends, a beat still in progress is waited for (no renewal outlives its call)."""

    def __init__(
        self, interval: float, renew: Callable[[str], bool], idle_seconds: float = 60.0
    ) -> None:
        self._interval = interval
        self._renew = renew
        self._idle = idle_seconds
        self._cond = threading.Condition()
        self._run_id: str | None = None
        self._due = 0.0
        self._beating = False
        self._thread: threading.Thread | None = None

    @contextmanager
    def beating(self, run_id: str) -> Iterator[None]:
        with self._cond:
            self._run_id = run_id
            self._due = time.monotonic() + self._interval
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="lease-heartbeat", daemon=True
                )
                self._thread.start()
            # No wake-up: the thread never sleeps past one interval, so it finds this call by
            # its first beat. Waking it on each call's start and end cost two thread switches
            # per call (ADR 0054).
        try:
            yield
        finally:
            with self._cond:
                self._run_id = None
                while self._beating:
                    self._cond.wait()

    def _loop(self) -> None:
        with self._cond:
            idle_since = time.monotonic()
            while True:
                now = time.monotonic()
                if self._run_id is None:
                    if now - idle_since >= self._idle:
                        self._thread = None
                        return
                    self._cond.wait(min(self._interval, self._idle - (now - idle_since)))
                    continue
                idle_since = now
                if now < self._due:  # capped: a call given up on waits with an infinite due
                    self._cond.wait(min(self._due - now, self._interval))
                    continue
                run_id = self._run_id
                self._due = now + self._interval
                self._beating = True
                self._cond.release()
                try:
                    ours = self._renew(run_id)
                finally:
                    self._cond.acquire()
                    self._beating = False
                    self._cond.notify_all()
                if not ours and self._run_id == run_id:
                    self._due = float("inf")  # no longer ours: no more beats for this call
