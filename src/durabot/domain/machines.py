"""Machines in a technician's equipment library, and the rules for saving them."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

NICKNAME_MIN_LENGTH = 2
NICKNAME_MAX_LENGTH = 100
NICKNAME_KEY_MAX_LENGTH = 300
"""The most characters a nickname's key may have (the size of ``user_machines.nickname_key``)."""

_INVISIBLE = re.compile(
    "[\u200b-\u200d\u2060\ufeff"  # zero-width space, non-joiner, joiner; word joiner; byte-order mark
    "\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c]"  # bidi marks, embeddings, overrides and isolates
)
"""Characters that show nothing but would make two nicknames that look the same differ."""


def clean_nickname(raw: str) -> str:
    """A nickname as it is stored: invisible characters dropped, NFKC-normalised, white space trimmed and folded.

    ``"Press\u200b3"`` and ``"Press3"``, or ``"Ｐｒｅｓｓ 3"`` and ``"Press 3"``, clean to the same text.
    """
    visible = _INVISIBLE.sub("", raw)
    return " ".join(unicodedata.normalize("NFKC", visible).split())


def nickname_key(nickname: str) -> str:
    """The form two nicknames are compared in: cleaned, case-folded and normalised again."""
    return unicodedata.normalize("NFKC", clean_nickname(nickname).casefold())


def nickname_problem(nickname: str) -> str | None:
    """Why a cleaned nickname cannot be saved, or ``None`` when it can."""
    if not NICKNAME_MIN_LENGTH <= len(nickname) <= NICKNAME_MAX_LENGTH:
        return (
            f"A nickname needs {NICKNAME_MIN_LENGTH} to {NICKNAME_MAX_LENGTH} characters; "
            f"yours has {len(nickname)}."
        )
    if len(nickname_key(nickname)) > NICKNAME_KEY_MAX_LENGTH:
        return "That nickname is too long to compare with your others. Please choose a shorter one."
    return None


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
    photo_file_id: str | None = None
    """The Bot API's id of the machine's photo (Telegram keeps the image), if the user sent one."""


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

    async def forget_user(self, user_id: int) -> int:
        """Remove every machine of the user; returns how many."""


async def save_machine(machines: MachineRepository, draft: MachineDraft) -> Machine:
    """Save ``draft`` unless the user already has a machine of that nickname.

    The nickname is cleaned first (:func:`clean_nickname`), so a draft from a conversation
    begun before nicknames were normalised is saved the same way as a new one.

    Raises:
        DuplicateNicknameError: the nickname is taken by one of the user's machines.
    """
    draft = replace(draft, nickname=clean_nickname(draft.nickname))
    existing = await machines.find_by_nickname(draft.user_id, draft.nickname)
    if existing is not None:
        raise DuplicateNicknameError(existing)
    return await machines.add(draft)
