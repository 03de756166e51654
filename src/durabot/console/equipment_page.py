"""The console's equipment page: every user's machines, searchable, a page of 50 at a time, and their CSV export."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import ColumnElement, Select, false, func, or_, select

from durabot.console.photos import TelegramPhotos
from durabot.console.web import ConsolePages, csv_cell
from durabot.storage.database import Database
from durabot.storage.repositories import MACHINES

PAGE_SIZE = 50
_m = MACHINES.c
SEARCHED = (_m.nickname, _m.manufacturer, _m.model_number, _m.serial_number, _m.location)
"""The columns the search box looks in."""


@dataclass(frozen=True)
class MachineView:
    """A machine as the equipment page and its export show it."""

    id: int
    user_id: int
    nickname: str
    manufacturer: str
    model_number: str
    serial_number: str
    location: str
    notes: str
    added: datetime
    photo_kept: bool
    """Whether the user sent a photo (Telegram keeps the image; the bot keeps its file id)."""


def matching(search: str) -> ColumnElement[bool] | None:
    """Where a machine matches ``search`` in one of :data:`SEARCHED`, ignoring case; ``None`` for an empty search."""
    needle = search.strip()
    if not needle:
        return None
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return or_(false(), *(column.ilike(pattern, escape="\\") for column in SEARCHED))


class EquipmentSection:
    """``/equipment`` (the machines, searchable, paged) and ``/equipment.csv`` (all of them, or the search's), over ``database``."""

    def __init__(self, database: Database, page_size: int = PAGE_SIZE, photos: TelegramPhotos | None = None) -> None:
        self._database = database
        self._page_size = page_size
        self._photos = photos or TelegramPhotos()

    def install(self, app: web.Application, pages: ConsolePages) -> None:
        """Add the equipment routes."""

        async def listing(request: web.Request) -> web.Response:
            return await self._listing(request, pages)

        async def export(request: web.Request) -> web.Response:
            return await self._export(request, pages)

        app.router.add_get("/equipment", listing)
        app.router.add_get("/equipment.csv", export)
        app.router.add_get("/equipment/{machine_id:[0-9]+}/photo", self._photo)

    async def _photo(self, request: web.Request) -> web.Response:
        """The machine's photo, fetched from Telegram through the bot (404 without one, or while no bot is connected)."""
        query = select(_m.photo_file_id).where(_m.id == int(request.match_info["machine_id"]))
        async with self._database.engine.connect() as connection:
            file_id = await connection.scalar(query)
        fetched = await self._photos.fetch(str(file_id)) if file_id else None
        if fetched is None:
            raise web.HTTPNotFound(text="No photo to show (none was kept, or the bot cannot fetch it now).")
        data, content_type = fetched
        return web.Response(body=data, content_type=content_type, headers={"Cache-Control": "private, max-age=300"})

    async def machines(self, search: str = "", page: int = 1) -> tuple[list[MachineView], int]:
        """One page of the machines matching ``search`` (newest first; every machine when ``page`` is 0), and how many match."""
        query, counted = select(MACHINES), select(func.count()).select_from(MACHINES)
        where = matching(search)
        if where is not None:
            query, counted = query.where(where), counted.where(where)
        query = query.order_by(_m.created_at.desc(), _m.id.desc())
        if page > 0:
            query = query.limit(self._page_size).offset((page - 1) * self._page_size)
        return await self._read(query, counted)

    async def _read(self, query: Select[Any], counted: Select[Any]) -> tuple[list[MachineView], int]:
        async with self._database.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
            total = int(await connection.scalar(counted) or 0)
        return [_view(row) for row in rows], total

    async def _listing(self, request: web.Request, pages: ConsolePages) -> web.Response:
        q = request.query.get("q", "").strip()
        page = _page_number(request.query.get("page", "1"))
        machines, total = await self.machines(q, page)
        last = max(1, -(-total // self._page_size))
        if page > last:
            machines, total = await self.machines(q, last)
            page = last
        return pages.page(
            request, "equipment.html", "equipment", machines=machines, total=total, q=q, page=page, last=last,
            previous=_link(q, page - 1) if page > 1 else None, next=_link(q, page + 1) if page < last else None,
            export="/equipment.csv" + (f"?{urlencode({'q': q})}" if q else ""),
        )

    async def _export(self, request: web.Request, pages: ConsolePages) -> web.Response:
        q = request.query.get("q", "").strip()
        machines, _ = await self.machines(q, page=0)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["user_id", "nickname", "manufacturer", "model_number", "serial_number", "location", "notes",
                         "photo", "added"])
        for m in machines:
            writer.writerow([
                m.user_id, csv_cell(m.nickname), csv_cell(m.manufacturer), csv_cell(m.model_number), csv_cell(m.serial_number),
                csv_cell(m.location), csv_cell(m.notes), "yes" if m.photo_kept else "no", m.added.isoformat(),
            ])
        await pages.audit(request, "machines_exported", None, count=len(machines), search=q)
        return web.Response(
            text=out.getvalue(), content_type="text/csv", headers={"Content-Disposition": 'attachment; filename="machines.csv"'}
        )


def _view(row: Any) -> MachineView:
    return MachineView(
        int(row.id),
        int(row.user_id), row.nickname, row.manufacturer or "", row.model_number or "", row.serial_number or "",
        row.location or "", row.notes or "", row.created_at, bool(row.photo_file_id),
    )


def _page_number(raw: str) -> int:
    return max(1, int(raw)) if raw.isdigit() else 1


def _link(q: str, page: int) -> str:
    return "/equipment?" + urlencode({"q": q, "page": page} if q else {"page": page})
