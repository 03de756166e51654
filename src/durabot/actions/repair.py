"""Repairing legacy orphans: intake progress rows whose case is missing get their case back, same id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from durabot.clock import Clock, utc_now
from durabot.domain.cases import RECOVERED_BY_REPAIR_TITLE, CaseService, IntakeProgress
from durabot.engine.ports import UnitOfWorkFactory

log = structlog.get_logger("durabot.repair")


@dataclass(frozen=True)
class RepairReport:
    """What a repair run found and did."""

    orphans: tuple[IntakeProgress, ...]
    repaired: int
    dry_run: bool


async def repair_orphans(
    uow_factory: UnitOfWorkFactory,
    dry_run: bool,
    clock: Clock = utc_now,
    on_repaired: Callable[[IntakeProgress], None] = lambda orphan: None,
) -> RepairReport:
    """Find every orphan and, unless ``dry_run``, re-create its case in one transaction.

    Running it again finds nothing more to do: it is idempotent.
    """
    async with uow_factory() as uow:
        orphans = tuple(await uow.domains.intake.orphans())
        if dry_run or not orphans:
            return RepairReport(orphans, 0, dry_run)
        cases = CaseService(uow.domains.cases)
        for orphan in orphans:
            await cases.create(
                orphan.user_id, orphan.user_id, clock(), title=RECOVERED_BY_REPAIR_TITLE, case_id=orphan.case_id
            )
            log.info("repair.case_recreated", user_id=orphan.user_id, case_id=str(orphan.case_id))
            on_repaired(orphan)
        await uow.commit()
    return RepairReport(orphans, len(orphans), dry_run)
