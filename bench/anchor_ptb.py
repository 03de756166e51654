"""The anchor: the same add-machine conversation in python-telegram-bot 22, with PicklePersistence holding 10k conversations.

What is measured, in this process, one update at a time (PTB's default, ``concurrent_updates``
off) with eight conversations interleaved:

* **as shipped**: ``Application.process_update`` on an ``Update`` parsed from JSON, through a
  persistent ``ConversationHandler`` whose handlers keep the answers in ``chat_data`` and reply
  with ``reply_text``. The bot is offline: a ``BaseRequest`` that answers ``getMe`` and
  ``sendMessage`` in memory, so a reply costs PTB's own encoding and decoding and no network.
  Nothing is written to disk during a step: PTB writes persistence on a timer (60 s by default),
  so a crash loses up to a minute of steps.
* **written every step**: the same, followed by ``Application.update_persistence()`` and
  ``PicklePersistence.flush()`` after each update, which rewrites the whole pickle file (every
  stored conversation and its ``chat_data``) — what it takes to keep a step once it is answered.
  The file is not fsynced, so even this is weaker than durabot's commit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    PersistenceInput,
    PicklePersistence,
    filters,
)
from telegram.request import BaseRequest, RequestData

from common import ANSWERS, Ids, Run

FIELDS = ("nickname", "manufacturer", "model_number", "serial_number", "location", "notes")
CONVERSATION = "add_machine"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}
STORED_CHATS_FROM = 10**12


class OfflineRequest(BaseRequest):
    """A Bot API that lives in memory: ``getMe`` answers the bench bot, ``sendMessage`` echoes a message back."""

    def __init__(self) -> None:
        self._message_ids = iter(range(1, 10**12))

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        api_method = url.rsplit("/", 1)[-1]
        parameters = request_data.parameters if request_data else {}
        result: Any = True
        if api_method == "getMe":
            result = BOT_USER
        elif api_method == "sendMessage":
            chat = {"id": int(str(parameters["chat_id"])), "type": "private"}
            result = {"message_id": next(self._message_ids), "date": int(time.time()), "chat": chat,
                      "from": BOT_USER, "text": parameters["text"]}
        return 200, json.dumps({"ok": True, "result": result}).encode()


async def begin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """``/addmachine``: a fresh set of answers and the first question."""
    assert update.message is not None and context.chat_data is not None
    context.chat_data["answers"] = {}
    await update.message.reply_text("Step 1 of 6 · Nickname\nWhat do you call this machine?")
    return 0


def answer(index: int) -> Any:
    """The handler of question ``index``: keep the answer, ask the next question or say it is saved."""

    async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        assert update.message is not None and context.chat_data is not None
        context.chat_data["answers"][FIELDS[index]] = update.message.text
        if index + 1 < len(FIELDS):
            await update.message.reply_text(f"Step {index + 2} of 6 · {FIELDS[index + 1]}")
            return index + 1
        saved = context.chat_data.pop("answers")
        await update.message.reply_text(f"Saved “{saved['nickname']}” to your library.")
        return ConversationHandler.END

    return handle


def update_json(update_id: int, chat: int, text: str) -> dict[str, Any]:
    """An update as Telegram would send it for ``text`` typed in a private chat."""
    message: dict[str, Any] = {
        "message_id": update_id, "date": 1_700_000_000, "text": text,
        "chat": {"id": chat, "type": "private"}, "from": {"id": chat, "is_bot": False, "first_name": "U"},
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return {"update_id": update_id, "message": message}


async def store_conversations(path: Path, count: int) -> None:
    """Write a pickle file holding ``count`` half-finished conversations and their answers."""
    persistence: PicklePersistence[Any, Any, Any] = PicklePersistence(path, on_flush=True)
    for index in range(count):
        chat = STORED_CHATS_FROM + index
        await persistence.update_conversation(CONVERSATION, (chat, chat), 3)
        answers = {"nickname": f"Machine {index}", "manufacturer": "Haas", "model_number": "VF-2"}
        await persistence.update_chat_data(chat, {"answers": answers})
    await persistence.flush()


class PtbAnchor:
    """An initialised (not started) Application over a pickle file of stored conversations."""

    def __init__(self, folder: Path) -> None:
        self._path = folder / "ptb.pickle"
        self.persistence: PicklePersistence[Any, Any, Any] = PicklePersistence(
            self._path,
            store_data=PersistenceInput(bot_data=False, user_data=False, callback_data=False),
            on_flush=True,
        )
        self.application: Application[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder()
            .token("123456:bench")
            .request(OfflineRequest())
            .get_updates_request(OfflineRequest())
            .persistence(self.persistence)
            .updater(None)
            .build()
        )
        typed = filters.TEXT & ~filters.COMMAND
        states: dict[object, list[BaseHandler[Update, Any, Any]]] = {
            index: [MessageHandler(typed, answer(index))] for index in range(len(FIELDS))
        }
        self.application.add_handler(
            ConversationHandler([CommandHandler("addmachine", begin)], states, [], name=CONVERSATION, persistent=True)
        )

    async def open(self, stored: int) -> None:
        """Store the conversations, then initialise the application (which loads them)."""
        await store_conversations(self._path, stored)
        await self.application.initialize()

    async def run(self, seconds: float, ids: Ids, write_every_step: bool, chats: int = 8) -> Run:
        """Feed ``chats`` interleaved conversations one update at a time for ``seconds``."""
        if write_every_step:  # start clean: what earlier runs left for the timer is written now, untimed
            await self._write()
        application = self.application
        latencies: list[float] = []
        slots = [(ids.chat(), 0) for _ in range(chats)]
        cpu, started = time.process_time(), time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline or any(step for _, step in slots):
            for index, (chat, step) in enumerate(slots):
                began = time.perf_counter()
                await application.process_update(Update.de_json(update_json(ids.update(), chat, ANSWERS[step]), application.bot))
                if write_every_step:
                    await self._write()
                latencies.append(time.perf_counter() - began)
                step = (step + 1) % len(ANSWERS)
                slots[index] = (chat if step else ids.chat(), step)
        return Run(len(latencies), time.perf_counter() - started, time.process_time() - cpu, latencies)

    async def _write(self) -> None:
        await self.application.update_persistence()
        await self.persistence.flush()

    def stored_conversations(self) -> int:
        """How many conversations the persistence holds (a check that the 10k were loaded)."""
        return len((self.persistence.conversations or {}).get(CONVERSATION, {}))

    async def close(self) -> None:
        """Shut the application down (it writes its persistence one last time)."""
        await self.application.shutdown()


async def main(seconds: float, stored: int) -> None:
    """Print both figures once."""
    ids = Ids()
    with tempfile.TemporaryDirectory(prefix="durabot-bench-") as folder:
        anchor = PtbAnchor(Path(folder))
        await anchor.open(stored)
        print(f"PTB + PicklePersistence holding {anchor.stored_conversations():,} conversations")
        for write_every_step in (False, True):
            run = await anchor.run(seconds, ids, write_every_step)
            mode = "written every step" if write_every_step else "as shipped (written every 60 s)"
            print(f"  {mode}: {run.rate:,.0f} steps/s, CPU {run.cpu_ms_per_operation:.2f} ms/step")
        await anchor.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0, int(sys.argv[2]) if len(sys.argv) > 2 else 10_000))
