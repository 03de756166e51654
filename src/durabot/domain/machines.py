"""Machines in a technician's equipment library, and the rules for saving them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

NICKNAME_MIN_LENGTH = 2
NICKNAME_MAX_LENGTH = 100


def clean_nickname(raw: str) -> str:
    """Trim a nickname and fold inner runs of white space to one space."""
    return " ".join(raw.split())


def nickname_key(nickname: str) -> str:
    """The form two nicknames are compared in: cleaned and case-folded."""
    return clean_nickname(nickname).casefold()


@dataclass(frozen=True)
class MachineDraft:
    """A machine as the user described it, before it has been saved."""

    user_id: int
    nickname: str
    manufacturer: str | None = None
    model_number: str | None = None
    serial_number: str | None = None
    location: str | None = None
    notes: str | None = None


@dataclass(frozen=True)
class Machine(MachineDraft):
    """A saved machine."""

    id: int = 0
    created_at: datetime | None = None


class DuplicateNicknameError(Exception):
    """The user already has a machine with this nickname (ignoring case)."""

    def __init__(self, existing: Machine) -> None:
        super().__init__(f"user {existing.user_id} already has a machine called {existing.nickname!r}")
        self.existing = existing


class MachineRepository(Protocol):
    """Where machines are kept."""

    async def add(self, draft: MachineDraft) -> Machine:
        """Store a new machine and return it with its id."""

    async def find_by_nickname(self, user_id: int, nickname: str) -> Machine | None:
        """The user's machine whose nickname matches ``nickname`` ignoring case, if any."""

    async def count(self, user_id: int) -> int:
        """How many machines the user has."""

    async def newest_first(self, user_id: int, offset: int, limit: int) -> list[Machine]:
        """A page of the user's machines, most recently added first."""


async def save_machine(machines: MachineRepository, draft: MachineDraft) -> Machine:
    """Save ``draft`` unless the user already has a machine of that nickname.

    Raises:
        DuplicateNicknameError: the nickname is taken by one of the user's machines.
    """
    existing = await machines.find_by_nickname(draft.user_id, draft.nickname)
    if existing is not None:
        raise DuplicateNicknameError(existing)
    return await machines.add(draft)
