"""The one place where durabot's concrete parts are chosen and wired together."""

from __future__ import annotations

from dataclasses import dataclass

from durabot.actions.add_machine import AddMachineActions
from durabot.actions.intake import IntakeActions
from durabot.actions.library import BUTTON_PREFIX as LIBRARY_BUTTONS
from durabot.actions.library import Library
from durabot.actions.my_data import BUTTON_PREFIX as MY_DATA_BUTTONS
from durabot.actions.my_data import DELETE_PRIVATE, EXPORT_PRIVATE, DeleteMyData, ExportMyData
from durabot.clock import Clock, utc_now
from durabot.config import Settings
from durabot.engine.ports import UnitOfWorkFactory
from durabot.engine.registry import PrivateOnly, Registry
from durabot.engine.runner import Engine
from durabot.flows.add_machine import ADD_MACHINE
from durabot.flows.eb1a_intake import EB1A_INTAKE
from durabot.storage.database import Database
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWorkFactory

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
    uow_factory: UnitOfWorkFactory, settings: Settings, clock: Clock = utc_now, registry: Registry | None = None
) -> Engine:
    """An engine over ``uow_factory`` with the standard registry."""
    return Engine(uow_factory, registry or build_registry(clock), ttl=settings.state_ttl, clock=clock)


@dataclass
class App:
    """The wired service: its database, units of work and engine."""

    settings: Settings
    database: Database
    uow_factory: SqlAlchemyUnitOfWorkFactory
    engine: Engine
    engine_registry: Registry

    async def close(self) -> None:
        """Release the database connections."""
        await self.database.dispose()


def build_app(settings: Settings | None = None, clock: Clock = utc_now) -> App:
    """Wire everything for ``settings`` (read from the environment when not given)."""
    settings = settings or Settings()
    database = Database(settings.database_url)
    uow_factory = SqlAlchemyUnitOfWorkFactory(database, clock)
    registry = build_registry(clock)
    return App(settings, database, uow_factory, build_engine(uow_factory, settings, clock, registry), registry)
