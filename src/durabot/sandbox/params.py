"""Bot API call parameters read from a query string, JSON, form-encoded or multipart body."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from durabot.sandbox.errors import bad_request

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
ATTACH_PREFIX = "attach://"


@dataclass(frozen=True)
class Upload:
    """A file sent in a multipart body."""

    filename: str
    content_type: str
    data: bytes

    def summary(self) -> dict[str, Any]:
        """What the call log shows instead of the bytes."""
        return {"upload": self.filename, "content_type": self.content_type, "size": len(self.data)}


class Params:
    """One call's parameters with Telegram's loose typing.

    Form fields arrive as strings, and python-telegram-bot JSON-encodes every value that is not a string
    (numbers, booleans, keyboards), so each accessor converts to the type the method expects.
    """

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __contains__(self, name: str) -> bool:
        return self._values.get(name) not in (None, "")

    def loggable(self) -> dict[str, Any]:
        """The parameters as JSON-ready data, with uploads summarised."""
        return {name: value.summary() if isinstance(value, Upload) else value for name, value in self._values.items()}

    def text(self, name: str) -> str | None:
        """A string parameter; numbers are turned back into text."""
        value = self._values.get(name)
        if value is None or isinstance(value, Upload):
            return None
        if isinstance(value, str):
            return value
        return json.dumps(value) if isinstance(value, (dict, list, bool)) else str(value)

    def integer(self, name: str, error: str | None = None) -> int | None:
        """An integer parameter, ``None`` when absent.

        Raises:
            ApiError: 400 with ``error`` (or a generic message) when it is not an integer.
        """
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise bad_request(error or f"invalid {name} specified")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(error or f"invalid {name} specified") from None

    def number(self, name: str) -> float | None:
        """A numeric parameter, ``None`` when absent or unreadable."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            return None

    def flag(self, name: str) -> bool:
        """A boolean parameter; absent means false."""
        value = self._values.get(name)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes")
        return bool(value)

    def json(self, name: str, error: str | None = None) -> Any:
        """A structured parameter (keyboard, command list, scope) that may arrive as a JSON string.

        Raises:
            ApiError: 400 with ``error`` (or a generic message) when the string is not valid JSON.
        """
        value = self._values.get(name)
        if not isinstance(value, str):
            return value
        if value == "":
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(error or f"can't parse {name} JSON object") from None

    def upload(self, name: str) -> Upload | None:
        """The file sent as ``name``, directly or through an ``attach://`` reference."""
        value = self._values.get(name)
        if isinstance(value, str) and value.startswith(ATTACH_PREFIX):
            value = self._values.get(value[len(ATTACH_PREFIX) :])
        return value if isinstance(value, Upload) else None


async def read_params(request: web.Request) -> Params:
    """Merge the query string and the body of a Bot API request.

    Raises:
        ApiError: 400 when a JSON body is malformed or not an object.
    """
    values: dict[str, Any] = dict(request.query)
    if not request.body_exists:
        return Params(values)
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise bad_request("can't parse JSON object") from None
        if not isinstance(body, dict):
            raise bad_request("JSON object expected")
        values.update(body)
    elif request.content_type in FORM_TYPES:
        form = await request.post()
        for name, value in form.items():
            if isinstance(value, web.FileField):
                values[name] = Upload(value.filename, value.content_type, value.file.read())
            elif isinstance(value, bytes):
                values[name] = value.decode("utf-8", errors="replace")
            else:
                values[name] = value
    return Params(values)
