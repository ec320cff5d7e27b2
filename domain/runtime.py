"""What run use cases and the dispatcher need besides the database: signals, model, HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.deriver import Deriver, OfflineDeriver
from domain.offline_model import OfflineModel
from domain.ports import HttpPort, Model, SecretBox
from domain.signals import SignalBus
from domain.stream import StreamHub, StreamSettings
from domain.unit_of_work import UnitOfWorkFactory


@dataclass(frozen=True)
class RunSettings:
    handoff_max_depth: int = 8
    lease_seconds: float = 30.0
    max_steps: int = 32
    max_attempts: int = 3
    cost_units_per_1k_tokens: float = 1.0
    #: How long a webhook delivery key (signature, Idempotency-Key, body hash) is remembered.
    webhook_dedup_seconds: float = 86_400.0
    #: Refused webhook deliveries logged per trigger and minute; more are refused unlogged.
    webhook_refusals_logged_per_minute: int = 60


@dataclass
class Runtime:
    uow: UnitOfWorkFactory
    http: HttpPort
    model: Model = field(default_factory=OfflineModel)
    deriver: Deriver = field(default_factory=OfflineDeriver)
    settings: RunSettings = field(default_factory=RunSettings)
    stream_settings: StreamSettings = field(default_factory=StreamSettings)
    #: Encrypts webhook trigger secrets at rest (None: webhook triggers cannot be created).
    secret_box: SecretBox | None = None
    #: The unit-of-work factory's bus: committed signals are published there.
    signals: SignalBus = field(init=False)
    #: This process's live-stream subscribers, fed from ``signals`` (and the listener).
    stream: StreamHub = field(init=False)

    def __post_init__(self) -> None:
        self.signals = self.uow.signals
        self.stream = StreamHub(self.uow, self.stream_settings)
