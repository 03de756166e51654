"""The operator's path on a legacy SQLite database, through the real CLI: migrate, repair, migrate."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from durabot.storage.database import Database
from tests.integration.legacy import make_legacy_database


def durabot(*args: str, database: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "LOG_FORMAT": "json", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "durabot", *args], env=env, capture_output=True, text=True, timeout=120)


def make_legacy(path: Path) -> list[str]:
    async def build() -> list[str]:
        database = Database(f"sqlite:///{path}")
        try:
            _healthy, orphaned = await make_legacy_database(database, cases=2, orphans=3)
        finally:
            await database.dispose()
        return [str(case_id) for case_id in orphaned]

    return asyncio.run(build())


def test_migrate_refuses_until_the_orphans_are_repaired(tmp_path: Path) -> None:
    database = tmp_path / "legacy.sqlite3"
    orphaned = make_legacy(database)

    refused = durabot("migrate", database=database)
    assert refused.returncode == 2
    assert "3 intake progress row(s) belong to cases that do not exist" in refused.stderr
    assert "durabot repair orphans" in refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr

    dry = durabot("repair", "orphans", "--dry-run", database=database)
    assert dry.returncode == 0, dry.stderr
    assert all(case_id in dry.stdout for case_id in orphaned)
    assert "Dry run: nothing was changed." in dry.stdout

    fixed = durabot("repair", "orphans", database=database)
    assert fixed.returncode == 0, fixed.stderr
    assert "Re-created 3 case(s) with their original ids" in fixed.stdout
    logged = [json.loads(line) for line in fixed.stderr.splitlines() if line.startswith("{")]
    assert sorted(e["case_id"] for e in logged if e["event"] == "repair.case_recreated") == sorted(orphaned)

    again = durabot("repair", "orphans", database=database)
    assert again.returncode == 0 and "No orphans" in again.stdout

    migrated = durabot("migrate", database=database)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "Database is at revision 0008." in migrated.stdout


def test_repair_on_a_database_without_the_tables_fails_with_a_clear_message(tmp_path: Path) -> None:
    result = durabot("repair", "orphans", database=tmp_path / "empty.sqlite3")
    assert result.returncode == 2
    assert "no cases or intake progress tables yet" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    result = durabot("migrate", database=tmp_path / "fresh.sqlite3")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and all(isinstance(json.loads(line), dict) for line in lines)
