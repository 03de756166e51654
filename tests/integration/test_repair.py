"""Legacy orphans: the migration path an operator runs, and `durabot repair orphans` — on both databases."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from durabot.actions.repair import repair_orphans
from durabot.clock import FakeClock
from durabot.domain.cases import RECOVERED_BY_REPAIR_TITLE
from durabot.storage.migrate import current_revision, upgrade
from durabot.storage.tables import CaseIntakeProgressRow, CaseRow
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWorkFactory
from tests.conftest import ScratchDatabase
from tests.integration.legacy import make_legacy_database


def _foreign_keys(connection: Connection) -> list[Any]:
    return list(inspect(connection).get_foreign_keys("case_intake_progress"))


async def test_the_legacy_migration_path_repairs_orphans_before_adding_the_foreign_key(
    unmigrated_db: ScratchDatabase, clock: FakeClock
) -> None:
    database = unmigrated_db.open()
    try:
        healthy, orphaned = await make_legacy_database(database, cases=3, orphans=2)

        with pytest.raises(RuntimeError, match="2 intake progress row\\(s\\) belong to cases that do not exist"):
            await upgrade(database)
        assert await current_revision(database) == "0002", "the migrations before the refused one are kept"
        async with database.engine.connect() as connection:
            clients: dict[UUID, int] = {row.case_id: row.client_id for row in await connection.execute(select(CaseRow))}
            assert await connection.run_sync(_foreign_keys) == []
        assert sorted(clients.values()) == [900, 901, 902], "client_id moved out of the JSON into its column"

        factory = SqlAlchemyUnitOfWorkFactory(database, clock)
        dry = await repair_orphans(factory, dry_run=True, clock=clock)
        assert sorted(o.case_id for o in dry.orphans) == sorted(orphaned) and dry.repaired == 0
        async with database.engine.connect() as connection:
            assert len((await connection.execute(select(CaseRow))).all()) == 3, "a dry run changes nothing"

        repaired_ids: list[UUID] = []
        real = await repair_orphans(factory, dry_run=False, clock=clock, on_repaired=lambda o: repaired_ids.append(o.case_id))
        assert real.repaired == 2 and sorted(repaired_ids) == sorted(orphaned)
        again = await repair_orphans(factory, dry_run=False, clock=clock)
        assert again.orphans == () and again.repaired == 0

        async with database.engine.connect() as connection:
            recovered = (await connection.execute(select(CaseRow).where(CaseRow.case_id.in_(orphaned)))).all()
        assert {row.title for row in recovered} == {RECOVERED_BY_REPAIR_TITLE}
        assert {row.status for row in recovered} == {"draft"}
        assert all(row.client_id == row.user_id for row in recovered)

        await upgrade(database)
        assert await current_revision(database) == "0008"
        async with database.engine.connect() as connection:
            [foreign_key] = await connection.run_sync(_foreign_keys)
            progress = (await connection.execute(select(CaseIntakeProgressRow))).all()
        assert foreign_key["referred_table"] == "cases"
        assert len(progress) == 5, "no progress row was lost on the way"
    finally:
        await database.dispose()


async def test_a_fresh_database_has_no_orphans_to_repair(test_db: ScratchDatabase, clock: FakeClock) -> None:
    database = test_db.open()
    try:
        report = await repair_orphans(SqlAlchemyUnitOfWorkFactory(database, clock), dry_run=True, clock=clock)
        assert report.orphans == ()
    finally:
        await database.dispose()
