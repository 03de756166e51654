"""At start, the journal takes what the primary holds of live conversations and open intakes.

The write-through only sees the steps this process applies; a journal that is new (a fresh
container, say), or a conversation another worker moved on, would otherwise leave a user
mid-flow without their place during an outage. Read in pages by id, handed to the mirror's
thread, and written only where newer than the journal's copy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select

from durabot.domain.cases import CaseStatus
from durabot.journal.mirror import Mirror, Seed
from durabot.storage.case_repositories import CASES, PROGRESS, case_of_row, progress_of_row
from durabot.storage.database import Database
from durabot.storage.repositories import CONVERSATIONS, conversation_of_row

log = structlog.get_logger("durabot.journal")

PAGE = 1000
"""Rows read from the primary at a time."""


@dataclass(frozen=True)
class Seeded:
    """How much the seeding handed to the journal."""

    conversations: int
    cases: int


async def seed_journal(primary: Database, mirror: Mirror, now: datetime) -> Seeded:
    """Hand ``mirror`` every conversation of the primary that has not expired by ``now``, and every open intake."""
    started = time.perf_counter()
    conversations = cases = 0
    c = CONVERSATIONS.c
    last_id = 0
    while True:
        query = select(CONVERSATIONS).where(c.expires_at > now, c.id > last_id).order_by(c.id).limit(PAGE)
        async with primary.engine.connect() as connection:
            page = [conversation_of_row(row) for row in await connection.execute(query)]
        if not page:
            break
        mirror.seed(Seed(page, [], []))
        conversations += len(page)
        last_id = page[-1].id or last_id
    async with primary.engine.connect() as connection:
        drafts = [case_of_row(row) for row in await connection.execute(select(CASES).where(CASES.c.status == CaseStatus.DRAFT.value))]
        ids = [case.case_id for case in drafts]
        progress = []
        for start in range(0, len(ids), PAGE):
            chunk = ids[start : start + PAGE]
            progress += [progress_of_row(row) for row in await connection.execute(select(PROGRESS).where(PROGRESS.c.case_id.in_(chunk)))]
    for start in range(0, len(drafts), PAGE):
        chunk_cases = drafts[start : start + PAGE]
        wanted = {case.case_id for case in chunk_cases}
        mirror.seed(Seed([], chunk_cases, [p for p in progress if p.case_id in wanted]))
    cases = len(drafts)
    log.info("journal.seeded", conversations=conversations, open_intakes=cases, ms=round((time.perf_counter() - started) * 1000, 1))
    return Seeded(conversations, cases)
