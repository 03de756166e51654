"""In-memory fakes of every port, shipped with the package for fast unit tests (no mocks needed)."""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self
from uuid import UUID

from durabot.clock import Clock, utc_now
from durabot.domain.cases import Case, CaseRepository, CaseStatus, IntakeProgress, IntakeProgressRepository
from durabot.domain.machines import Machine, MachineDraft, MachineRepository, nickname_key
from durabot.engine.conversation import Conversation, Tombstone
from durabot.engine.events import Event, IgnoredUpdate, Received, fingerprint
from durabot.engine.ports import (
    Arrival,
    ConversationStore,
    Domains,
    Inbox,
    Outbox,
    PendingUpdate,
    StaleConversationError,
    UserRecords,
)
from durabot.engine.user_records import StoredUserRecords
from durabot.engine.apply import apply_writes
from durabot.engine.writes import ConversationWrite, WriteSet
from durabot.outbox import UNFINISHED, OutboxItem, OutboxStatus, encode
from durabot.replies import CallbackAnswer, Document, Outgoing, Photo, Reply
from durabot.sanitise import storable_json
from durabot.transport.sender import Buttons, PermanentSendError, SendError


@dataclass
class InboxRecord:
    """An update in the fake inbox: its identity, the event to apply (none when ignored) and how it ended."""

    bot_id: int
    update_id: int
    fingerprint: str
    chat_id: int | None
    event: Event | None
    received_at: datetime
    user_id: int | None = None
    processed_at: datetime | None = None
    outcome: str | None = None
    error: str | None = None
    redacted: bool = False


@dataclass
class OutboxRecord:
    """A queued message in the fake outbox."""

    chat_id: int
    message: Outgoing
    update_id: int | None
    created_at: datetime


@dataclass
class FakeData:
    """Everything the fakes store; copied at the start of a unit of work, swapped in on commit."""

    conversations: dict[int, Conversation] = field(default_factory=dict)
    tombstones: dict[tuple[int, int, str], Tombstone] = field(default_factory=dict)
    """Keyed by user id, chat id and flow name, as the table's unique constraint."""
    machines: list[Machine] = field(default_factory=list)
    inbox: dict[int, InboxRecord] = field(default_factory=dict)
    """Keyed by inbox id, in arrival order."""
    outbox: list[OutboxRecord] = field(default_factory=list)
    cases: dict[UUID, Case] = field(default_factory=dict)
    progress: dict[UUID, IntakeProgress] = field(default_factory=dict)
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


class InMemoryConversationStore:
    """Conversations in a dict, with the same version check as the real store."""

    def __init__(self, data: FakeData) -> None:
        self._data = data

    def _of(self, user_id: int, chat_id: int) -> list[Conversation]:
        return [c for c in self._data.conversations.values() if (c.user_id, c.chat_id) == (user_id, chat_id)]

    async def active(self, user_id: int, chat_id: int) -> Conversation | None:
        mine = self._of(user_id, chat_id)
        return max(mine, key=lambda c: (c.updated_at, c.id or 0)) if mine else None

    async def find(self, user_id: int, chat_id: int, flow_name: str) -> Conversation | None:
        return next((c for c in self._of(user_id, chat_id) if c.flow_name == flow_name), None)

    async def save(self, conversation: Conversation) -> Conversation:
        if conversation.id is None:
            if await self.find(conversation.user_id, conversation.chat_id, conversation.flow_name):
                raise StaleConversationError("a conversation of this flow already exists")
            saved = replace(conversation, id=self._data.new_id(), version=conversation.version + 1)
        else:
            stored = self._data.conversations.get(conversation.id)
            if stored is None or stored.version != conversation.version:
                raise StaleConversationError(f"conversation {conversation.id} changed or vanished meanwhile")
            saved = replace(conversation, version=conversation.version + 1)
        assert saved.id is not None
        self._data.conversations[saved.id] = saved
        return saved

    async def delete(self, conversation_id: int) -> None:
        self._data.conversations.pop(conversation_id, None)

    async def of_chat(self, user_id: int, chat_id: int) -> list[Conversation]:
        return sorted(self._of(user_id, chat_id), key=lambda c: (c.updated_at, c.id or 0), reverse=True)

    async def apply(self, write: ConversationWrite) -> None:
        stored = self._data.conversations.get(write.id)
        if write.conversation is None:
            self._data.conversations.pop(write.id, None)
            return
        if write.expected_version is None:
            new = write.conversation
            if stored is not None or await self.find(new.user_id, new.chat_id, new.flow_name):
                raise StaleConversationError("a conversation of this flow already exists")
        elif stored is None or stored.version != write.expected_version:
            raise StaleConversationError(f"conversation {write.id} changed or vanished meanwhile")
        self._data.conversations[write.id] = write.conversation

    async def tombstones(self, user_id: int, chat_id: int) -> list[Tombstone]:
        mine = [t for key, t in self._data.tombstones.items() if key[:2] == (user_id, chat_id)]
        return sorted(mine, key=lambda tombstone: tombstone.expired_at)

    async def delete_tombstones(self, user_id: int, chat_id: int) -> None:
        await self.take_tombstones(user_id, chat_id)

    async def delete_expired(self, now: datetime) -> int:
        expired = [c for c in self._data.conversations.values() if c.expires_at <= now]
        for gone in expired:
            assert gone.id is not None
            del self._data.conversations[gone.id]
            tombstone = Tombstone(gone.user_id, gone.chat_id, gone.flow_name, gone.expires_at, now)
            self._data.tombstones[(gone.user_id, gone.chat_id, gone.flow_name)] = tombstone
        return len(expired)

    async def take_tombstones(self, user_id: int, chat_id: int) -> list[Tombstone]:
        keys = [key for key in self._data.tombstones if key[:2] == (user_id, chat_id)]
        taken = [self._data.tombstones.pop(key) for key in keys]
        return sorted(taken, key=lambda tombstone: tombstone.expired_at)

    async def prune_tombstones(self, created_before: datetime) -> int:
        old = [key for key, t in self._data.tombstones.items() if t.created_at < created_before]
        for key in old:
            del self._data.tombstones[key]
        return len(old)

    async def of_user(self, user_id: int) -> tuple[list[Conversation], list[Tombstone]]:
        live = sorted(
            (c for c in self._data.conversations.values() if c.user_id == user_id),
            key=lambda c: (c.started_at, c.id or 0),
        )
        gone = sorted((t for t in self._data.tombstones.values() if t.user_id == user_id), key=lambda t: t.expired_at)
        return live, gone

    async def forget_user(self, user_id: int) -> int:
        self._data.tombstones = {key: t for key, t in self._data.tombstones.items() if t.user_id != user_id}
        mine = [key for key, c in self._data.conversations.items() if c.user_id == user_id]
        for key in mine:
            del self._data.conversations[key]
        return len(mine)


class InMemoryMachineRepository:
    """Machines in a list; nicknames unique per user ignoring case, as in the database."""

    def __init__(self, data: FakeData, clock: Clock) -> None:
        self._data = data
        self._clock = clock

    async def add(self, draft: MachineDraft) -> Machine:
        if await self.find_by_nickname(draft.user_id, draft.nickname):
            raise ValueError("unique constraint: user_id, nickname_key")
        machine = Machine(**draft.__dict__, id=self._data.new_id(), created_at=self._clock())
        self._data.machines.append(machine)
        return machine

    async def find_by_nickname(self, user_id: int, nickname: str) -> Machine | None:
        key = nickname_key(nickname)
        return next(
            (m for m in self._data.machines if m.user_id == user_id and nickname_key(m.nickname) == key), None
        )

    async def count(self, user_id: int) -> int:
        return sum(1 for m in self._data.machines if m.user_id == user_id)

    async def newest_first(self, user_id: int, offset: int, limit: int) -> list[Machine]:
        mine = [m for m in self._data.machines if m.user_id == user_id]
        mine.sort(key=lambda m: (m.created_at, m.id), reverse=True)
        return mine[offset : offset + limit]

    async def forget_user(self, user_id: int) -> int:
        before = len(self._data.machines)
        self._data.machines = [m for m in self._data.machines if m.user_id != user_id]
        return before - len(self._data.machines)


class InMemoryCaseRepository:
    """Cases in a dict keyed by case id."""

    def __init__(self, data: FakeData) -> None:
        self._data = data

    async def add(self, case: Case) -> None:
        if case.case_id in self._data.cases:
            raise ValueError(f"primary key: case {case.case_id} exists")
        self._data.cases[case.case_id] = case

    async def get(self, case_id: UUID) -> Case | None:
        return self._data.cases.get(case_id)

    async def for_user(self, user_id: int) -> list[Case]:
        mine = [case for case in self._data.cases.values() if case.user_id == user_id]
        return sorted(mine, key=lambda case: case.created_at, reverse=True)

    async def update(self, case: Case) -> None:
        if case.case_id in self._data.cases:
            self._data.cases[case.case_id] = case

    async def delete(self, case_id: UUID) -> None:
        self._data.cases.pop(case_id, None)
        self._data.progress.pop(case_id, None)  # on delete cascade, as the foreign key in the database


class InMemoryIntakeProgressRepository:
    """Intake progress in a dict keyed by case id; like the database, it refuses a row without its case."""

    def __init__(self, data: FakeData, enforce_foreign_key: bool = True) -> None:
        self._data = data
        self._enforce = enforce_foreign_key

    async def add(self, progress: IntakeProgress) -> None:
        if self._enforce and progress.case_id not in self._data.cases:
            raise ValueError(f"foreign key: case {progress.case_id} does not exist")
        self._data.progress[progress.case_id] = progress

    async def get(self, case_id: UUID) -> IntakeProgress | None:
        return self._data.progress.get(case_id)

    async def open_for_user(self, user_id: int) -> IntakeProgress | None:
        def is_open(progress: IntakeProgress) -> bool:
            case = self._data.cases.get(progress.case_id)
            return case is None or case.status is CaseStatus.DRAFT

        mine = [p for p in self._data.progress.values() if p.user_id == user_id and is_open(p)]
        return max(mine, key=lambda p: p.updated_at) if mine else None

    async def update(self, progress: IntakeProgress) -> None:
        if progress.case_id in self._data.progress:
            self._data.progress[progress.case_id] = progress

    async def orphans(self) -> list[IntakeProgress]:
        found = [p for p in self._data.progress.values() if p.case_id not in self._data.cases]
        return sorted(found, key=lambda p: p.created_at)

    async def for_user(self, user_id: int) -> list[IntakeProgress]:
        return sorted((p for p in self._data.progress.values() if p.user_id == user_id), key=lambda p: p.created_at)

    async def delete(self, case_id: UUID) -> None:
        self._data.progress.pop(case_id, None)


class InMemoryInbox:
    """The inbox as a dict keyed by inbox id, with the same update identity as the real one."""

    def __init__(self, data: FakeData) -> None:
        self._data = data

    @staticmethod
    def _fingerprint(item: Received, content: Any) -> str:
        if content is None:
            content = item.to_json() if isinstance(item, Event) else {"ignored": item.reason}
        return fingerprint(content)

    def _known(self, item: Received, digest: str) -> bool:
        same_id = (item.bot_id, item.update_id)
        return any(r.fingerprint == digest for r in self._data.inbox.values() if (r.bot_id, r.update_id) == same_id)

    async def add(self, items: Sequence[Received], now: datetime, raw: Mapping[int, Any] | None = None) -> int:
        added = 0
        for item in sorted(items, key=lambda i: i.update_id):
            digest = self._fingerprint(item, (raw or {}).get(item.update_id))
            if self._known(item, digest):
                continue
            record = InboxRecord(item.bot_id, item.update_id, digest, item.chat_id, None, now, item.user_id)
            if isinstance(item, IgnoredUpdate):
                record.processed_at, record.outcome, record.error = now, "ignored", item.reason
            else:
                record.event = Event.from_json(storable_json(item.to_json()))
            self._data.inbox[self._data.new_id()] = record
            added += 1
        return added

    async def arrival(self, item: Event, raw: Any = None) -> Arrival:
        behind = any(r.chat_id == item.chat_id for _, r in self._pending())
        return Arrival(self._known(item, self._fingerprint(item, raw)), behind)

    async def record(self, item: Event, now: datetime, raw: Any, outcome: str, error: str | None = None) -> None:
        digest = self._fingerprint(item, raw)
        record = InboxRecord(item.bot_id, item.update_id, digest, item.chat_id, None, now, item.user_id)
        record.event = Event.from_json(storable_json(item.to_json()))
        record.processed_at, record.outcome, record.error = now, outcome, error
        self._data.inbox[self._data.new_id()] = record

    def _pending(self) -> list[tuple[int, InboxRecord]]:
        return [(key, r) for key, r in self._data.inbox.items() if r.processed_at is None and r.event is not None]

    async def next_pending(self, chat_id: int) -> PendingUpdate | None:
        mine = [(r.update_id, key, r.event) for key, r in self._pending() if r.chat_id == chat_id and r.event]
        if not mine:
            return None
        _, key, event = min(mine, key=lambda found: found[:2])
        return PendingUpdate(key, event, more=len(mine) > 1)

    async def chats_with_pending(self, limit: int = 100) -> list[int]:
        chats = dict.fromkeys(r.chat_id for _, r in self._pending() if r.chat_id is not None)
        return list(chats)[:limit]

    async def mark_done(self, inbox_id: int, outcome: str, now: datetime, error: str | None = None) -> None:
        record = self._data.inbox[inbox_id]
        record.processed_at, record.outcome, record.error = now, outcome, error

    async def redact(self, processed_before: datetime) -> int:
        return self._redact(lambda r: r.processed_at is not None and r.processed_at < processed_before)

    async def forget_user(self, user_id: int) -> int:
        return self._redact(lambda r: r.processed_at is not None and r.user_id == user_id)

    def _redact(self, chosen: Callable[[InboxRecord], bool]) -> int:
        found = [r for r in self._data.inbox.values() if chosen(r) and not r.redacted]
        for record in found:
            record.event, record.redacted = None, True
        return len(found)

    async def prune(self, processed_before: datetime) -> int:
        old = [key for key, r in self._data.inbox.items() if r.processed_at and r.processed_at < processed_before]
        for key in old:
            del self._data.inbox[key]
        return len(old)


class InMemoryOutbox:
    """The outbox as a list, in the order messages were queued."""

    def __init__(self, data: FakeData) -> None:
        self._data = data

    async def add(self, chat_id: int, messages: Sequence[Outgoing], update_id: int | None, now: datetime) -> None:
        self._data.outbox.extend(OutboxRecord(chat_id, message, update_id, now) for message in messages)

    async def prune_sent(self, sent_before: datetime) -> int:
        """Nothing is ever sent from the fake outbox, so nothing is pruned."""
        return 0

    async def forget_chat(self, chat_id: int) -> int:
        before = len(self._data.outbox)
        self._data.outbox = [record for record in self._data.outbox if record.chat_id != chat_id]
        return before - len(self._data.outbox)


class FakeUnitOfWork:
    """A unit of work over :class:`FakeData`: one at a time, all-or-nothing like a real transaction.

    Like the real one, it is also the :class:`~durabot.engine.ports.Domains` it hands to flows.
    """

    conversations: ConversationStore
    inbox: Inbox
    outbox: Outbox
    machines: MachineRepository
    cases: CaseRepository
    intake: IntakeProgressRepository
    user_records: UserRecords

    def __init__(self, factory: FakeUnitOfWorkFactory) -> None:
        self._factory = factory

    async def __aenter__(self) -> Self:
        await self._factory.lock.acquire()
        self._working = copy.deepcopy(self._factory.data)
        self.committed = False
        self._rebind()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._factory.lock.release()

    @property
    def domains(self) -> Domains:
        """This same unit of work: it holds the fake domain stores too."""
        return self

    async def lock_chat(self, chat_id: int) -> None:
        """Nothing to do: fake units of work already run one at a time."""

    async def apply(self, writes: WriteSet, event: Event, now: datetime) -> None:
        await apply_writes(writes, event, now, self.conversations, self.domains, self.inbox, self.outbox)

    async def commit(self) -> None:
        self._factory.data = self._working
        self._working = copy.deepcopy(self._working)
        self._rebind()
        self.committed = True
        self._factory.commits += 1

    async def rollback(self) -> None:
        self._working = copy.deepcopy(self._factory.data)
        self._rebind()

    def _rebind(self) -> None:
        self.conversations = InMemoryConversationStore(self._working)
        self.machines = InMemoryMachineRepository(self._working, self._factory.clock)
        self.cases = InMemoryCaseRepository(self._working)
        self.intake = InMemoryIntakeProgressRepository(self._working, self._factory.enforce_foreign_key)
        self.inbox = InMemoryInbox(self._working)
        self.outbox = InMemoryOutbox(self._working)
        self.user_records = StoredUserRecords(self.conversations, self.inbox, self.outbox)


class FakeUnitOfWorkFactory:
    """Opens :class:`FakeUnitOfWork` on shared in-memory data; ``data`` is what has been committed."""

    def __init__(self, clock: Clock = utc_now, enforce_foreign_key: bool = True) -> None:
        self.data = FakeData()
        self.enforce_foreign_key = enforce_foreign_key
        self.clock = clock
        self.lock = asyncio.Lock()
        self.commits = 0

    def __call__(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)

    def is_conflict(self, error: BaseException) -> bool:
        return isinstance(error, StaleConversationError)

    def is_unavailable(self, error: BaseException) -> bool:
        return isinstance(error, ConnectionError)

    def sent_texts(self, chat_id: int | None = None) -> list[str]:
        """The text of every committed message queued so far, optionally for one chat."""
        return [
            record.message.text
            for record in self.data.outbox
            if isinstance(record.message, Reply) and (chat_id is None or record.chat_id == chat_id)
        ]


@dataclass(frozen=True)
class SentMessage:
    """One call a :class:`FakeSender` took: which call, to which chat, with what."""

    call: str
    """``send_text``, ``send_document`` or ``answer_callback``."""
    chat_id: int | None
    text: str | None = None
    buttons: Buttons = ()
    document: Document | None = None
    answer: CallbackAnswer | None = None
    photo: Photo | None = None


class FakeSender:
    """A :class:`~durabot.transport.sender.Sender` that records what it sends; failures are scripted by the test.

    :meth:`fail` scripts the next calls: each raises its error, in order (``None``: that call succeeds);
    a chat that is :meth:`block`-ed refuses every message, as Telegram does for a user who blocked the bot.
    Failed calls are counted in :attr:`calls` but not recorded in :attr:`sent`.
    """

    def __init__(self) -> None:
        self.sent: list[SentMessage] = []
        self.calls = 0
        self._failures: list[SendError | None] = []
        self._blocked: set[int] = set()

    def fail(self, *errors: SendError | None) -> None:
        """Raise ``errors`` from the next calls, one each (``None`` lets that call succeed)."""
        self._failures.extend(errors)

    def block(self, chat_id: int) -> None:
        """From now on, refuse every message to ``chat_id`` (a 403)."""
        self._blocked.add(chat_id)

    def texts(self, chat_id: int | None = None) -> list[str]:
        """The texts sent so far, in order, optionally to one chat."""
        return [m.text for m in self.sent if m.text is not None and (chat_id is None or m.chat_id == chat_id)]

    async def send_text(self, chat_id: int, text: str, buttons: Buttons = ()) -> None:
        self._take_call(chat_id)
        self.sent.append(SentMessage("send_text", chat_id, text, buttons))

    async def send_document(self, chat_id: int, document: Document) -> None:
        self._take_call(chat_id)
        self.sent.append(SentMessage("send_document", chat_id, document=document))

    async def send_photo(self, chat_id: int, photo: Photo) -> None:
        self._take_call(chat_id)
        self.sent.append(SentMessage("send_photo", chat_id, photo=photo))

    async def answer_callback(self, answer: CallbackAnswer) -> None:
        self._take_call(None)
        self.sent.append(SentMessage("answer_callback", None, answer=answer))

    def _take_call(self, chat_id: int | None) -> None:
        self.calls += 1
        failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            raise failure
        if chat_id in self._blocked:
            raise PermanentSendError("Forbidden: bot was blocked by the user")


@dataclass
class QueuedMessage:
    """A row of the :class:`InMemoryOutboxQueue`, with the columns of ``outbox_messages`` the relay touches."""

    id: int
    chat_id: int
    method: str
    payload: dict[str, Any]
    next_attempt_at: datetime
    status: OutboxStatus = OutboxStatus.PENDING
    attempts: int = 0
    last_error: str | None = None
    sent_at: datetime | None = None


class InMemoryOutboxQueue:
    """The :class:`~durabot.outbox.OutboxQueue` in a dict, by the real one's rules.

    Only a chat's oldest unfinished message can be claimed; a claim lasts for its lease; a retry
    keeps the message its chat's head; a dead letter lets the chat move on. Queue messages with
    :meth:`put`; read how they ended in :attr:`rows`.
    """

    def __init__(self, clock: Clock = utc_now) -> None:
        self.rows: dict[int, QueuedMessage] = {}
        self._clock = clock
        self._ids = itertools.count(1)

    def put(self, chat_id: int, *messages: Outgoing) -> list[int]:
        """Queue ``messages`` for the chat, due now, as a committed step would; returns their ids."""
        ids = []
        for message in messages:
            method, payload = encode(message)
            row = QueuedMessage(next(self._ids), chat_id, method.value, payload, self._clock())
            self.rows[row.id] = row
            ids.append(row.id)
        return ids

    async def claim(self, limit: int, lease: timedelta) -> list[OutboxItem]:
        now = self._clock()
        heads: dict[int, QueuedMessage] = {}
        for row in sorted(self.rows.values(), key=lambda row: row.id):
            if row.status in UNFINISHED:
                heads.setdefault(row.chat_id, row)
        due = sorted((row for row in heads.values() if row.next_attempt_at <= now), key=lambda row: row.id)[:limit]
        for row in due:
            row.status, row.next_attempt_at, row.attempts = OutboxStatus.SENDING, now + lease, row.attempts + 1
        return [OutboxItem(row.id, row.chat_id, row.method, copy.deepcopy(row.payload), row.attempts) for row in due]

    async def extend_lease(self, item_ids: Sequence[int], lease: timedelta) -> None:
        for item_id in item_ids:
            row = self.rows[item_id]
            if row.status == OutboxStatus.SENDING:
                row.next_attempt_at = self._clock() + lease

    async def mark_sent(self, item_id: int) -> None:
        row = self.rows[item_id]
        row.status, row.sent_at, row.last_error = OutboxStatus.SENT, self._clock(), None

    async def retry_at(self, item_id: int, when: datetime, error: str) -> None:
        row = self.rows[item_id]
        row.status, row.next_attempt_at, row.last_error = OutboxStatus.PENDING, when, error[:2000]

    async def dead_letter(self, item_id: int, error: str) -> None:
        row = self.rows[item_id]
        row.status, row.last_error = OutboxStatus.DEAD, error[:2000]
