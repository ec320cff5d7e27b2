"""Liveness."""

from __future__ import annotations

from typing import Any

from handlers._http import ok


def get_health() -> Any:
    return ok({"status": "ok"})
