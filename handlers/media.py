"""Media types as RFC 9110 defines them, and what each operation of the contract exchanges.

``parse_media_type`` reads ``type/subtype; name=value; ...`` with case-insensitive type, subtype
and parameter names, optional whitespace and quoted values. ``parse_accept`` reads an ``Accept``
header into media ranges with their weights. ``OperationMedia`` says, per operation of the contract,
which media types it consumes and which its success responses produce.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from handlers.operations import handler_path, operations

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"^\s*({_TOKEN})/({_TOKEN})\s*(;.*)?$", re.DOTALL)
_PARAMETER = re.compile(rf'\s*;\s*({_TOKEN})\s*=\s*({_TOKEN}|"(?:[^"\\]|\\.)*")\s*', re.DOTALL)


class MalformedMediaType(ValueError):
    pass


@dataclass(frozen=True)
class MediaType:
    type: str
    subtype: str
    parameters: tuple[tuple[str, str], ...] = ()

    @property
    def essence(self) -> str:
        return f"{self.type}/{self.subtype}"

    def parameter(self, name: str) -> str | None:
        for key, value in self.parameters:
            if key == name:
                return value
        return None

    def matches(self, concrete: str) -> bool:
        """Whether this media range (``*/*``, ``type/*`` or exact) admits ``concrete``."""
        kind, _, sub = concrete.partition("/")
        if self.type == "*":
            return self.subtype == "*"
        return self.type == kind and self.subtype in ("*", sub)


def parse_media_type(value: str) -> MediaType:
    """Parse one media type; type, subtype and parameter names come back lower-case.

    :raises MalformedMediaType: the value is not ``type/subtype`` with well-formed parameters.
    """
    match = _MEDIA_TYPE.match(value)
    if match is None:
        raise MalformedMediaType(value)
    rest = match.group(3) or ""
    parameters: list[tuple[str, str]] = []
    position = 0
    while position < len(rest):
        found = _PARAMETER.match(rest, position)
        if found is None:
            raise MalformedMediaType(value)
        raw = found.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        parameters.append((found.group(1).lower(), raw))
        position = found.end()
    return MediaType(match.group(1).lower(), match.group(2).lower(), tuple(parameters))


def parse_accept(value: str) -> list[tuple[MediaType, float]]:
    """The media ranges of an ``Accept`` header with their ``q`` weights (unreadable ones are
    skipped, as RFC 9110 lets a server do)."""
    ranges = []
    for part in _split_outside_quotes(value):
        if not part.strip():
            continue
        try:
            media = parse_media_type(part)
        except MalformedMediaType:
            continue
        weight = 1.0
        q = media.parameter("q")
        if q is not None:
            try:
                weight = float(q)
            except ValueError:
                continue
        ranges.append((media, weight))
    return ranges


def _split_outside_quotes(value: str) -> list[str]:
    parts, current, quoted, escaped = [], [], False, False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def acceptable(accept: str, offered: Iterable[str]) -> bool:
    """Whether an ``Accept`` header admits one of the ``offered`` media types.

    A header with no readable range admits everything (as if absent); a range with ``q=0``
    excludes what it names unless a more specific range admits it.
    """
    ranges = parse_accept(accept)
    if not ranges:
        return True
    for concrete in offered:
        matching = [(media, weight) for media, weight in ranges if media.matches(concrete)]
        if not matching:
            continue
        # The most specific matching range decides (exact > type/* > */*).
        media, weight = max(matching, key=lambda mw: (mw[0].type != "*") + (mw[0].subtype != "*"))
        if weight > 0:
            return True
    return False


@dataclass(frozen=True)
class OperationMedia:
    consumes: tuple[str, ...]
    produces: tuple[str, ...]


class ContractMedia:
    """What each operation of the contract consumes and produces, by the id Connexion's router
    gives the operation it matched (the dotted path of its handler, ``handlers.operations``)."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self._by_routing_id = {
            handler_path(op["operationId"], list(op.get("tags", []))): _operation_media(op)
            for _, _, op in operations(spec)
        }

    def for_operation(self, routing_id: str) -> OperationMedia | None:
        return self._by_routing_id.get(routing_id)


def _operation_media(operation: Mapping[str, Any]) -> OperationMedia:
    body = operation.get("requestBody", {})
    consumes = tuple(media.lower() for media in body.get("content", {}))
    produces: list[str] = []
    for status, response in operation.get("responses", {}).items():
        if str(status).startswith(("2", "3")) and isinstance(response, dict):
            for media in response.get("content", {}):
                if media.lower() not in produces:
                    produces.append(media.lower())
    return OperationMedia(consumes, tuple(produces))
