"""A step's write-set as JSON, so the journal can keep it on disk and replay it into the primary later.

Only the types a write-set is made of are read back (a closed list, never arbitrary classes):
conversations and their writes, domain values (machines, cases, intake progress), replies.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

from durabot.domain.cases import Case, CaseStatus, IntakeProgress
from durabot.domain.machines import Machine, MachineDraft
from durabot.engine.conversation import Conversation
from durabot.engine.writes import ConversationWrite, DomainWrite, Handled, WriteSet
from durabot.flows.model import Answers
from durabot.replies import Button, CallbackAnswer, Document, Photo, Reply

_DATACLASSES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        Conversation,
        ConversationWrite,
        DomainWrite,
        Handled,
        MachineDraft,
        Machine,
        Case,
        IntakeProgress,
        Reply,
        Button,
        CallbackAnswer,
        Document,
        Photo,
    )
}
_ENUMS: dict[str, type[Enum]] = {CaseStatus.__name__: CaseStatus}


class UnreadableWriteSetError(ValueError):
    """Stored JSON that is not a write-set this version of durabot can read."""


def _encode(value: Any) -> Any:
    if isinstance(value, Enum):  # before str: a StrEnum is a str too
        if _ENUMS.get(type(value).__name__) is not type(value):
            raise TypeError(f"a write-set cannot hold a {type(value).__name__}")
        return {"$enum": type(value).__name__, "value": value.value}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Answers):
        return {"$answers": value.to_json()}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, UUID):
        return {"$uuid": str(value)}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(item) for item in value]}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if _DATACLASSES.get(name) is not type(value):
            raise TypeError(f"a write-set cannot hold a {name}")
        fields = {field.name: _encode(getattr(value, field.name)) for field in dataclasses.fields(value)}
        return {"$type": name, "fields": fields}
    if isinstance(value, Mapping):
        return {"$map": {str(key): _encode(item) for key, item in value.items()}}
    raise TypeError(f"a write-set cannot hold a {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "$type" in value:
        cls = _DATACLASSES.get(value["$type"])
        if cls is None:
            raise UnreadableWriteSetError(f"unknown type {value['$type']!r}")
        return cls(**{name: _decode(item) for name, item in value["fields"].items()})
    if "$enum" in value:
        enum = _ENUMS.get(value["$enum"])
        if enum is None:
            raise UnreadableWriteSetError(f"unknown enum {value['$enum']!r}")
        return enum(value["value"])
    if "$answers" in value:
        return Answers.from_json(value["$answers"])
    if "$datetime" in value:
        return datetime.fromisoformat(value["$datetime"])
    if "$uuid" in value:
        return UUID(value["$uuid"])
    if "$tuple" in value:
        return tuple(_decode(item) for item in value["$tuple"])
    if "$map" in value:
        return {key: _decode(item) for key, item in value["$map"].items()}
    raise UnreadableWriteSetError(f"an untagged object with keys {sorted(value)}")


def dump_writes(writes: WriteSet) -> str:
    """``writes`` as JSON text.

    Raises:
        TypeError: the write-set holds a value no write-set is made of (or nested beyond reason).
    """
    try:
        return _dump(writes)
    except RecursionError:
        raise TypeError("a write-set nested too deep to store") from None


def _dump(writes: WriteSet) -> str:
    document = {
        "conversations": [_encode(change) for change in writes.conversations.values()],
        "tombstones_taken": [list(pair) for pair in writes.tombstones_taken],
        "domain": [_encode(call) for call in writes.domain],
        "outgoing": [_encode(message) for message in writes.outgoing],
        "handled": _encode(writes.handled),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _expect(kind: type[Any] | tuple[type[Any], ...], value: Any) -> Any:
    """``value``, if it is of ``kind``: each part of a write-set holds only its own kind of thing."""
    if not isinstance(value, kind):
        raise UnreadableWriteSetError(f"a {type(value).__name__} where the write-set has no place for one")
    return value


def load_writes(text: str) -> WriteSet:
    """The write-set :func:`dump_writes` wrote.

    Raises:
        UnreadableWriteSetError: ``text`` is not such a write-set.
    """
    try:
        document = json.loads(text)
        changes = [_expect(ConversationWrite, _decode(change)) for change in document["conversations"]]
        return WriteSet(
            conversations={change.id: change for change in changes},
            tombstones_taken=[(int(user), int(chat)) for user, chat in document["tombstones_taken"]],
            domain=[_expect(DomainWrite, _decode(call)) for call in document["domain"]],
            outgoing=[_expect((Reply, CallbackAnswer, Document, Photo), _decode(message)) for message in document["outgoing"]],
            handled=None if document["handled"] is None else _expect(Handled, _decode(document["handled"])),
        )
    except UnreadableWriteSetError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
        raise UnreadableWriteSetError(f"not a stored write-set: {type(error).__name__}") from error
