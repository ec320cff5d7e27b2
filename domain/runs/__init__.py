"""Runs: starting them (one path for every origin), the dispatcher that executes them step by
step, their event timelines, and the human approvals that pause them."""

from domain.runs.dispatcher import Dispatcher, RunSettings
from domain.runs.errors import (
    ApprovalAlreadyDecided,
    IdempotencyKeyReused,
    InputSchemaMismatch,
    MemberArchived,
    NothingToRun,
    RunFinished,
)
from domain.runs.llm import LanguageModel, ModelError, ModelReply, ToolCall, Usage
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
    "Dispatcher",
    "IdempotencyKeyReused",
    "IllegalTransition",
    "InputSchemaMismatch",
    "LanguageModel",
    "ModelError",
    "MemberArchived",
    "ModelReply",
    "NothingToRun",
    "OfflineLanguageModel",
    "Run",
    "RunEvent",
    "RunFinished",
    "RunFilter",
    "RunOrigin",
    "RunRepository",
    "RunRequest",
    "RunSettings",
    "RunState",
    "RunStatus",
    "Runs",
    "TRANSITIONS",
    "RunsTx",
    "ToolCall",
    "Usage",
    "check_input",
    "queue_run",
]
