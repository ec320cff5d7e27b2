"""Runs, their state between steps, their events and approvals: immutable values whose
transitions are methods returning the next value.

A run moves ``queued -> running -> (waiting_approval -> queued -> running)* -> succeeded |
failed | cancelled`` (``TRANSITIONS`` is the one table of it). The dispatcher and the use cases
never write a run field by field: they take the transition (``claimed``, ``awaiting_approval``,
``approved``, ``succeeded``, ``failed``, ``cancelled``...) and save the value it returns; a
transition the table does not allow raises ``IllegalTransition``.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.kernel.ids import new_id
from domain.kernel.records import evolve
from domain.kernel.signals import Signal
from domain.runs.llm import ToolCall
from domain.tools import tool_schema


class RunStatus(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return not TRANSITIONS[self]


#: Every status a run may move to from each status (a run stays ``running`` from step to step;
#: a ``running`` run whose worker was lost is claimed ``running`` again). Terminal: no move.
TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.RUNNING: frozenset(
        {
            RunStatus.RUNNING,
            RunStatus.WAITING_APPROVAL,
            RunStatus.SUCCEEDED,
            RunStatus.FAILED,
            RunStatus.CANCELLED,
        }
    ),
    RunStatus.WAITING_APPROVAL: frozenset(
        {RunStatus.QUEUED, RunStatus.FAILED, RunStatus.CANCELLED}
    ),
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


class IllegalTransition(Exception):
    """A run was asked to move where ``TRANSITIONS`` does not allow (a bug, never input)."""

    def __init__(self, source: RunStatus, target: RunStatus) -> None:
        super().__init__(f"A {source.value} run cannot become {target.value}.")
        self.source, self.target = source, target


class RunOrigin(enum.Enum):
    MANUAL = "manual"
    SCHEDULE = "schedule"
    WEBHOOK = "webhook"
    HANDOFF = "handoff"


class ApprovalStatus(enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"  # its run was cancelled first
    EXPIRED = "expired"  # nobody decided before ``expires_at``


#: An event to append to a run's timeline: its type and its data.
EventDraft = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class RunState:
    """What a run carries from one step to the next: its compiled program, the conversation
    with the model, the tool calls still to make and the calls a human approved.

    Stored as JSON in the run's row (``to_json``/``from_json`` keep the stored layout).
    """

    program: dict[str, Any]
    tools: tuple[dict[str, Any], ...]
    messages: tuple[dict[str, Any], ...]
    queue: tuple[ToolCall, ...] = ()
    approved: tuple[str, ...] = ()
    steps: int = 0
    #: The id of the queued call whose effect started (durably recorded before the call)
    #: and whose result is not recorded yet: an ``external_write``/``spend`` call found in
    #: this state by a recovering worker is not repeated without a human.
    started: str | None = None

    @classmethod
    def start(cls, program: dict[str, Any], run_input: dict[str, Any]) -> RunState:
        """The conversation a run starts from: the compiled system prompt and the input."""
        tools = tuple(
            tool_schema(str(t["name"]), str(t.get("description", "")), t.get("input_schema"))
            for t in program.get("tools", [])
        )
        messages = (
            {"role": "system", "content": program["system_prompt"]},
            {"role": "user", "content": json.dumps(run_input, sort_keys=True)},
        )
        return cls(program=program, tools=tools, messages=messages)

    def declared_tools(self) -> set[str]:
        return {str(t["name"]) for t in self.program.get("tools", [])}

    def program_tool(self, name: str) -> dict[str, Any] | None:
        """The compiled program's entry for tool ``name`` (effect class, checkpoint)."""
        return next((t for t in self.program.get("tools", []) if t["name"] == name), None)

    def with_calls(self, calls: tuple[ToolCall, ...]) -> RunState:
        """The state once the model asked for ``calls``: queued, and on the transcript."""
        asked = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {
                        "name": c.name,
                        "arguments": json.dumps(c.arguments, sort_keys=True),
                    },
                }
                for c in calls
            ],
        }
        return evolve(self, messages=(*self.messages, asked), queue=calls, steps=self.steps + 1)

    def is_approved(self, call: ToolCall) -> bool:
        return call.id in self.approved

    def approving(self, call_id: str) -> RunState:
        return evolve(self, approved=(*self.approved, call_id))

    def starting(self, call: ToolCall) -> RunState:
        """The state once ``call`` (the head of the queue) is about to run: its approval is
        used up and the call is marked started, until its result is recorded."""
        approved = list(self.approved)
        if call.id in approved:
            approved.remove(call.id)
        return evolve(self, approved=tuple(approved), started=call.id)

    def started_without_result(self, call: ToolCall) -> bool:
        """Whether ``call`` started before and its outcome is unknown (no approval since)."""
        return self.started == call.id and not self.is_approved(call)

    def idempotency_key(self, run_id: str, call: ToolCall) -> str:
        """The stable id of the queued ``call``: the same for every attempt of this call,
        different for any other call of any run (the model's call ids repeat)."""
        digest = hashlib.sha256(call.id.encode("utf-8")).hexdigest()[:16]
        return f"{run_id}.{self.steps}.{digest}"

    def taken_steps(self) -> int:
        """Model replies and tool results so far, across every resume of the run."""
        return self.steps + sum(1 for m in self.messages if m.get("role") == "tool")

    def after_call(self, call: ToolCall, result: str) -> RunState:
        """The state once ``call`` (the head of the queue) returned ``result``.

        An approval covers this one call, even if a later call reuses its id.
        """
        approved = list(self.approved)
        if call.id in approved:
            approved.remove(call.id)
        answer = {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": result}
        return evolve(
            self,
            queue=self.queue[1:],
            approved=tuple(approved),
            messages=(*self.messages, answer),
            started=None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "program": self.program,
            "tools": list(self.tools),
            "messages": list(self.messages),
            "queue": [c.to_json() for c in self.queue],
            "approved": list(self.approved),
            "steps": self.steps,
            "started": self.started,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunState:
        return cls(
            program=dict(data["program"]),
            tools=tuple(data.get("tools", [])),
            messages=tuple(data.get("messages", [])),
            queue=tuple(ToolCall.from_json(c) for c in data.get("queue", [])),
            approved=tuple(str(a) for a in data.get("approved", [])),
            steps=int(data.get("steps", 0)),
            started=data.get("started"),
        )


@dataclass(frozen=True)
class Run:
    id: str
    workspace_id: str
    member_id: str
    crew_id: str
    version_id: str
    version_number: int
    origin: RunOrigin
    status: RunStatus
    dry_run: bool
    parent_run_id: str | None
    depth: int
    input: dict[str, Any] = field(hash=False)
    output: dict[str, Any] | None = field(hash=False)
    error: dict[str, Any] | None = field(hash=False)
    state: RunState = field(hash=False)
    created_by: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    claimed_by: str | None
    lease_expires_at: datetime | None
    attempts: int
    next_seq: int
    tokens_in: int
    tokens_out: int
    cost_units: float
    #: The run's wall-clock deadline: set when a worker first starts it, moved on by the time
    #: it then waits for a human (that wait is bounded by the approval's own expiry).
    deadline_at: datetime | None = None
    #: The W3C ``traceparent`` the run was queued under (ADR 0047): its dispatcher's steps
    #: continue that trace. Opaque to the domain; None when nothing traced the queuing.
    trace_context: str | None = None

    @classmethod
    def queued(
        cls,
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
        parent: Run | None,
        now: datetime,
    ) -> Run:
        """A new queued run of ``program`` (a handoff's child when ``parent`` is given)."""
        return cls(
            id=new_id("run"),
            workspace_id=workspace_id,
            member_id=member_id,
            crew_id=crew_id,
            version_id=version_id,
            version_number=version_number,
            origin=origin,
            status=RunStatus.QUEUED,
            dry_run=dry_run,
            parent_run_id=None if parent is None else parent.id,
            depth=0 if parent is None else parent.depth + 1,
            input=run_input,
            output=None,
            error=None,
            state=RunState.start(program, run_input),
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

    # -- transitions ---------------------------------------------------------------------

    def claim_event(self) -> str:
        """The event a claim of this run appends: recovered (its worker was lost), resumed
        (after an approval) or started."""
        if self.status is RunStatus.RUNNING:
            return "run.recovered"
        return "run.resumed" if self.started_at is not None else "run.started"

    def claimed(
        self,
        worker_id: str,
        now: datetime,
        lease_until: datetime,
        max_run_seconds: float | None = None,
    ) -> Run:
        """Running on ``worker_id`` until ``lease_until`` (a resumed run keeps its attempt);
        a run started for the first time gets its deadline, ``max_run_seconds`` from now."""
        resumed = self.status is RunStatus.QUEUED and self.started_at is not None
        deadline_at = self.deadline_at
        if deadline_at is None and max_run_seconds is not None:
            deadline_at = now + timedelta(seconds=max_run_seconds)
        return evolve(
            self,
            status=self._to(RunStatus.RUNNING),
            claimed_by=worker_id,
            lease_expires_at=lease_until,
            attempts=self.attempts + (0 if resumed else 1),
            started_at=self.started_at or now,
            updated_at=now,
            deadline_at=deadline_at,
        )

    def max_run_seconds(self, default: float) -> float:
        """The run's time budget: its definition's ``max_run_seconds``, else ``default``."""
        value = self.state.program.get("max_run_seconds")
        return float(value) if isinstance(value, int | float) else default

    def overdue(self, now: datetime) -> bool:
        return self.deadline_at is not None and now >= self.deadline_at

    def stepped(self, state: RunState, now: datetime) -> Run:
        return evolve(self, state=state, updated_at=now)

    def charged(self, tokens_in: int, tokens_out: int, cost_units: float) -> Run:
        return evolve(
            self,
            tokens_in=self.tokens_in + tokens_in,
            tokens_out=self.tokens_out + tokens_out,
            cost_units=round(self.cost_units + cost_units, 6),
        )

    def awaiting_approval(self, now: datetime) -> Run:
        return evolve(
            self,
            status=self._to(RunStatus.WAITING_APPROVAL),
            claimed_by=None,
            lease_expires_at=None,
            updated_at=now,
        )

    def approved(self, call_id: str, now: datetime) -> Run:
        """Queued again with ``call_id`` approved, for a worker to resume; the deadline moves
        on by the time the run waited (since it started waiting, its last update)."""
        deadline_at = self.deadline_at
        if deadline_at is not None and self.status is RunStatus.WAITING_APPROVAL:
            deadline_at += max(now - self.updated_at, timedelta(0))
        return evolve(
            self,
            status=self._to(RunStatus.QUEUED),
            state=self.state.approving(call_id),
            updated_at=now,
            deadline_at=deadline_at,
        )

    def succeeded(self, output: dict[str, Any], now: datetime) -> Run:
        return evolve(
            self,
            status=self._to(RunStatus.SUCCEEDED),
            output=output,
            finished_at=now,
            updated_at=now,
            claimed_by=None,
            lease_expires_at=None,
        )

    def failed(self, code: str, message: str, now: datetime) -> Run:
        return evolve(
            self,
            status=self._to(RunStatus.FAILED),
            error={"code": code, "message": message},
            finished_at=now,
            updated_at=now,
            claimed_by=None,
            lease_expires_at=None,
        )

    def cancelled(self, now: datetime) -> Run:
        """Cancelled: a queued or waiting run at once; a running one's worker stops at its
        next step boundary (its writes check that the run is still running and its own)."""
        return evolve(
            self,
            status=self._to(RunStatus.CANCELLED),
            finished_at=now,
            updated_at=now,
            claimed_by=None,
            lease_expires_at=None,
        )

    def _to(self, target: RunStatus) -> RunStatus:
        if target not in TRANSITIONS[self.status]:
            raise IllegalTransition(self.status, target)
        return target

    def with_next_seq(self, next_seq: int) -> Run:
        return evolve(self, next_seq=next_seq)

    def changed_signal(self) -> Signal:
        """The live-stream signal of this run's current status; its ``context`` tells this
        process's observers the run's origin, whether it is queued for the first time, and
        the trace it was queued under."""
        context = {"origin": self.origin.value}
        if self.status is RunStatus.QUEUED and self.started_at is None:
            context["first"] = "queued"  # queued for the first time, not resumed after approval
        if self.trace_context:
            context["traceparent"] = self.trace_context
        return Signal(
            self.workspace_id,
            "run.changed",
            {"run_id": self.id, "status": self.status.value},
            context=context,
        )


@dataclass(frozen=True)
class RunEvent:
    run_id: str
    seq: int
    at: datetime
    type: str
    data: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class RunFilter:
    member_id: str | None = None
    crew_id: str | None = None
    status: RunStatus | None = None
    origin: RunOrigin | None = None
    parent_run_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class Approval:
    id: str
    workspace_id: str
    run_id: str
    member_id: str
    version_id: str
    version_number: int
    tool: str
    effect_class: str
    arguments: dict[str, Any] = field(hash=False)
    call_id: str
    status: ApprovalStatus
    reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime
    #: An earlier attempt of this call started and its outcome is unknown (its worker
    #: stopped mid-call): approving repeats the call.
    outcome_unknown: bool = False
    #: When an undecided approval expires (None: made before approvals expired).
    expires_at: datetime | None = None
    #: The budget whose reached limit this approval is asked for (None: a checkpoint's).
    budget_id: str | None = None

    @classmethod
    def requested(
        cls,
        run: Run,
        call: ToolCall,
        effect_class: str,
        now: datetime,
        *,
        outcome_unknown: bool = False,
        timeout_seconds: float | None = None,
        budget_id: str | None = None,
    ) -> Approval:
        """A pending approval of ``call``, which ``run`` waits on, expiring after
        ``timeout_seconds``."""
        return cls(
            id=new_id("apr"),
            workspace_id=run.workspace_id,
            run_id=run.id,
            member_id=run.member_id,
            version_id=run.version_id,
            version_number=run.version_number,
            tool=call.name,
            effect_class=effect_class,
            arguments=call.arguments,
            call_id=call.id,
            status=ApprovalStatus.PENDING,
            reason=None,
            decided_by=None,
            decided_at=None,
            created_at=now,
            outcome_unknown=outcome_unknown,
            expires_at=None
            if timeout_seconds is None
            else now + timedelta(seconds=timeout_seconds),
            budget_id=budget_id,
        )


@dataclass(frozen=True)
class ApprovalFilter:
    status: ApprovalStatus | None = ApprovalStatus.PENDING
    run_id: str | None = None
    member_id: str | None = None
