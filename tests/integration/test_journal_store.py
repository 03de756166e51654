"""The journal file: one process at a time, and never replayed into a database it was not kept for."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from structlog.testing import capture_logs

from durabot.journal.store import Depth, Journal, JournalInUseError


async def test_a_second_journal_on_the_same_file_is_refused(tmp_path: Path) -> None:
    first, second = Journal(tmp_path / "journal.sqlite3"), Journal(tmp_path / "journal.sqlite3")
    await first.open("db-a")
    try:
        with pytest.raises(JournalInUseError, match="in use by another process"):
            await second.open("db-a")
    finally:
        await first.close()
    await second.open("db-a")  # free again once the first let it go
    await second.close()


async def test_a_journal_kept_for_another_database_is_set_aside_and_a_new_one_begun(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    await journal.open("db-a")
    async with journal.database.transaction() as connection:
        await connection.execute(
            text(
                "INSERT INTO telegram_updates (bot_id, update_id, fingerprint, raw, received_at) "
                "VALUES (1, 5, 'f', '{}', '2026-01-01 00:00:00')"
            )
        )
    await journal.close()
    assert not (await _depth(path, "db-a")).empty

    reopened = Journal(path)
    with capture_logs() as logs:
        await reopened.open("db-b")
    try:
        assert (await reopened.depth()).empty, "nothing of db-a's is replayed into db-b"
        [aside] = [e for e in logs if e["event"] == "journal.set_aside"]
        assert Path(aside["moved_to"]).exists() and aside["log_level"] == "warning"
    finally:
        await reopened.close()
    assert not (await _depth(Path(aside["moved_to"]), None)).empty, "the old journal is kept, not deleted"


async def _depth(path: Path, primary: str | None) -> Depth:
    journal = Journal(path)
    if primary is not None:
        await journal.open(primary)
    try:
        return await journal.depth()
    finally:
        await journal.close()


async def test_an_empty_journal_of_another_database_is_simply_begun_again(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    await journal.open("db-a")
    await journal.close()
    again = Journal(path)
    with capture_logs() as logs:
        await again.open("db-b")
    await again.close()
    assert not [e for e in logs if e["event"] == "journal.set_aside"]
    assert sorted(p.name for p in tmp_path.iterdir() if ".other-" in p.name) == []
