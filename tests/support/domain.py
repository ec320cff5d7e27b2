"""Domain objects for tests that drive use cases directly: settings with the defaults of
``scaicrew.settings`` (the one place defaults live), and dispatchers over a database."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from domain.database import Database
from domain.kernel import Clock, ManualClock, SystemClock
from domain.runs import (
    Dispatcher,
    DispatchTurns,
    LanguageModel,
    OfflineLanguageModel,
    RunSettings,
)
from domain.stream import StreamSettings
from domain.triggers import Firing, TriggerFiring, WebhookSettings
from domain.use_cases import UseCases
from scaicrew.adapters.http_tools import AllowListedHttp
from scaicrew.settings import Settings

_DEFAULTS = Settings(env="test").domain_settings()


def run_settings(**changes: Any) -> RunSettings:
    """The default run settings with ``changes``."""
    return replace(_DEFAULTS.runs, **changes)


def webhook_settings(**changes: Any) -> WebhookSettings:
    return replace(_DEFAULTS.webhooks, **changes)


def stream_settings(**changes: Any) -> StreamSettings:
    return replace(_DEFAULTS.stream, **changes)


def dispatcher(
    database: Database,
    worker_id: str,
    *,
    model: LanguageModel | None = None,
    clock: Clock | None = None,
    turns: DispatchTurns | None = None,
    **settings: Any,
) -> Dispatcher:
    """A dispatcher over ``database`` with the offline model and no reachable HTTP host."""
    return Dispatcher(
        database,
        clock or SystemClock(),
        model or OfflineLanguageModel(),
        AllowListedHttp((), 1.0),
        run_settings(**settings),
        worker_id,
        turns=turns,
    )


def firing_at(use_cases: UseCases, at: datetime, **webhooks: Any) -> TriggerFiring:
    """Trigger firing over ``use_cases``' database with a clock stopped at ``at``."""
    return TriggerFiring(
        use_cases.database,
        ManualClock(at),
        use_cases.ports.secret_box,
        replace(use_cases.settings.webhooks, **webhooks),
    )


def tick_at(use_cases: UseCases, at: datetime) -> list[Firing]:
    """One scheduler tick as of ``at``."""
    return firing_at(use_cases, at).tick()
