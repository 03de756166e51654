"""The one place where durabot's concrete parts are chosen and wired together.

:func:`build_app` builds what needs only the settings (database, engine, observers); once the
service has connected to the Bot API, :func:`build_telegram_parts` builds what talks to it (the
relay with its rate limits, the webhook server or the poller with its lease).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from telegram import Bot

from durabot.actions.add_machine import AddMachineActions
from durabot.actions.intake import IntakeActions
from durabot.actions.library import BUTTON_PREFIX as LIBRARY_BUTTONS
from durabot.actions.library import Library
from durabot.actions.my_data import BUTTON_PREFIX as MY_DATA_BUTTONS
from durabot.actions.my_data import DELETE_PRIVATE, EXPORT_PRIVATE, DeleteMyData, ExportMyData
from durabot.clock import Clock, utc_now
from durabot.config import Settings
from durabot.console.funnel import FunnelRecorder
from durabot.console.health import Health
from durabot.console.metrics import Metrics
from durabot.engine.ports import UnitOfWorkFactory
from durabot.engine.registry import PrivateOnly, Registry
from durabot.engine.runner import Engine
from durabot.flows.add_machine import ADD_MACHINE
from durabot.flows.eb1a_intake import EB1A_INTAKE
from durabot.journal.mirror import Mirror
from durabot.journal.notice import NotSavedNotice
from durabot.journal.outage import JournalLease, OutageMonitor
from durabot.journal.replay import Replayer
from durabot.journal.routing import JournalingUnitOfWorkFactory, Route
from durabot.journal.store import Journal
from durabot.observe import Observer, Observers, Wakeups
from durabot.storage.database import Database
from durabot.storage.leader import LeaderLease
from durabot.storage.outbox_queue import RELAY_CONNECTIONS, SqlAlchemyOutboxQueue
from durabot.storage.relay_workers import RelayWorkers
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWorkFactory
from durabot.transport.polling import Poller
from durabot.transport.rate_limits import RateLimits
from durabot.transport.rate_share import LIVE_FOR, RateShare
from durabot.transport.relay import OutboxRelay
from durabot.transport.telegram import bot_id_of, known_username
from durabot.transport.telegram_sender import TelegramSender
from durabot.transport.webhook import WebhookServer

ABOUT = (
    "I take you through your EB-1A case intake, and I keep your equipment library. "
    "I remember where you are, so you can stop at any question and carry on later."
)
INTAKE_PRIVATE = PrivateOnly("Please message me privately to continue your intake.", "intake")
"""The intake asks for personal data: it runs in private chats only (``/start intake`` carries on there)."""


def build_registry(clock: Clock = utc_now, bot_username: str | None = None) -> Registry:
    """Every flow, command and button the bot understands.

    Args:
        clock: Where flows and commands read the time.
        bot_username: The bot's username, for the links that take a group's user to the private chat.
    """
    registry = Registry(about=ABOUT, bot_username=bot_username)
    registry.add_flow(ADD_MACHINE, AddMachineActions(), "add a machine to your library")
    registry.add_flow(
        EB1A_INTAKE,
        IntakeActions(EB1A_INTAKE, clock),
        "start (or resume) your EB-1A case intake",
        resume_command="intake_resume",
        cancel_command="intake_cancel",
        status_command="intake_status",
        private=INTAKE_PRIVATE,
    )
    library = Library()
    registry.add_command("library", library, "list your machines, newest first")
    registry.add_buttons(LIBRARY_BUTTONS, library)
    registry.add_command(
        "export_my_data", ExportMyData(clock), "get a file of everything I keep about you", EXPORT_PRIVATE
    )
    deletion = DeleteMyData(clock)
    registry.add_command("delete_my_data", deletion, "delete your data (asks first)", DELETE_PRIVATE)
    registry.add_buttons(MY_DATA_BUTTONS, deletion, DELETE_PRIVATE)
    return registry


def build_engine(
    uow_factory: UnitOfWorkFactory,
    settings: Settings,
    clock: Clock = utc_now,
    registry: Registry | None = None,
    observer: Observer | None = None,
) -> Engine:
    """An engine over ``uow_factory`` with the standard registry, reporting to ``observer``."""
    registry = registry or build_registry(clock)
    return Engine(
        uow_factory,
        registry,
        ttl=settings.state_ttl,
        clock=clock,
        concurrency=settings.processing_concurrency,
        observer=observer,
    )


def pool_size(settings: Settings) -> int:
    """Connections the service keeps open: one per step in flight, the relay's, and one each for the lease, the relay's
    heartbeat and the cleanup."""
    return settings.processing_concurrency + RELAY_CONNECTIONS + 3


@dataclass
class Outage:
    """Outage mode's parts (G8): the journal, its write-through, where steps go, and the monitor that switches."""

    journal: Journal
    mirror: Mirror
    route: Route
    monitor: OutageMonitor


def build_outage(
    settings: Settings,
    database: Database,
    primary: SqlAlchemyUnitOfWorkFactory,
    registry: Registry,
    clock: Clock,
    observer: Observer,
) -> tuple[JournalingUnitOfWorkFactory, Outage] | None:
    """The journal and its parts when the primary is PostgreSQL and ``JOURNAL_PATH`` is set; ``None`` otherwise."""
    path = settings.journal_file
    if path is None:
        return None
    journal, mirror, route = Journal(path, clock), Mirror(path), Route()
    replayer = Replayer(journal, primary, registry, settings.state_ttl, clock)
    monitor = OutageMonitor(database, journal, route, replayer, settings.outage_grace_seconds, observer=observer)
    return JournalingUnitOfWorkFactory(primary, journal, route, mirror), Outage(journal, mirror, route, monitor)


@dataclass
class App:
    """The wired service: its database, units of work, engine and observers.

    Attributes:
        observers: Everything that watches the service; add one (metrics, say) with ``observers.add``.
        wakeups: The events the service's loops wait on; one of :attr:`observers`.
    """

    settings: Settings
    database: Database
    uow_factory: SqlAlchemyUnitOfWorkFactory
    engine: Engine
    engine_registry: Registry
    observers: Observers
    wakeups: Wakeups
    clock: Clock = utc_now
    outage: Outage | None = None
    metrics: Metrics | None = None
    health: Health | None = None
    funnel: FunnelRecorder | None = None

    async def close(self) -> None:
        """Release the database connections (and the journal's)."""
        await self.database.dispose()
        if self.outage is not None:
            await self.outage.journal.close()


def build_app(settings: Settings | None = None, clock: Clock = utc_now, observers: Iterable[Observer] = ()) -> App:
    """Wire everything for ``settings`` (read from the environment when not given), reporting to ``observers`` too."""
    settings = settings or Settings()
    database = Database(settings.database_url, pool_size=pool_size(settings))
    uow_factory = SqlAlchemyUnitOfWorkFactory(database, clock)
    registry = build_registry(clock)
    wakeups = Wakeups()
    metrics, health = Metrics(), Health(database)
    funnel = FunnelRecorder(clock)
    watching = Observers([wakeups, metrics, health, funnel, *observers])
    outage = build_outage(settings, database, uow_factory, registry, clock, watching)
    steps: UnitOfWorkFactory = uow_factory if outage is None else outage[0]
    if outage is not None:
        watching.add(outage[1].monitor)
    engine = build_engine(steps, settings, clock, registry, watching)
    return App(
        settings, database, uow_factory, engine, registry, watching, wakeups, clock, outage[1] if outage else None, metrics, health,
        funnel=funnel,
    )


@dataclass
class TelegramParts:
    """What talks to Telegram for one connected bot: the relay and its rate share, and the webhook or the poller.

    Attributes:
        relay: Sends the outbox, within :attr:`rate_share`'s part of the bot's overall rate.
        rate_share: Heartbeats this relay among the bot's relays and keeps its share of the rate.
        webhook: The webhook server, when ``WEBHOOK_URL`` is set (not started yet).
        lease: The right to poll, when polling.
        new_poller: A fresh poller for each term as leader (its first ``getUpdates`` has no offset), when polling.
    """

    relay: OutboxRelay
    rate_share: RateShare
    webhook: WebhookServer | None = None
    lease: LeaderLease | JournalLease | None = None
    new_poller: Callable[[], Poller] | None = None


def build_telegram_parts(app: App, bot: Bot) -> TelegramParts:
    """Wire the relay, and the webhook server or the poller with its lease, for ``bot`` (initialised)."""
    settings, bot_id = app.settings, bot_id_of(bot.token)
    overall, per_chat = settings.send_rates
    limits = RateLimits(overall, per_chat)
    relay = OutboxRelay(
        SqlAlchemyOutboxQueue(app.database, app.clock, chat_rate=per_chat),
        TelegramSender(bot),
        app.clock,
        limits=limits,
        observer=app.observers,
        wakeups=app.wakeups,
    )
    rate_share = RateShare(RelayWorkers(app.database, bot_id, LIVE_FOR, clock=app.clock), limits, overall)
    if app.outage is not None:
        journal = app.outage.journal

        def journal_relay() -> OutboxRelay:
            queue = SqlAlchemyOutboxQueue(journal.database, app.clock, chat_rate=per_chat)
            return OutboxRelay(queue, TelegramSender(bot), app.clock, limits=limits, observer=app.observers, wakeups=app.wakeups)

        app.outage.monitor.new_relay = journal_relay
    if settings.webhook_url:
        assert settings.webhook_secret is not None  # the settings refuse a webhook URL without one
        webhook = WebhookServer(
            app.engine,
            settings.webhook_url,
            settings.webhook_secret.get_secret_value(),
            settings.webhook_listen_host,
            settings.webhook_listen_port,
            app.observers,
            bot_id=bot_id,
            bot_username=known_username(bot),
        )
        return TelegramParts(relay, rate_share, webhook=webhook)

    outage = app.outage
    not_saved = None if outage is None else NotSavedNotice(bot, lambda: outage.monitor.engaged)

    def new_poller() -> Poller:
        return Poller(bot, app.engine, app.observers, not_saved=not_saved)

    leader = LeaderLease(app.database)
    lease = leader if app.outage is None else JournalLease(leader, app.outage.monitor)
    return TelegramParts(relay, rate_share, lease=lease, new_poller=new_poller)
