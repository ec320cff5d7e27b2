"""Members: crews, members and their immutable published versions, the compiler that turns a
definition into a program, handoffs between members, and run-input schemas."""

from domain.members.compiler import Artifact, compile_definition, needs_approval
from domain.members.diff import Change, DefinitionDiff, ToolChange, diff_definitions
from domain.members.errors import CrewNotEmpty, HandoffCycle, MemberInUse, NoDraftToPublish
from domain.members.input_schema import input_problems, nul_pointer
from domain.members.model import (
    Crew,
    Definition,
    Handoff,
    HandoffCondition,
    HandoffSet,
    Member,
    Rigidity,
    ToolSpec,
    Version,
    VersionStatus,
)
from domain.members.repository import MemberRepository, MembersTx
from domain.members.use_cases import (
    Members,
    add_member_with_draft,
    check_definition,
    put_draft,
    runnable,
)
from domain.tools import EffectClass

__all__ = [
    "Artifact",
    "Change",
    "Crew",
    "CrewNotEmpty",
    "Definition",
    "DefinitionDiff",
    "EffectClass",
    "Handoff",
    "HandoffCondition",
    "HandoffCycle",
    "HandoffSet",
    "Member",
    "MemberInUse",
    "MemberRepository",
    "Members",
    "MembersTx",
    "NoDraftToPublish",
    "Rigidity",
    "ToolChange",
    "ToolSpec",
    "Version",
    "VersionStatus",
    "add_member_with_draft",
    "check_definition",
    "compile_definition",
    "diff_definitions",
    "input_problems",
    "needs_approval",
    "nul_pointer",
    "put_draft",
    "runnable",
]
