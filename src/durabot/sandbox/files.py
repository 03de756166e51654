"""Files the sandbox holds (uploaded photos, generated pictures), with Telegram-style ids and paths."""

from __future__ import annotations

import hashlib
import itertools
import secrets
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from durabot.sandbox.errors import bad_request

MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
"""``getFile`` refuses bigger files, as Telegram's cloud Bot API does."""

DEFAULT_SIZE = (320, 240)


@dataclass(frozen=True)
class StoredFile:
    """One file and the identifiers Telegram would give it."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    width: int
    height: int

    def photo_size(self) -> dict[str, Any]:
        """The file as a ``PhotoSize``."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width,
            "height": self.height,
            "file_size": len(self.data),
        }

    def file_info(self) -> dict[str, Any]:
        """The ``File`` object ``getFile`` returns."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


class FileStore:
    """A bot's files by ``file_id`` and by ``file_path``."""

    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._numbers = itertools.count(1)

    def add(self, data: bytes, folder: str, extension: str) -> StoredFile:
        """Store ``data`` under a fresh ``file_id``; identical bytes share a ``file_unique_id``."""
        width, height = image_size(data) or DEFAULT_SIZE
        stored = StoredFile(
            file_id=f"AgAC{secrets.token_urlsafe(24)}",
            file_unique_id=f"AQAD{hashlib.sha256(data).hexdigest()[:16]}",
            file_path=f"{folder}/file_{next(self._numbers)}.{extension}",
            data=data,
            width=width,
            height=height,
        )
        self._by_id[stored.file_id] = stored
        self._by_path[stored.file_path] = stored
        return stored

    def find(self, file_id: str) -> StoredFile | None:
        """The file with ``file_id``, if there is one."""
        return self._by_id.get(file_id)

    def get(self, file_id: str) -> StoredFile:
        """The file with ``file_id``.

        Raises:
            ApiError: 400 when no such file exists.
        """
        try:
            return self._by_id[file_id]
        except KeyError:
            raise bad_request("wrong file identifier/HTTP URL specified") from None

    def for_download(self, file_id: str) -> StoredFile:
        """The file with ``file_id`` if the Bot API may hand it out.

        Raises:
            ApiError: 400 when it is unknown or over 20 MB.
        """
        stored = self.get(file_id)
        if len(stored.data) > MAX_DOWNLOAD_BYTES:
            raise bad_request("file is too big")
        return stored

    def at_path(self, file_path: str) -> StoredFile | None:
        """The file a download URL points at."""
        return self._by_path.get(file_path)


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG or JPEG, or ``None`` for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Read the frame header of a JPEG."""
    position = 2
    while position + 9 < len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return int(width), int(height)
        position += 2 + length
    return None


def generate_png(width: int = 64, height: int = 48, pad_to: int = 0) -> bytes:
    """A small gradient PNG, optionally padded with trailing bytes to ``pad_to`` bytes in all."""
    rows = b"".join(
        b"\x00" + bytes(value for x in range(width) for value in (40 + x * 3 % 200, 120, 40 + y * 4 % 200))
        for y in range(height)
    )

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    image = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return image + b"\x00" * max(0, pad_to - len(image))
