"""Every capability's use cases, wired once over one database, one clock and the ports.

The composition root (``scaicrew.app``) builds one ``UseCases`` per app from its settings and
adapters; handlers reach a use case as ``use_cases().<capability>.<operation>(actor, ...)``.
Tests may build it over any database, or build a single capability over a fake store.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.access import Access
from domain.audit import Audit
from domain.authoring import Authoring, Deriver
from domain.budgets import Budgets
from domain.cost import Cost
from domain.database import Database
from domain.identity import IdentityProvider, Login, LoginSettings, SessionTokens
from domain.kernel.clock import Clock, SystemClock
from domain.kernel.errors import NotReady
from domain.kernel.ports import SecretBox
from domain.kernel.signals import SignalBus
from domain.members import Members
from domain.runs import Dispatcher, DispatchTurns, LanguageModel, Runs, RunSettings
from domain.stream import Stream, StreamHub, StreamSettings
from domain.subscriptions import (
    DeliveryPort,
    SubscriptionDeliverer,
    Subscriptions,
    SubscriptionSettings,
)
from domain.tools import HttpPort, Tools, ToolServerPort, ToolServerSettings
from domain.triggers import TriggerFiring, Triggers, WebhookSettings
from domain.workspaces import Workspaces


@dataclass(frozen=True)
class Ports:
    """What the domain needs from the outside world (implemented in ``scaicrew.adapters``)."""

    http: HttpPort
    model: LanguageModel
    deriver: Deriver
    secret_box: SecretBox
    session_tokens: SessionTokens
    tool_servers: ToolServerPort
    identity_provider: IdentityProvider | None = None
    #: Outbound subscription deliveries (None: this process delivers nothing).
    delivery: DeliveryPort | None = None


@dataclass(frozen=True)
class DomainSettings:
    """The settings the use cases read, grouped by capability (built from ``Settings``)."""

    tools: ToolServerSettings
    runs: RunSettings
    webhooks: WebhookSettings
    stream: StreamSettings
    login: LoginSettings
    subscriptions: SubscriptionSettings


class UseCases:
    """One service object per capability; a use case is a method of one of them."""

    def __init__(
        self,
        database: Database,
        ports: Ports,
        settings: DomainSettings,
        clock: Clock | None = None,
        *,
        schema_head: str | None = None,
    ) -> None:
        self.database = database
        # SQLite serialises every writer of the process: its dispatchers take turns for their
        # database work instead of fighting over the interpreter lock (ADR 0056).
        self._dispatch_turns = DispatchTurns() if database.is_sqlite else None
        #: The schema revision this code expects (None: any revision will do).
        self.schema_head = schema_head
        self.ports = ports
        self.settings = settings
        self.clock = clock or SystemClock()
        clock = self.clock
        self.workspaces = Workspaces(database, clock)
        self.access = Access(database, clock)
        self.login = Login(
            database, clock, ports.identity_provider, ports.session_tokens, settings.login
        )
        self.members = Members(database, clock)
        self.audit = Audit(database)
        self.authoring = Authoring(database, clock, ports.deriver)
        self.runs = Runs(database, clock)
        self.cost = Cost(database)
        self.budgets = Budgets(database, clock)
        self.tools = Tools(database, clock, ports.secret_box, ports.tool_servers, settings.tools)
        self.triggers = Triggers(database, clock, ports.secret_box)
        self.firing = TriggerFiring(database, clock, ports.secret_box, settings.webhooks)
        #: This process's live-stream subscribers, fed from ``signals`` (and the listener).
        self.hub = StreamHub(database, clock, settings.stream)
        self.stream = Stream(database, clock, self.hub)
        self.subscriptions = Subscriptions(
            database, clock, ports.secret_box, settings.subscriptions
        )

    @property
    def signals(self) -> SignalBus:
        """Where committed signals are published (the database's bus)."""
        return self.database.signals

    def check_ready(self) -> None:
        """Readiness: the database answers and its schema is at the expected revision.

        :raises NotReady: the schema is at another revision (migrations not run yet).
        :raises sqlalchemy.exc.OperationalError: the database cannot be reached.
        """
        revision = self.database.schema_revision()
        if self.schema_head is not None and revision != self.schema_head:
            raise NotReady(
                f"The database schema is at revision {revision or 'none'}, "
                f"not {self.schema_head}: run the migrations."
            )

    def dispatcher(self, worker_id: str) -> Dispatcher:
        """A dispatcher for one worker thread or process."""
        return Dispatcher(
            self.database,
            self.clock,
            self.ports.model,
            self.ports.http,
            self.settings.runs,
            worker_id,
            remote=self.tools.call_tool,
            turns=self._dispatch_turns,
        )

    def deliverer(self, worker_id: str) -> SubscriptionDeliverer:
        """A subscription delivery worker for one thread or process.

        :raises NotReady: no delivery port was configured.
        """
        if self.ports.delivery is None:
            raise NotReady("No delivery port is configured for subscriptions.")
        return SubscriptionDeliverer(
            self.database,
            self.clock,
            self.ports.secret_box,
            self.ports.delivery,
            self.settings.subscriptions,
            worker_id,
        )
