"""The gauges ``/metrics`` reads from the database: backlogs and their ages, dead letters, recovered cases, database up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from durabot.console.metrics import Metrics
from durabot.domain.cases import RECOVERED_BY_GUARD_TITLE
from durabot.storage.case_repositories import CASES
from durabot.storage.database import Database
from durabot.storage.inbox import UPDATES
from durabot.storage.repositories import OUTBOX
from tests.conftest import free_port, migrated_database

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def read(metrics: Metrics) -> dict[str, float]:
    text = generate_latest(metrics.registry).decode()
    return {
        sample.name + "".join(f"{{{k}={v}}}" for k, v in sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_the_gauges_say_what_the_database_holds(db_kind: str, tmp_path: Path) -> None:
    async with migrated_database(db_kind, tmp_path) as database:
        async with database.transaction() as connection:
            await connection.execute(insert(UPDATES), [
                {"bot_id": 1, "update_id": n, "fingerprint": "f", "chat_id": 5, "raw": {}, "received_at": NOW - timedelta(minutes=n)}
                for n in (1, 3)
            ])
            await connection.execute(insert(OUTBOX), [
                {"chat_id": 5, "method": "send_message", "payload": {}, "status": status, "next_attempt_at": NOW,
                 "created_at": NOW - timedelta(seconds=age)}
                for status, age in (("pending", 30), ("sending", 10), ("sent", 999), ("dead", 5))
            ])
            await connection.execute(insert(CASES), {
                "case_id": uuid4(), "user_id": 5, "client_id": 5, "title": RECOVERED_BY_GUARD_TITLE, "case_type": "EB1A",
                "status": "draft", "created_at": NOW, "updated_at": NOW, "data": {},
            })
        metrics = Metrics()
        await metrics.refresh(database, NOW)
        found = read(metrics)
    assert found["durabot_database_up"] == 1
    assert (found["durabot_inbox_backlog"], found["durabot_inbox_oldest_seconds"]) == (2, 180)
    assert (found["durabot_outbox_backlog"], found["durabot_outbox_oldest_seconds"]) == (2, 30)
    assert found["durabot_outbox_dead_letters"] == 1
    assert found["durabot_orphans"] == 0
    assert (found["durabot_cases_recovered{by=guard}"], found["durabot_cases_recovered{by=repair}"]) == (1, 0)


async def test_a_database_that_does_not_answer_is_down() -> None:
    database = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    metrics = Metrics()
    metrics.database_up.set(1)
    await metrics.refresh(database, NOW)
    await database.dispose()
    assert read(metrics)["durabot_database_up"] == 0
