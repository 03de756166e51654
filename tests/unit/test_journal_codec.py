"""The journal's write-set codec: every value a step writes survives dump and load, and bad input is refused."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from durabot.domain.cases import Case, CaseStatus, IntakeProgress
from durabot.domain.machines import Machine, MachineDraft
from durabot.engine.conversation import Conversation
from durabot.engine.writes import ConversationWrite, DomainWrite, Handled, WriteSet
from durabot.flows.model import Answers
from durabot.journal.codec import UnreadableWriteSetError, dump_writes, load_writes
from durabot.outbox import OutboxStatus
from durabot.replies import Button, CallbackAnswer, Document, Reply

NOW = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
CASE_ID = UUID("0f6b8c1e-7d1a-4c55-9a0e-3a2b1c4d5e6f")
RAW_UPDATE: dict[str, Any] = {
    "update_id": 90001,
    "message": {
        "message_id": 17,
        "chat": {"id": 42, "type": "private"},
        "from": {"id": 42, "is_bot": False, "first_name": "Ada"},
        "text": "/addmachine",
        "entities": [{"type": "bot_command", "offset": 0, "length": 11}],
    },
    "$type": "Conversation",
    "fields": {"$type": "Reply", "fields": {}},
    "$map": [{"$tuple": [1, 2]}, {"$uuid": "not-a-uuid"}],
    "$datetime": None,
    "ratio": 1.5,
    "flags": [True, False, None],
}
"""A raw Telegram update with nesting, and keys that look like the codec's own tags (they must stay plain data)."""


def conversation(version: int = 1, conversation_id: int = 7_000_001, **changes: Any) -> Conversation:
    answers = Answers(
        {
            "nickname": "Press 12",
            "manufacturer": None,
            "dimensions": {"width": 120, "depth": 80.5, "units": ["cm", "mm"]},
            "history": [{"at": "2026-04-30", "notes": ["oiled", "checked"]}, 3, True],
        },
        ("nickname", "manufacturer", "dimensions", "history"),
    )
    base = Conversation(
        user_id=42,
        chat_id=42,
        flow_name="add_machine",
        flow_version=3,
        answers=answers,
        started_at=NOW - timedelta(minutes=5),
        updated_at=NOW,
        expires_at=NOW + timedelta(hours=24),
        version=version,
        id=conversation_id,
        current_step="add_machine:model_number",
    )
    return dataclasses.replace(base, **changes)


def case(status: CaseStatus = CaseStatus.DRAFT) -> Case:
    return Case(
        case_id=CASE_ID,
        user_id=42,
        client_id=42,
        title="Intake Session",
        case_type="EB1A",
        status=status,
        created_at=NOW - timedelta(days=1),
        updated_at=NOW,
        data={"source": "bot", "scores": [1, 2, 3], "nested": {"when": NOW, "pair": (1, "two")}},
    )


def progress() -> IntakeProgress:
    return IntakeProgress(
        case_id=CASE_ID,
        user_id=42,
        current_block="evidence",
        current_step="eb1a:awards",
        completed_blocks=("personal", "education"),
        answers={"full_name": "Ada Lovelace", "degrees": [{"name": "BSc", "year": 1835}], "skipped": None},
        created_at=NOW - timedelta(days=1),
        updated_at=NOW,
    )


def full_write_set() -> WriteSet:
    """A write-set as large as a real step makes, holding one of everything."""
    inserted = conversation(version=1, conversation_id=7_000_001)
    updated = conversation(version=5, conversation_id=7_000_002, flow_name="eb1a_intake", current_step=None)
    draft = MachineDraft(42, "Press 12", "Haas", "VF-2", "SN-77", "Bay 4", "greased monthly")
    return WriteSet(
        conversations={
            7_000_001: ConversationWrite(7_000_001, inserted, None),
            7_000_002: ConversationWrite(7_000_002, updated, 4),
            7_000_003: ConversationWrite(7_000_003, None, 2),
        },
        tombstones_taken=[(42, 42), (43, -100123)],
        domain=[
            DomainWrite("machines", "add", (draft,)),
            DomainWrite("cases", "add", (case(),)),
            DomainWrite("cases", "update", (case(CaseStatus.INTAKE_COMPLETE),)),
            DomainWrite("intake", "update", (progress(),)),
            DomainWrite("cases", "delete", (uuid4(),)),
            DomainWrite("user_records", "forget_user", (42,)),
        ],
        outgoing=[
            Reply(
                "Step 3 of 6 — the model number?",
                (
                    (Button("Skip", data="f:7000001:1:skip"), Button("Back", data="f:7000001:1:back")),
                    (Button.link("Help", "https://example.com/help"),),
                ),
            ),
            Reply("No buttons"),
            CallbackAnswer("cb-123", "Saved"),
            CallbackAnswer("cb-124"),
            Document("my-data.json", '{"machines": []}', caption="Your data"),
            Document("empty.txt", ""),
        ],
        handled=Handled("applied", None, RAW_UPDATE, None),
    )


def round_trip(writes: WriteSet) -> WriteSet:
    return load_writes(dump_writes(writes))


def test_a_write_set_holding_every_kind_of_value_reads_back_equal() -> None:
    writes = full_write_set()
    assert round_trip(writes) == writes


def test_dump_writes_is_json_text() -> None:
    document = json.loads(dump_writes(full_write_set()))
    assert set(document) == {"conversations", "tombstones_taken", "domain", "outgoing", "handled"}


def test_conversation_writes_read_back_keyed_by_id_with_insert_update_and_delete_kept_apart() -> None:
    loaded = round_trip(full_write_set()).conversations
    assert list(loaded) == [7_000_001, 7_000_002, 7_000_003]
    insert, update, delete = loaded.values()
    assert insert.expected_version is None and isinstance(insert.conversation, Conversation)
    assert update.expected_version == 4 and update.conversation is not None and update.conversation.version == 5
    assert delete.conversation is None and delete.expected_version == 2


def test_conversation_answers_keep_nested_values_order_and_timezone() -> None:
    loaded = round_trip(full_write_set()).conversations[7_000_001].conversation
    assert loaded is not None
    assert type(loaded.answers) is Answers
    assert loaded.answers.values["dimensions"] == {"width": 120, "depth": 80.5, "units": ["cm", "mm"]}
    assert loaded.answers.order == ("nickname", "manufacturer", "dimensions", "history")
    assert isinstance(loaded.answers.order, tuple)
    for moment in (loaded.started_at, loaded.updated_at, loaded.expires_at):
        assert type(moment) is datetime and moment.utcoffset() == timedelta(0)
    assert loaded.updated_at == NOW and loaded.updated_at.microsecond == NOW.microsecond


def test_domain_values_keep_their_types_enum_uuid_tuples_and_datetimes() -> None:
    domain = round_trip(full_write_set()).domain
    assert [(call.store, call.method) for call in domain] == [
        ("machines", "add"),
        ("cases", "add"),
        ("cases", "update"),
        ("intake", "update"),
        ("cases", "delete"),
        ("user_records", "forget_user"),
    ]
    assert all(type(call) is DomainWrite and type(call.args) is tuple for call in domain)
    (draft,), (added,), (updated,), (intake,), (deleted_id,), (user_id,) = (call.args for call in domain)
    assert type(draft) is MachineDraft
    assert type(added) is Case and type(added.status) is CaseStatus and added.status is CaseStatus.DRAFT
    assert updated.status is CaseStatus.INTAKE_COMPLETE
    assert type(added.case_id) is UUID and added.case_id == CASE_ID
    assert added.data["nested"]["when"] == NOW and added.data["nested"]["when"].tzinfo is not None
    assert type(added.data["nested"]["pair"]) is tuple
    assert type(intake) is IntakeProgress and type(intake.completed_blocks) is tuple
    assert intake.completed_blocks == ("personal", "education")
    assert type(deleted_id) is UUID
    assert type(user_id) is int and user_id == 42


def test_a_saved_machine_reads_back_as_a_machine_not_a_draft() -> None:
    machine = Machine(42, "Press 12", id=9, created_at=NOW)
    loaded = round_trip(WriteSet(domain=[DomainWrite("machines", "add", (machine,))]))
    assert type(loaded.domain[0].args[0]) is Machine
    assert loaded.domain[0].args[0] == machine


def test_replies_keep_button_rows_as_tuples_of_buttons() -> None:
    outgoing = round_trip(full_write_set()).outgoing
    reply = outgoing[0]
    assert isinstance(reply, Reply)
    assert type(reply.buttons) is tuple and all(type(row) is tuple for row in reply.buttons)
    assert [[type(button) for button in row] for row in reply.buttons] == [[Button, Button], [Button]]
    assert reply.buttons[1][0].url == "https://example.com/help"
    assert [type(message) for message in outgoing] == [Reply, Reply, CallbackAnswer, CallbackAnswer, Document, Document]


def test_a_raw_update_keeps_nested_data_and_keys_that_look_like_codec_tags() -> None:
    handled = round_trip(full_write_set()).handled
    assert handled == Handled("applied", None, RAW_UPDATE, None)
    assert handled is not None
    assert handled.raw["$type"] == "Conversation"
    assert handled.raw["fields"] == {"$type": "Reply", "fields": {}}
    assert handled.raw["$map"] == [{"$tuple": [1, 2]}, {"$uuid": "not-a-uuid"}]
    assert type(handled.raw["message"]["entities"]) is list


def test_an_empty_write_set_reads_back_empty() -> None:
    assert round_trip(WriteSet()) == WriteSet()


def test_tombstones_taken_read_back_as_pairs() -> None:
    loaded = round_trip(WriteSet(tombstones_taken=[(1, 2), (3, -4)]))
    assert loaded.tombstones_taken == [(1, 2), (3, -4)]
    assert all(type(pair) is tuple for pair in loaded.tombstones_taken)


ANSWER_VALUES = st.dictionaries(
    st.text(max_size=20),
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=50)),
    max_size=8,
)


@given(values=ANSWER_VALUES)
def test_any_text_and_integer_answers_survive_the_round_trip(values: dict[str, Any]) -> None:
    answers = Answers(values, tuple(values))
    writes = WriteSet(conversations={1: ConversationWrite(1, conversation(conversation_id=1, answers=answers), None)})
    loaded = round_trip(writes).conversations[1].conversation
    assert loaded is not None
    assert loaded.answers == answers


JSON_KEYS = st.one_of(st.text(max_size=10), st.sampled_from(["$type", "fields", "$map", "$enum", "$tuple", "$uuid"]))
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(JSON_KEYS, children, max_size=4)),
    max_leaves=20,
)


@given(raw=JSON_VALUES)
def test_any_raw_json_update_survives_the_round_trip(raw: Any) -> None:
    loaded = round_trip(WriteSet(handled=Handled("applied", None, raw)))
    assert loaded.handled == Handled("applied", None, raw)


def valid_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(dump_writes(full_write_set()))
    return document


def without(key: str) -> str:
    document = valid_document()
    del document[key]
    return json.dumps(document)


def document_with(**parts: Any) -> str:
    empty: dict[str, Any] = {"conversations": [], "tombstones_taken": [], "domain": [], "outgoing": [], "handled": None}
    return json.dumps({**empty, **parts})


def with_first_domain_call(call: Any) -> str:
    document = valid_document()
    document["domain"][0] = call
    return json.dumps(document)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("not json", id="not-json"),
        pytest.param("[]", id="a-list"),
        pytest.param("null", id="null"),
        pytest.param('{"conversations": []}', id="only-conversations"),
        pytest.param(without("handled"), id="no-handled"),
        pytest.param(without("domain"), id="no-domain"),
        pytest.param(without("tombstones_taken"), id="no-tombstones"),
        pytest.param(with_first_domain_call({"$type": "Exploit", "fields": {}}), id="unknown-type"),
        pytest.param(with_first_domain_call({"$type": "DomainWrite"}), id="type-without-fields"),
        pytest.param(
            with_first_domain_call({"$type": "DomainWrite", "fields": {"store": "cases"}}), id="missing-field"
        ),
        pytest.param(
            with_first_domain_call({"$type": "Reply", "fields": {"text": "x", "colour": "red"}}), id="unknown-field"
        ),
        pytest.param(with_first_domain_call({"$enum": "OutboxStatus", "value": "pending"}), id="unknown-enum"),
        pytest.param(with_first_domain_call({"$enum": "CaseStatus", "value": "archived"}), id="unknown-enum-value"),
        pytest.param(with_first_domain_call({"$uuid": "not-a-uuid"}), id="bad-uuid"),
        pytest.param(with_first_domain_call({"$datetime": "yesterday"}), id="bad-datetime"),
        pytest.param(with_first_domain_call({"plain": "object"}), id="untagged-object"),
        pytest.param(document_with(conversations=[{"$tuple": []}]), id="conversation-without-id"),
        pytest.param(document_with(tombstones_taken=[[1, 2, 3]]), id="tombstone-not-a-pair"),
        pytest.param(document_with(tombstones_taken=[["a", "b"]]), id="tombstone-not-ints"),
    ],
)
def test_unreadable_input_raises_unreadable_write_set_error(text: str) -> None:
    with pytest.raises(UnreadableWriteSetError):
        load_writes(text)


def test_the_unreadable_error_is_a_value_error() -> None:
    assert issubclass(UnreadableWriteSetError, ValueError)


@dataclasses.dataclass(frozen=True)
class Stranger:
    """A dataclass the codec does not know."""

    value: int


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({1, 2}, id="set"),
        pytest.param(frozenset({"a"}), id="frozenset"),
        pytest.param(b"bytes", id="bytes"),
        pytest.param(object(), id="object"),
        pytest.param(Stranger(1), id="unknown-dataclass"),
        pytest.param(NOW.date(), id="date"),
        pytest.param([1, {2}], id="set-in-a-list"),
        pytest.param({"nested": Stranger(2)}, id="dataclass-in-a-mapping"),
    ],
)
def test_encoding_a_value_a_write_set_cannot_hold_raises_type_error(value: Any) -> None:
    with pytest.raises(TypeError):
        dump_writes(WriteSet(domain=[DomainWrite("cases", "delete", (value,))]))


def test_a_dataclass_named_like_a_known_one_is_refused_not_stored_under_that_name() -> None:
    impostor = dataclasses.make_dataclass("Reply", [("text", str)])
    with pytest.raises(TypeError, match="Reply"):
        dump_writes(WriteSet(outgoing=[impostor("impostor")]))


def test_answers_holding_a_value_json_cannot_hold_raise_type_error() -> None:
    answers = Answers({"when": object()}, ("when",))
    writes = WriteSet(conversations={1: ConversationWrite(1, conversation(conversation_id=1, answers=answers), None)})
    with pytest.raises(TypeError):
        dump_writes(writes)


def test_an_enum_no_write_set_is_made_of_is_refused_when_stored_not_when_replayed() -> None:
    writes = WriteSet(domain=[DomainWrite("cases", "delete", (OutboxStatus.PENDING,))])
    with pytest.raises(TypeError, match="OutboxStatus"):
        dump_writes(writes)


def test_a_known_type_in_the_wrong_part_of_a_write_set_is_unreadable() -> None:
    text = '{"conversations":[],"tombstones_taken":[],"domain":[{"$type":"Reply","fields":{"text":"x"}}],"outgoing":[],"handled":null}'
    with pytest.raises(UnreadableWriteSetError, match="Reply"):
        load_writes(text)


def test_json_nested_beyond_reason_is_unreadable_and_a_write_set_nested_so_is_refused() -> None:
    with pytest.raises(UnreadableWriteSetError):
        load_writes("[" * 100_000 + "]" * 100_000)
    deep: Any = []
    for _ in range(5_000):
        deep = [deep]
    with pytest.raises(TypeError, match="too deep"):
        dump_writes(WriteSet(handled=Handled("applied", None, {"deep": deep})))
