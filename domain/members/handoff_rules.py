"""Rules on handoff declarations: single-branch per member and an acyclic workspace graph."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from domain.kernel.errors import RuleViolation
from domain.members.errors import HandoffCycle
from domain.members.model import Handoff


def check_single_branch(member_id: str, handoffs: Sequence[Handoff]) -> None:
    """Check one member's handoff list on its own.

    :raises RuleViolation: a self-handoff, a second unconditional handoff, or a target named
        twice; the pointer locates the offending entry.
    """
    seen: set[str] = set()
    unconditional_at: int | None = None
    for index, handoff in enumerate(handoffs):
        pointer = f"/handoffs/{index}"
        if handoff.target_member_id == member_id:
            raise RuleViolation(
                "handoff-self",
                f"{pointer}: a member cannot hand off to itself ({member_id}).",
                f"{pointer}/target_member_id",
            )
        if handoff.target_member_id in seen:
            raise RuleViolation(
                "handoff-duplicate-target",
                f"{pointer}: target {handoff.target_member_id} is already listed.",
                f"{pointer}/target_member_id",
            )
        seen.add(handoff.target_member_id)
        if handoff.condition is None:
            if unconditional_at is not None:
                raise RuleViolation(
                    "handoff-unconditional",
                    f"{pointer}: only one unconditional handoff is allowed; "
                    f"/handoffs/{unconditional_at} is already unconditional.",
                    f"{pointer}/condition",
                )
            unconditional_at = index


def find_cycle(
    graph: Mapping[str, Sequence[str]], member_id: str, targets: Sequence[str]
) -> list[str] | None:
    """Return a cycle through ``member_id`` if it handed off to ``targets``, else ``None``.

    ``graph`` maps every other member of the workspace to its current targets. The returned
    cycle starts and ends with ``member_id``: ``[m, a, b, m]``.
    """
    # A cycle through the new edges exists iff member_id is reachable from one of its targets.
    for first in targets:
        path = _path_to(graph, first, member_id)
        if path is not None:
            return [member_id, *path]
    return None


def _path_to(graph: Mapping[str, Sequence[str]], start: str, goal: str) -> list[str] | None:
    parents: dict[str, str | None] = {start: None}
    stack = [start]
    while stack:
        node = stack.pop()
        if node == goal:
            path = [node]
            while (parent := parents[path[-1]]) is not None:
                path.append(parent)
            return list(reversed(path))
        for nxt in graph.get(node, ()):
            if nxt not in parents:
                parents[nxt] = node
                stack.append(nxt)
    return None


def check_acyclic(
    graph: Mapping[str, Sequence[str]], member_id: str, handoffs: Sequence[Handoff]
) -> None:
    """Check that ``member_id`` handing off to ``handoffs`` keeps the graph acyclic.

    :raises HandoffCycle: naming the cycle and pointing at the entry that closes it.
    """
    for index, handoff in enumerate(handoffs):
        cycle = find_cycle(graph, member_id, [handoff.target_member_id])
        if cycle is not None:
            raise HandoffCycle(cycle, f"/handoffs/{index}/target_member_id")
