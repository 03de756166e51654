"""Write-through: each step applied on the primary leaves the chat's new state in the journal too.

The step hands its write-set over (a queue put, no waiting); a thread of its own writes the
queued write-sets into the journal file, many in one transaction, with SQLite's own driver.
A failed journal write is logged and never fails the step: the primary is the truth, the
journal's copy is only what a step continues from if the primary goes away.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Connection, bindparam, create_engine, delete, event, or_
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from durabot.domain.cases import Case, IntakeProgress
from durabot.domain.machines import MachineDraft, nickname_key
from durabot.engine.conversation import Conversation
from durabot.engine.writes import WriteSet
from durabot.storage.case_repositories import CASES, PROGRESS, case_row, progress_row
from durabot.storage.repositories import CONVERSATIONS, MACHINES, TOMBSTONES, conversation_row

log = structlog.get_logger("durabot.journal")

BATCH = 500
"""The most write-sets written in one journal transaction."""

PRUNE_EVERY_SECONDS = 300.0
"""How often the copy drops conversations that have expired (the primary's cleanup removes them there)."""

_c, _m = CONVERSATIONS.c, MACHINES.c
_UPSERT_CASE = sqlite_insert(CASES)
_UPSERT_CASE = _UPSERT_CASE.on_conflict_do_update(
    index_elements=[CASES.c.case_id],
    set_={name: _UPSERT_CASE.excluded[name] for name in ("title", "status", "data", "updated_at")},
)
_UPSERT_PROGRESS = sqlite_insert(PROGRESS)
_UPSERT_PROGRESS = _UPSERT_PROGRESS.on_conflict_do_update(
    index_elements=[PROGRESS.c.case_id],
    set_={
        name: _UPSERT_PROGRESS.excluded[name]
        for name in ("current_block", "current_step", "completed_blocks", "answers", "updated_at")
    },
)
_ADD_MACHINE = sqlite_insert(MACHINES).on_conflict_do_nothing()
_DELETE_BY_ID = delete(CONVERSATIONS).where(_c.id == bindparam("by_id"))
_DELETE_SAME_FLOW = delete(CONVERSATIONS).where(
    _c.user_id == bindparam("by_user"), _c.chat_id == bindparam("by_chat"), _c.conversation_type == bindparam("by_flow")
)


def write_through(connection: Connection, writes: WriteSet, now: Any) -> None:
    """Copy what ``writes`` changed in conversations and domains into the journal on ``connection``.

    Conversations are copied whole (the journal keeps the primary's ids and versions); cases and
    intake progress are upserted; a machine is added unless the journal has its nickname already.
    """
    for change in writes.conversations.values():
        if change.conversation is None:
            connection.execute(delete(CONVERSATIONS).where(_c.id == change.id))
            continue
        conversation = change.conversation
        same_flow = (
            (_c.user_id == conversation.user_id)
            & (_c.chat_id == conversation.chat_id)
            & (_c.conversation_type == conversation.flow_name)
        )
        connection.execute(delete(CONVERSATIONS).where(or_(_c.id == change.id, same_flow)))
        connection.execute(CONVERSATIONS.insert(), conversation_row(conversation, conversation.version))
    _write_the_rest(connection, writes, now)


def write_batch(connection: Connection, batch: list[tuple[WriteSet, Any]]) -> None:
    """Copy many committed steps at once: each conversation's last state in three statements, then the rest in order.

    The same as :func:`write_through` of each in turn, in far fewer statements, so the thread
    doing it holds the interpreter only briefly (the service's loop waits on it otherwise).
    """
    final: dict[int, Conversation | None] = {}
    for writes, _ in batch:
        for change in writes.conversations.values():
            final.pop(change.id, None)
            final[change.id] = change.conversation
    if final:
        connection.execute(_DELETE_BY_ID, [{"by_id": conversation_id} for conversation_id in final])
        kept = [conversation for conversation in final.values() if conversation is not None]
        if kept:
            flows = {(c.user_id, c.chat_id, c.flow_name) for c in kept}
            connection.execute(_DELETE_SAME_FLOW, [{"by_user": u, "by_chat": c, "by_flow": f} for u, c, f in flows])
            connection.execute(CONVERSATIONS.insert(), [conversation_row(c, c.version) for c in kept])
    for writes, now in batch:
        _write_the_rest(connection, writes, now)


def _write_the_rest(connection: Connection, writes: WriteSet, now: Any) -> None:
    """Tombstones and domain calls of one step, in the order made."""
    for user_id, chat_id in writes.tombstones_taken:
        connection.execute(
            delete(TOMBSTONES).where(TOMBSTONES.c.user_id == user_id, TOMBSTONES.c.chat_id == chat_id)
        )
    for call in writes.domain:
        _write_domain_call(connection, call.store, call.method, call.args, now)


def _write_domain_call(connection: Connection, store: str, method: str, args: tuple[Any, ...], now: Any) -> None:
    match (store, method, args):
        case ("cases", "add" | "update", (Case() as case,)):
            connection.execute(_UPSERT_CASE, case_row(case))
        case ("cases", "delete", (case_id,)):
            connection.execute(delete(CASES).where(CASES.c.case_id == case_id))
        case ("intake", "add" | "update", (IntakeProgress() as progress,)):
            if connection.execute(CASES.select().where(CASES.c.case_id == progress.case_id)).first() is not None:
                connection.execute(_UPSERT_PROGRESS, progress_row(progress))
        case ("intake", "delete", (case_id,)):
            connection.execute(delete(PROGRESS).where(PROGRESS.c.case_id == case_id))
        case ("machines", "add", (MachineDraft() as draft,)):
            row = {**vars(draft), "nickname_key": nickname_key(draft.nickname), "created_at": now, "updated_at": now}
            connection.execute(_ADD_MACHINE, row)
        case ("machines" | "user_records", "forget_user", (user_id,)):
            if store == "machines":
                connection.execute(delete(MACHINES).where(_m.user_id == user_id))
            else:
                connection.execute(delete(CONVERSATIONS).where(_c.user_id == user_id))
                connection.execute(delete(TOMBSTONES).where(TOMBSTONES.c.user_id == user_id))
        case _:
            log.warning("journal.write_through_skipped", store=store, method=method)


@dataclass(frozen=True)
class Seed:
    """What the primary holds of live conversations and open intakes, read when the service starts."""

    conversations: list[Conversation]
    cases: list[Case]
    progress: list[IntakeProgress]


_SEED_CONVERSATION = sqlite_insert(CONVERSATIONS).prefix_with("OR IGNORE")  # a newer one of the same flow stays
_SEED_CONVERSATION = _SEED_CONVERSATION.on_conflict_do_update(
    index_elements=[_c.id],
    set_={name: _SEED_CONVERSATION.excluded[name] for name in ("current_step", "state_data", "updated_at",
                                                                 "expires_at", "version", "flow_version")},
    where=_SEED_CONVERSATION.excluded.version > _c.version,
)
_SEED_CASE = sqlite_insert(CASES)
_SEED_CASE = _SEED_CASE.on_conflict_do_update(
    index_elements=[CASES.c.case_id],
    set_={name: _SEED_CASE.excluded[name] for name in ("title", "status", "data", "updated_at")},
    where=_SEED_CASE.excluded.updated_at > CASES.c.updated_at,
)
_SEED_PROGRESS = sqlite_insert(PROGRESS)
_SEED_PROGRESS = _SEED_PROGRESS.on_conflict_do_update(
    index_elements=[PROGRESS.c.case_id],
    set_={name: _SEED_PROGRESS.excluded[name]
          for name in ("current_block", "current_step", "completed_blocks", "answers", "updated_at")},
    where=_SEED_PROGRESS.excluded.updated_at > PROGRESS.c.updated_at,
)
_DELETE_OLDER_OF_FLOW = delete(CONVERSATIONS).where(
    _c.user_id == bindparam("by_user"),
    _c.chat_id == bindparam("by_chat"),
    _c.conversation_type == bindparam("by_flow"),
    _c.id < bindparam("by_id"),
)


def write_seed(connection: Connection, seed: Seed) -> None:
    """Add what the journal lacks of ``seed``, never replacing a copy the write-through made since it was read.

    Versions (conversations) and update times (cases, progress) only grow, so a row is taken only
    where it is newer than the journal's; ids grow with time, so an older conversation of the same
    flow is the one to go.
    """
    if seed.conversations:
        connection.execute(
            _DELETE_OLDER_OF_FLOW,
            [{"by_user": c.user_id, "by_chat": c.chat_id, "by_flow": c.flow_name, "by_id": c.id} for c in seed.conversations],
        )
        connection.execute(_SEED_CONVERSATION, [conversation_row(c, c.version) for c in seed.conversations])
    if seed.cases:
        connection.execute(_SEED_CASE, [case_row(case) for case in seed.cases])
    if seed.progress:
        connection.execute(_SEED_PROGRESS, [progress_row(progress) for progress in seed.progress])


class Mirror:
    """Writes primary steps through to the journal at ``path``, on a thread of its own.

    :meth:`submit` never blocks and never raises; :meth:`flush` waits until everything
    submitted so far is written (tests, and the service before it stops).
    """

    def __init__(self, path: Path) -> None:
        self._engine = create_engine(f"sqlite:///{path}", hide_parameters=True)
        event.listen(self._engine, "connect", _pragmas)
        event.listen(self._engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
        self._queue: queue.SimpleQueue[tuple[WriteSet, Any] | Seed | threading.Event | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pruned_at: float | None = None
        self.failures = 0
        """Write-sets that could not be copied (logged; the primary steps they came from are unaffected)."""

    def start(self) -> None:
        """Start the writing thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="journal-write-through", daemon=True)
            self._thread.start()

    def submit(self, writes: WriteSet, now: Any) -> None:
        """Queue a committed primary step's write-set for the journal."""
        if self._thread is not None and (writes.conversations or writes.tombstones_taken or writes.domain):
            self._queue.put((writes, now))

    def seed(self, seed: Seed) -> None:
        """Queue what the primary held at start for the journal (see :func:`write_seed`)."""
        if self._thread is not None:
            self._queue.put(seed)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until what was submitted before is written; ``False`` if that took longer than ``timeout``."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10.0)
            self._thread = None
        self._engine.dispose()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch: list[tuple[WriteSet, Any]] = []
            markers: list[threading.Event] = []
            stopping = False
            seeds: list[Seed] = []
            item: tuple[WriteSet, Any] | Seed | threading.Event | None = first
            while True:
                if item is None:
                    stopping = True
                elif isinstance(item, threading.Event):
                    markers.append(item)
                elif isinstance(item, Seed):
                    seeds.append(item)
                else:
                    batch.append(item)
                if stopping or len(batch) >= BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)
                self._prune_expired(batch[-1][1])
            for seed in seeds:
                self._write_seed(seed)
            for marker in markers:
                marker.set()
            if stopping:
                return

    def _write(self, batch: list[tuple[WriteSet, Any]]) -> None:
        try:
            with self._engine.begin() as connection:
                write_batch(connection, batch)
            return
        except Exception:
            pass  # one write-set that cannot be copied holds back no other: copy them one by one
        try:
            with self._engine.begin() as connection:
                for writes, now in batch:
                    try:
                        with connection.begin_nested():
                            write_through(connection, writes, now)
                    except Exception as error:
                        self.failures += 1
                        log.warning("journal.write_through_failed", error=type(error).__name__)
        except Exception as error:
            self.failures += len(batch)
            log.warning("journal.write_through_lost", write_sets=len(batch), error=type(error).__name__)

    def _write_seed(self, seed: Seed) -> None:
        try:
            with self._engine.begin() as connection:
                write_seed(connection, seed)
        except Exception as error:
            self.failures += 1
            log.warning("journal.seed_failed", error=type(error).__name__)

    def _prune_expired(self, now: Any) -> None:
        """Drop the copies of conversations that expired: nothing continues from them, and they hold users' answers."""
        if self._pruned_at is not None and time.monotonic() - self._pruned_at < PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = time.monotonic()
        try:
            with self._engine.begin() as connection:
                connection.execute(delete(CONVERSATIONS).where(_c.expires_at <= now))
        except Exception as error:
            log.warning("journal.prune_failed", error=type(error).__name__)


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON", "PRAGMA busy_timeout=30000"):
        cursor.execute(pragma)
    cursor.close()
