"""/export_my_data and /delete_my_data: users see everything the bot keeps about them, and can delete it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import structlog

from durabot.clock import Clock, utc_now
from durabot.domain.cases import CaseService, IntakeProgress
from durabot.engine.conversation import Conversation, Tombstone
from durabot.engine.ports import Domains
from durabot.engine.registry import PrivateOnly
from durabot.replies import Button, Document, Outgoing, Reply
from durabot.sanitise import storable_text

log = structlog.get_logger("durabot.my_data")

BUTTON_PREFIX = "mydata:"
DELETE, KEEP = "delete", "keep"
CONFIRM_WINDOW = timedelta(hours=1)
"""How long the "Yes, delete" button of one /delete_my_data works."""

EXPORT_FILENAME = "my-data.json"
EXPORT_PRIVATE = PrivateOnly("Please message me privately to get your data.", "export_my_data")
DELETE_PRIVATE = PrivateOnly("Please message me privately to delete your data.", "delete_my_data")

CONFIRM_QUESTION = (
    "Delete your data? This removes your equipment library, your unfinished conversations, any intake you "
    "have not completed, and the text of your messages to me and of my replies. A completed intake stays "
    "with the practice. This can't be undone."
)
KEPT_NOTHING = "Nothing was deleted; your data is as it was."
CONFIRMATION_EXPIRED = "That confirmation has expired, and nothing was deleted. Send /delete_my_data to start again."


def _plain(value: Any) -> Any:
    """JSON for what :func:`json.dumps` does not know: timestamps, ids and read-only mappings."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot export a {type(value).__name__}")


def _conversation(conversation: Conversation) -> dict[str, Any]:
    return {
        "flow": conversation.flow_name,
        "chat_id": conversation.chat_id,
        "answers": dict(conversation.answers.values),
        "started_at": conversation.started_at,
        "updated_at": conversation.updated_at,
        "expires_at": conversation.expires_at,
    }


def _tombstone(tombstone: Tombstone) -> dict[str, Any]:
    return {"flow": tombstone.flow_name, "chat_id": tombstone.chat_id, "expired_at": tombstone.expired_at}


async def everything_about(domains: Domains, user_id: int, now: datetime) -> dict[str, Any]:
    """Everything stored about the user: machines, cases with their intake progress, conversations."""
    machines = await domains.machines.newest_first(user_id, 0, await domains.machines.count(user_id))
    progress: dict[UUID, IntakeProgress] = {row.case_id: row for row in await domains.intake.for_user(user_id)}
    cases = [
        {**dataclasses.asdict(case), "intake_progress": progress.pop(case.case_id, None)}
        for case in await CaseService(domains.cases).list_for_user(user_id)
    ]
    conversations, tombstones = await domains.user_records.of_user(user_id)
    return {
        "user_id": user_id,
        "exported_at": now,
        "machines": [dataclasses.asdict(machine) for machine in reversed(machines)],
        "cases": cases,
        "intake_progress_without_case": list(progress.values()),
        "conversations": [_conversation(conversation) for conversation in conversations],
        "expired_conversations": [_tombstone(tombstone) for tombstone in tombstones],
    }


def to_json(data: Any) -> str:
    """Readable JSON of exported data (dataclasses, timestamps and ids included)."""

    def convert(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        return _plain(value)

    return storable_text(json.dumps(data, default=convert, ensure_ascii=False, indent=2))


class ExportMyData:
    """``/export_my_data``: a JSON file of everything stored about the user."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock

    async def run(self, domains: Domains, user_id: int, argument: str) -> list[Outgoing]:
        data = await everything_about(domains, user_id, self._clock())
        log.info("my_data.exported", user_id=user_id, machines=len(data["machines"]), cases=len(data["cases"]))
        caption = "Everything I keep about you, as JSON. Send /delete_my_data if you want it deleted."
        return [Document(EXPORT_FILENAME, to_json(data), caption)]


def _counted(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


class DeleteMyData:
    """``/delete_my_data``: asks to confirm with a button, then deletes all the user's data but completed intakes."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock

    async def run(self, domains: Domains, user_id: int, argument: str) -> list[Reply]:
        issued = int(self._clock().timestamp())
        buttons = (
            (Button("Yes, delete", f"{BUTTON_PREFIX}{DELETE}:{issued}"), Button("Keep my data", BUTTON_PREFIX + KEEP)),
        )
        return [Reply(CONFIRM_QUESTION, buttons)]

    async def press(self, domains: Domains, user_id: int, data: str) -> list[Reply] | None:
        if data == KEEP:
            return [Reply(KEPT_NOTHING)]
        action, _, issued = data.partition(":")
        if action != DELETE or not (issued.isascii() and issued.isdigit()):
            return None
        age = self._clock().timestamp() - int(issued)
        if not 0 <= age <= CONFIRM_WINDOW.total_seconds():
            return [Reply(CONFIRMATION_EXPIRED)]
        return [Reply(await self.delete(domains, user_id))]

    async def delete(self, domains: Domains, user_id: int) -> str:
        """Delete the user's data in the step's transaction; returns what to tell them (what went, what stayed)."""
        machines = await domains.machines.forget_user(user_id)
        conversations = await domains.user_records.forget_user(user_id)
        cases, kept = await CaseService(domains.cases).delete_unfinished(user_id, domains.intake)
        log.info(
            "my_data.deleted",
            user_id=user_id,
            machines=machines,
            conversations=conversations,
            cases=cases,
            kept_cases=len(kept),
        )
        counted = [(machines, "machine"), (conversations, "unfinished conversation"), (cases, "unfinished intake")]
        parts = [_counted(number, noun) for number, noun in counted if number]
        listed = ", ".join(parts) + " and " if parts else ""
        deleted = f"Done. I deleted {listed}the text of your messages to me and of my replies."
        if not kept:
            return f"{deleted} Nothing else about you is kept."
        return (
            f"{deleted}\n\nKept: your completed intake ({_counted(len(kept), 'case')}) stays with the practice, "
            "which needs it for your case. Please ask the practice if you want it removed."
        )
