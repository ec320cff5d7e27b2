"""Derive a whole member definition from a whole conversation (conversational authoring).

``Deriver`` is the port; ``OfflineDeriver`` is the deterministic default that reads plain
language: tool names it recognises from the catalog (and their synonyms), rigidity words,
approval wishes, and rule sentences ("never ...", "always ..."). The model-backed deriver
lives in ``scaicrew.adapters``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from domain.members import Definition, Rigidity, ToolSpec
from domain.tools import CATALOG, EffectClass


@dataclass(frozen=True)
class Derivation:
    name: str
    definition: Definition
    reply: str


class Deriver(Protocol):
    def derive(self, conversation: list[str], base: Definition | None) -> Derivation:
        """Derive the whole draft from every user message so far (oldest first).

        :raises ModelUnusable: the model behind it answered something unusable.
        """
        ...


_TOOL_WORDS: dict[str, tuple[str, ...]] = {
    "http_get": (
        "http_get",
        "fetch",
        "download",
        "look up",
        "read the page",
        "check the url",
        "get the url",
        "api",
        "website",
    ),
    "http_post": ("http_post", "post", "send", "notify", "webhook", "submit", "publish to"),
    "notes_read": (
        "notes_read",
        "read my notes",
        "recall",
        "look at notes",
        "previous notes",
        "remember",
    ),
    "notes_write": (
        "notes_write",
        "write a note",
        "take notes",
        "note down",
        "save a note",
        "keep a note",
        "make a note",
        "remember",
        "keep track",
        "log",
    ),
}
_RIGIDITY_WORDS: list[tuple[Rigidity, tuple[str, ...]]] = [
    (Rigidity.STRICT, ("strict", "exactly", "to the letter", "no improvising", "precisely")),
    (
        Rigidity.AUTONOMOUS,
        ("autonomous", "on its own", "on your own", "whatever it takes", "without supervision"),
    ),
    (Rigidity.ADAPTIVE, ("adaptive", "adapt", "flexible", "use judgement", "use judgment")),
    (Rigidity.GUIDED, ("guided", "follow the steps", "follow my instructions")),
]
_NO_APPROVAL = (
    "without approval",
    "without asking",
    "no approval",
    "don't ask",
    "do not ask",
    "no need to ask",
    "automatically",
)
_WANTS_APPROVAL = ("ask me", "ask first", "approval", "approve", "check with me", "confirm")
_RULE_START = re.compile(r"^(never|always|don't|do not|must|only|avoid)\b", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def _mentions(text: str, words: tuple[str, ...]) -> bool:
    return any(re.search(r"\b" + re.escape(w) + r"\b", text) for w in words)


def _name_from(objective: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", objective)[:6]
    return (" ".join(words).capitalize() or "New member")[:100]


class OfflineDeriver:
    """Deterministic plain-language deriver: same conversation, same draft."""

    def derive(self, conversation: list[str], base: Definition | None) -> Derivation:
        text = "\n".join(conversation)
        lowered = text.lower()
        sentences = [s for m in conversation for s in _sentences(m)]
        rules = [s for s in sentences if _RULE_START.match(s)]
        prose = [s for s in sentences if s not in rules]
        if base is None:
            objective = (prose[0] if prose else text)[:2000]
            instructions = " ".join(prose[1:])[:20000]
        else:  # editing an existing member: the conversation refines it, it does not replace it
            objective = base.objective
            added = [p for p in prose if p not in base.instructions]  # base may be a prior turn
            instructions = " ".join([base.instructions, *added]).strip()[:20000]
            rules = [*base.rules, *(r for r in rules if r not in base.rules)]

        # The latest message that expresses a wish decides it (a later turn may change it).
        rigidity = base.rigidity if base is not None else Rigidity.GUIDED
        for message in conversation:
            for candidate, words in _RIGIDITY_WORDS:
                if _mentions(message.lower(), words):
                    rigidity = candidate
                    break

        no_approval = wants_approval = False
        for message in conversation:
            if _mentions(message.lower(), _NO_APPROVAL):
                no_approval, wants_approval = True, False
            elif _mentions(message.lower(), _WANTS_APPROVAL):
                no_approval, wants_approval = False, True
        tools: list[ToolSpec] = list(base.tools) if base is not None else []
        declared = {t.name for t in tools}
        for name, words in _TOOL_WORDS.items():
            if name not in declared and _mentions(lowered, words):
                catalog = CATALOG[name]
                external = catalog.effect_class is not EffectClass.INTERNAL
                tools.append(
                    ToolSpec(
                        name=name,
                        effect_class=catalog.effect_class,
                        whitelisted=external and no_approval,
                        description=catalog.description,
                    )
                )
                declared.add(name)
        if wants_approval:
            tools = [ToolSpec(t.name, t.effect_class, False, t.description) for t in tools]

        definition = Definition(
            objective=objective.strip() or "Help the crew.",
            instructions=instructions,
            rules=tuple(r[:1000] for r in rules[:50]),
            rigidity=rigidity,
            tools=tuple(tools[:32]),
            input_schema=base.input_schema if base is not None else None,
            max_run_seconds=base.max_run_seconds if base is not None else None,
            approval_timeout_seconds=(base.approval_timeout_seconds if base is not None else None),
            on_approval_timeout=base.on_approval_timeout if base is not None else None,
        )
        names = ", ".join(t.name for t in definition.tools) or "no tools"
        reply = (
            f"I drafted a {rigidity.value} member to: {definition.objective} "
            f"It uses {names}"
            + (f" and keeps {len(definition.rules)} rule(s)." if definition.rules else ".")
        )
        return Derivation(_name_from(definition.objective), definition, reply)
