"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from handlers._http import ok, use_cases


def get_health() -> Any:
    return ok({"status": "ok"})


def get_ready() -> Any:
    use_cases().check_ready()
    return ok({"status": "ready"})
