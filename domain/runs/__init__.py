"""Runs: starting them (one path for every origin), the dispatcher that executes them step by
step, their event timelines, and the human approvals that pause them."""

from domain.runs.dispatcher import Dispatcher, DispatchTurns, RunSettings
from domain.runs.errors import (
    ApprovalAlreadyDecided,
    IdempotencyKeyReused,
    InputSchemaMismatch,
    MemberArchived,
    NothingToRun,
    RunFinished,
)
from domain.runs.llm import (
    LanguageModel,
    ModelError,
    ModelReply,
    ToolCall,
    Usage,
    answers_in_process,
)
from domain.runs.model import (
    TRANSITIONS,
    Approval,
    ApprovalFilter,
    ApprovalStatus,
    IllegalTransition,
    Run,
    RunEvent,
    RunFilter,
    RunOrigin,
    RunState,
    RunStatus,
)
from domain.runs.offline_llm import OfflineLanguageModel
from domain.runs.repository import RunRepository, RunsTx
from domain.runs.start import RunRequest, check_input, queue_run
from domain.runs.use_cases import Runs

__all__ = [
    "Approval",
    "ApprovalAlreadyDecided",
    "ApprovalFilter",
    "ApprovalStatus",
    "DispatchTurns",
    "Dispatcher",
    "IdempotencyKeyReused",
    "IllegalTransition",
    "InputSchemaMismatch",
    "LanguageModel",
    "MemberArchived",
    "ModelError",
    "ModelReply",
    "NothingToRun",
    "OfflineLanguageModel",
    "Run",
    "RunEvent",
    "RunFilter",
    "RunFinished",
    "RunOrigin",
    "RunRepository",
    "RunRequest",
    "RunSettings",
    "RunState",
    "RunStatus",
    "Runs",
    "RunsTx",
    "TRANSITIONS",
    "ToolCall",
    "Usage",
    "answers_in_process",
    "check_input",
    "queue_run",
]
