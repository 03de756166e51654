"""What one step sees: its chat's conversations loaded once, and the domain stores, with every write recorded.

Reads go to the unit of work (the few a step needs: the chat's conversations, tombstones when
nothing is active, the nickname check, the case lookup); writes go to the step's
:class:`~durabot.engine.writes.WriteSet` and are answered from it when the same step reads
them back, so a step behaves as if it had written through.
"""

from __future__ import annotations

from uuid import UUID

from durabot.clock import Clock
from durabot.domain.cases import Case, CaseRepository, CaseStatus, IntakeProgress, IntakeProgressRepository
from durabot.domain.machines import Machine, MachineDraft, MachineRepository
from durabot.engine.conversation import Conversation, Tombstone
from durabot.engine.ports import ConversationStore, Domains, UserRecords
from durabot.engine.writes import FlowEvent, WriteSet


class StepConversations:
    """One user's conversations in one chat, as the step has left them so far."""

    def __init__(self, store: ConversationStore, writes: WriteSet, user_id: int, chat_id: int) -> None:
        self._store = store
        self._writes = writes
        self._user_id = user_id
        self._chat_id = chat_id
        self._by_id: dict[int, Conversation] | None = None

    async def _loaded(self) -> dict[int, Conversation]:
        if self._by_id is None:
            found = await self._store.of_chat(self._user_id, self._chat_id)
            self._by_id = {conversation.id: conversation for conversation in found if conversation.id is not None}
        return self._by_id

    async def active(self) -> Conversation | None:
        """The most recently touched conversation, expired or not."""
        conversations = (await self._loaded()).values()
        return max(conversations, key=lambda c: (c.updated_at, c.id or 0), default=None)

    async def find(self, flow_name: str) -> Conversation | None:
        """The conversation of this flow, expired or not."""
        return next((c for c in (await self._loaded()).values() if c.flow_name == flow_name), None)

    async def save(self, conversation: Conversation) -> Conversation:
        """The conversation as saved: with its id, and its version moved on."""
        loaded = await self._loaded()
        before = loaded.get(conversation.id) if conversation.id is not None else None
        saved = self._writes.save(conversation)
        assert saved.id is not None
        loaded[saved.id] = saved
        if conversation.id is None:
            self._writes.flow_events.append(FlowEvent(saved.flow_name, "started"))
        if saved.current_step and (before is None or before.current_step != saved.current_step):
            self._writes.flow_events.append(FlowEvent(saved.flow_name, "step", saved.current_step.partition(":")[2]))
        return saved

    async def delete(self, conversation: Conversation) -> None:
        """Remove the conversation (finished, cancelled or expired)."""
        assert conversation.id is not None
        loaded = await self._loaded()
        loaded.pop(conversation.id, None)
        self._writes.delete(conversation.id, conversation.version)

    async def take_tombstones(self) -> list[Tombstone]:
        """The tombstones of the chat's expired conversations, which go once the step is applied."""
        tombstones = await self._store.tombstones(self._user_id, self._chat_id)
        if tombstones:
            self._writes.tombstones_taken.append((self._user_id, self._chat_id))
        return tombstones


class RecordingMachines:
    """The machine store of a step: reads from the database, an added machine recorded."""

    def __init__(self, stored: MachineRepository, writes: WriteSet, clock: Clock) -> None:
        self._stored = stored
        self._writes = writes
        self._clock = clock

    async def add(self, draft: MachineDraft) -> Machine:
        self._writes.call("machines", "add", draft)
        return Machine(**vars(draft), created_at=self._clock())

    async def find_by_nickname(self, user_id: int, nickname: str) -> Machine | None:
        return await self._stored.find_by_nickname(user_id, nickname)

    async def count(self, user_id: int) -> int:
        return await self._stored.count(user_id)

    async def newest_first(self, user_id: int, offset: int, limit: int) -> list[Machine]:
        return await self._stored.newest_first(user_id, offset, limit)

    async def forget_user(self, user_id: int) -> int:
        self._writes.call("machines", "forget_user", user_id)
        return await self._stored.count(user_id)


class RecordingCases:
    """The case store of a step: cases it wrote are read back from the write-set."""

    def __init__(self, stored: CaseRepository, writes: WriteSet) -> None:
        self._stored = stored
        self._writes = writes
        self.written: dict[UUID, Case | None] = {}
        """Cases this step added or updated (``None``: deleted), by id."""

    async def add(self, case: Case) -> None:
        self._writes.call("cases", "add", case)
        self.written[case.case_id] = case

    async def get(self, case_id: UUID) -> Case | None:
        if case_id in self.written:
            return self.written[case_id]
        return await self._stored.get(case_id)

    async def for_user(self, user_id: int) -> list[Case]:
        stored = {case.case_id: case for case in await self._stored.for_user(user_id)}
        for case_id, case in self.written.items():
            if case is None:
                stored.pop(case_id, None)
            elif case.user_id == user_id:
                stored[case_id] = case
        return sorted(stored.values(), key=lambda case: case.created_at, reverse=True)

    async def update(self, case: Case) -> None:
        self._writes.call("cases", "update", case)
        self.written[case.case_id] = case  # read back as updated: steps update only cases they have read

    async def delete(self, case_id: UUID) -> None:
        self._writes.call("cases", "delete", case_id)
        self.written[case_id] = None


class RecordingIntake:
    """The intake-progress store of a step: progress it wrote is read back from the write-set."""

    def __init__(self, stored: IntakeProgressRepository, cases: RecordingCases, writes: WriteSet) -> None:
        self._stored = stored
        self._cases = cases
        self._writes = writes
        self._written: dict[UUID, IntakeProgress | None] = {}

    def _touched(self, user_id: int) -> bool:
        """Whether this step wrote progress or cases of the user (then reads merge them in)."""
        return any(p is None or p.user_id == user_id for p in self._written.values()) or any(
            c is None or c.user_id == user_id for c in self._cases.written.values()
        )

    async def add(self, progress: IntakeProgress) -> None:
        self._writes.call("intake", "add", progress)
        self._written[progress.case_id] = progress

    async def get(self, case_id: UUID) -> IntakeProgress | None:
        if case_id in self._written:
            return self._written[case_id]
        return await self._stored.get(case_id)

    async def open_for_user(self, user_id: int) -> IntakeProgress | None:
        if not self._touched(user_id):
            return await self._stored.open_for_user(user_id)
        open_ones: list[IntakeProgress] = []
        for progress in await self.for_user(user_id):
            case = await self._cases.get(progress.case_id)
            if case is None or case.status is CaseStatus.DRAFT:
                open_ones.append(progress)
        return max(open_ones, key=lambda p: p.updated_at, default=None)

    async def update(self, progress: IntakeProgress) -> None:
        self._writes.call("intake", "update", progress)
        self._written[progress.case_id] = progress  # read back as updated: steps update only progress they have read

    async def orphans(self) -> list[IntakeProgress]:
        return await self._stored.orphans()

    async def for_user(self, user_id: int) -> list[IntakeProgress]:
        stored = {progress.case_id: progress for progress in await self._stored.for_user(user_id)}
        for case_id, progress in self._written.items():
            if progress is None:
                stored.pop(case_id, None)
            elif progress.user_id == user_id:
                stored[case_id] = progress
        for case_id, case in self._cases.written.items():
            if case is None:
                stored.pop(case_id, None)  # on delete cascade, as the foreign key in the database
        return sorted(stored.values(), key=lambda progress: progress.created_at)

    async def delete(self, case_id: UUID) -> None:
        self._writes.call("intake", "delete", case_id)
        self._written[case_id] = None


class RecordingUserRecords:
    """The user's records as a step sees them; forgetting them is recorded."""

    def __init__(self, stored: UserRecords, writes: WriteSet) -> None:
        self._stored = stored
        self._writes = writes

    async def of_user(self, user_id: int) -> tuple[list[Conversation], list[Tombstone]]:
        return await self._stored.of_user(user_id)

    async def forget_user(self, user_id: int) -> int:
        conversations, _ = await self._stored.of_user(user_id)
        self._writes.call("user_records", "forget_user", user_id)
        return len(conversations)


class RecordingDomains:
    """:class:`~durabot.engine.ports.Domains` for one step: reads from ``stored``, writes into ``writes``."""

    def __init__(self, stored: Domains, writes: WriteSet, clock: Clock) -> None:
        self.stored = stored
        """The stores read from (the unit of work's)."""
        self._machines = RecordingMachines(stored.machines, writes, clock)
        self._cases = RecordingCases(stored.cases, writes)
        self._intake = RecordingIntake(stored.intake, self._cases, writes)
        self._user_records = RecordingUserRecords(stored.user_records, writes)

    @property
    def machines(self) -> MachineRepository:
        return self._machines

    @property
    def cases(self) -> CaseRepository:
        return self._cases

    @property
    def intake(self) -> IntakeProgressRepository:
        return self._intake

    @property
    def user_records(self) -> UserRecords:
        return self._user_records
