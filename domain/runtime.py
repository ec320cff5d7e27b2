"""What run use cases and the dispatcher need besides the database: signals, model, HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.deriver import Deriver, OfflineDeriver
from domain.offline_model import OfflineModel
from domain.ports import HttpPort, Model
from domain.signals import SignalBus
from domain.unit_of_work import UnitOfWorkFactory


@dataclass(frozen=True)
class RunSettings:
    handoff_max_depth: int = 8
    lease_seconds: float = 30.0
    max_steps: int = 32
    max_attempts: int = 3
    cost_units_per_1k_tokens: float = 1.0


@dataclass
class Runtime:
    uow: UnitOfWorkFactory
    http: HttpPort
    model: Model = field(default_factory=OfflineModel)
    deriver: Deriver = field(default_factory=OfflineDeriver)
    signals: SignalBus = field(default_factory=SignalBus)
    settings: RunSettings = field(default_factory=RunSettings)
