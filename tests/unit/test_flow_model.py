"""The pure flow model: steps, conditions, progress, answers, validators, command parsing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from durabot.engine.events import Command, Event, EventKind
from durabot.flows import render
from durabot.flows.add_machine import ADD_MACHINE, parse_nickname
from durabot.flows.model import (
    MAX_ANSWER_LENGTH,
    Answers,
    Choice,
    Flow,
    InvalidAnswer,
    Step,
    choice_of,
    free_text,
)

KINDS = (Choice("press", "Press"), Choice("lathe", "Lathe"))


def is_press(answers: Mapping[str, Any]) -> bool:
    return answers.get("kind") == "press"


KIND = Step("kind", "Kind", "What kind of machine?", choice_of(KINDS), choices=KINDS)
TONNAGE = Step("tonnage", "Tonnage", "How many tonnes?", free_text(what="tonnage"), optional=True, condition=is_press)
NAME = Step("name", "Name", "What is it called?", free_text(min_length=2, max_length=20, what="name"))
NOTES = Step("notes", "Notes", "Anything else?", optional=True)

FLOW = Flow("demo", 1, "describing a machine", "demo", (KIND, TONNAGE, NAME, NOTES))


def answered(*pairs: tuple[str, Any]) -> Answers:
    answers = Answers()
    for key, value in pairs:
        answers = answers.with_answer(key, value)
    return answers


# -- current step, conditions and position ----------------------------------------------


def test_a_fresh_conversation_is_at_the_first_step() -> None:
    assert FLOW.current_step(Answers()) is KIND
    assert FLOW.position(Answers()) == (1, 3)
    assert render.progress_line(FLOW, Answers()) == "Step 1 of 3"


def test_a_step_whose_condition_holds_is_asked_next() -> None:
    answers = answered(("kind", "press"))
    assert FLOW.current_step(answers) is TONNAGE
    assert FLOW.position(answers) == (2, 4)
    assert render.progress_line(FLOW, answers) == "Step 2 of 4"


def test_a_step_whose_condition_fails_is_passed_over_and_not_counted() -> None:
    answers = answered(("kind", "lathe"))
    assert FLOW.current_step(answers) is NAME
    assert [step.key for step in FLOW.applicable_steps(answers)] == ["kind", "name", "notes"]
    assert FLOW.position(answers) == (2, 3)


def test_a_skipped_step_counts_as_answered() -> None:
    answers = answered(("kind", "press"), ("tonnage", None))
    assert FLOW.current_step(answers) is NAME
    assert FLOW.position(answers) == (3, 4)


def test_the_current_step_is_the_first_unanswered_one_even_if_later_ones_are_answered() -> None:
    answers = answered(("kind", "lathe"), ("notes", "oily"))
    assert FLOW.current_step(answers) is NAME


def test_a_complete_flow_has_no_current_step_and_sits_on_the_last_position() -> None:
    answers = answered(("kind", "lathe"), ("name", "Lathe 1"), ("notes", None))
    assert FLOW.current_step(answers) is None
    assert FLOW.position(answers) == (3, 3)


def test_step_looks_up_by_key_and_refuses_unknown_keys() -> None:
    assert FLOW.step("name") is NAME
    with pytest.raises(KeyError):
        FLOW.step("colour")


# -- Answers -----------------------------------------------------------------------------


def test_with_answer_returns_new_answers_and_leaves_the_old_ones_alone() -> None:
    before = answered(("kind", "press"))
    after = before.with_answer("tonnage", "40")
    assert before.values == {"kind": "press"} and before.order == ("kind",)
    assert after.values == {"kind": "press", "tonnage": "40"}
    assert after.order == ("kind", "tonnage")


def test_answering_a_key_again_replaces_its_value_and_makes_it_the_latest() -> None:
    answers = answered(("kind", "press"), ("tonnage", "40")).with_answer("kind", "lathe")
    assert answers.values == {"kind": "lathe", "tonnage": "40"}
    assert answers.order == ("tonnage", "kind")


def test_without_removes_a_key_from_values_and_order() -> None:
    answers = answered(("kind", "press"), ("tonnage", "40"), ("name", "P1")).without("tonnage")
    assert answers.values == {"kind": "press", "name": "P1"}
    assert answers.order == ("kind", "name")


def test_without_last_undoes_the_most_recent_answer_not_the_last_in_flow_order() -> None:
    answers = answered(("name", "P1"), ("kind", "press"))
    result = answers.without_last()
    assert result is not None
    earlier, key = result
    assert key == "kind"
    assert earlier == answered(("name", "P1"))


def test_without_last_on_no_answers_is_none() -> None:
    assert Answers().without_last() is None


def test_answers_survive_a_json_round_trip_including_skips() -> None:
    answers = answered(("kind", "press"), ("tonnage", None), ("name", "Press 3"))
    stored = json.loads(json.dumps(answers.to_json()))
    assert stored == {
        "answers": {"kind": "press", "tonnage": None, "name": "Press 3"},
        "order": ["kind", "tonnage", "name"],
    }
    assert Answers.from_json(stored) == answers


@pytest.mark.parametrize("data", [None, {}, {"answers": None, "order": None}])
def test_from_json_of_nothing_is_no_answers(data: Mapping[str, Any] | None) -> None:
    assert Answers.from_json(data) == Answers()


def test_from_json_without_an_order_uses_the_answers_order() -> None:
    answers = Answers.from_json({"answers": {"kind": "lathe", "name": "L1"}})
    assert answers.order == ("kind", "name")


def test_from_json_drops_order_entries_that_have_no_answer() -> None:
    answers = Answers.from_json({"answers": {"kind": "lathe"}, "order": ["ghost", "kind"]})
    assert answers.order == ("kind",)
    assert answers.without_last() == (Answers(), "kind")


# -- editing a flow never strands a conversation in progress ----------------------------


def test_a_step_added_before_the_current_one_becomes_the_current_step() -> None:
    in_flight = answered(("kind", "lathe"), ("name", "L1"))
    colour = Step("colour", "Colour", "What colour is it?")
    edited = replace(FLOW, version=2, steps=(KIND, colour, TONNAGE, NAME, NOTES))
    assert edited.current_step(in_flight) is colour
    assert edited.position(in_flight) == (2, 4)
    assert render.question(edited, in_flight).text.startswith("Step 2 of 4 · Colour")


def test_a_step_added_after_the_current_one_does_not_move_the_user() -> None:
    in_flight = answered(("kind", "lathe"))
    colour = Step("colour", "Colour", "What colour is it?")
    edited = replace(FLOW, version=2, steps=(*FLOW.steps, colour))
    assert edited.current_step(in_flight) is NAME
    assert edited.position(in_flight) == (2, 4)


def test_a_step_added_to_a_finished_looking_conversation_is_asked() -> None:
    in_flight = answered(("kind", "lathe"), ("name", "L1"), ("notes", None))
    colour = Step("colour", "Colour", "What colour is it?")
    edited = replace(FLOW, version=2, steps=(*FLOW.steps, colour))
    assert edited.current_step(in_flight) is colour


def test_removing_the_current_step_moves_the_user_to_the_next_one() -> None:
    in_flight = answered(("kind", "lathe"))
    edited = replace(FLOW, version=2, steps=(KIND, TONNAGE, NOTES))
    assert edited.current_step(in_flight) is NOTES
    assert edited.position(in_flight) == (2, 2)


def test_removing_an_answered_step_ignores_its_stored_answer() -> None:
    stored = answered(("kind", "lathe"), ("name", "L1")).to_json()
    edited = replace(FLOW, version=2, steps=(KIND, TONNAGE, NOTES))
    in_flight = Answers.from_json(stored)
    assert edited.current_step(in_flight) is NOTES
    assert edited.position(in_flight) == (2, 2)
    assert render.answer_lines(edited, in_flight) == ["• Kind: lathe"]


# -- validators --------------------------------------------------------------------------


def test_free_text_trims_the_answer() -> None:
    assert free_text()("  Acme Corp \n") == "Acme Corp"


@pytest.mark.parametrize("raw", ["ab", "x" * 20, "  ab  "])
def test_free_text_accepts_lengths_within_its_bounds(raw: str) -> None:
    assert NAME.parse(raw) == raw.strip()


def test_free_text_refuses_too_short_text_with_a_message() -> None:
    with pytest.raises(InvalidAnswer) as refused:
        NAME.parse(" a ")
    assert refused.value.message == "The name must be at least 2 characters long."


def test_free_text_refuses_too_long_text_saying_how_long_it_was() -> None:
    with pytest.raises(InvalidAnswer) as refused:
        free_text(what="note")("x" * (MAX_ANSWER_LENGTH + 1))
    assert refused.value.message == "The note can be at most 1,000 characters long; yours has 1,001."


def test_free_text_refuses_blank_text_by_default() -> None:
    with pytest.raises(InvalidAnswer):
        free_text()("   ")


@pytest.mark.parametrize("raw", ["press", "Press", " PRESS ", "pReSs"])
def test_choice_of_accepts_value_or_label_ignoring_case(raw: str) -> None:
    assert KIND.parse(raw) == "press"


def test_choice_of_maps_a_label_to_its_value() -> None:
    parse = choice_of((Choice("hyd", "Hydraulic press"), Choice("mech", "Mechanical press")))
    assert parse("hydraulic press") == "hyd"


@pytest.mark.parametrize("raw", ["drill", "", "pres"])
def test_choice_of_refuses_anything_else_listing_the_choices(raw: str) -> None:
    with pytest.raises(InvalidAnswer) as refused:
        KIND.parse(raw)
    assert refused.value.message == "Please pick one of: Press, Lathe."


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("  Press   3\t(Hall B) ", "Press 3 (Hall B)"), ("P3", "P3"), ("x" * 100, "x" * 100)],
)
def test_parse_nickname_folds_white_space(raw: str, expected: str) -> None:
    assert parse_nickname(raw) == expected


@pytest.mark.parametrize("raw", ["P", " P ", "x" * 101, "a  "])
def test_parse_nickname_refuses_lengths_outside_2_to_100(raw: str) -> None:
    with pytest.raises(InvalidAnswer) as refused:
        parse_nickname(raw)
    assert "2 to 100 characters" in refused.value.message


def test_add_machine_flow_asks_nickname_first_and_only_it_is_required() -> None:
    assert ADD_MACHINE.current_step(Answers()) is not None
    assert [step.key for step in ADD_MACHINE.steps if not step.optional] == ["nickname"]
    assert ADD_MACHINE.steps[0].key == "nickname"


# -- flow declaration --------------------------------------------------------------------


def test_flow_refuses_duplicate_step_keys() -> None:
    with pytest.raises(ValueError, match="repeats a step key"):
        Flow("dup", 1, "duplicating", "dup", (NAME, KIND, replace(NAME, label="Other name")))


def test_flow_refuses_no_steps() -> None:
    with pytest.raises(ValueError, match="no steps"):
        Flow("empty", 1, "doing nothing", "empty", ())


# -- rendering a question ----------------------------------------------------------------


def test_question_shows_progress_label_prompt_and_hints() -> None:
    reply = render.question(FLOW, answered(("kind", "press")), lambda code: f"d:{code}")
    assert reply.text == (
        "Step 2 of 4 · Tonnage\nHow many tonnes?\n"
        "(/skip to leave it out, /back to change the previous answer, /cancel to stop.)"
    )
    assert [[b.label for b in row] for row in reply.buttons] == [["Skip", "Cancel"]]
    assert reply.buttons[0][0].data == "d:s"


def test_question_offers_choices_as_buttons_and_no_skip_or_back_on_a_required_first_step() -> None:
    reply = render.question(FLOW, Answers(), lambda code: f"d:{code}", lead="Hello.")
    assert reply.text.startswith("Hello.\n\nStep 1 of 3 · Kind\n")
    assert reply.text.endswith("(/cancel to stop.)")
    assert [[(b.label, b.data) for b in row] for row in reply.buttons] == [
        [("Press", "d:0")],
        [("Lathe", "d:1")],
        [("Cancel", "d:x")],
    ]


def test_question_of_a_complete_flow_is_an_error() -> None:
    with pytest.raises(ValueError):
        render.question(FLOW, answered(("kind", "lathe"), ("name", "L1"), ("notes", None)))


# -- commands and events -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "argument"),
    [
        ("/addmachine", "addmachine", ""),
        ("/Library@durabot 2", "library", "2"),
        ("  /HELP  ", "help", ""),
        ("/library   3  ", "library", "3"),
        ("/cmd@bot some longer argument", "cmd", "some longer argument"),
        ("/skip_it", "skip_it", ""),
    ],
)
def test_command_parse_reads_name_and_argument(text: str, name: str, argument: str) -> None:
    assert Command.parse(text) == Command(name, argument)


@pytest.mark.parametrize("text", ["", "   ", "hello", "/", "/ library", "a /library", "/lib-rary", "/@bot", "//x"])
def test_command_parse_returns_none_for_non_commands(text: str) -> None:
    assert Command.parse(text) is None


def test_events_survive_a_json_round_trip() -> None:
    event = Event.button(5, 100, 7, "lib:2", "cb-5")
    stored = json.loads(json.dumps(event.to_json()))
    assert stored["kind"] == "callback"
    assert Event.from_json(stored) == event
    assert Event.content(6, 100, 7, "photo").kind is EventKind.CONTENT


# -- property: answer / skip / back ------------------------------------------------------

Operation = tuple[str, str]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("answer"), st.sampled_from(["press", "Lathe", "Mill 7", "PRESS", "Dock crane"])),
        st.tuples(st.just("skip"), st.just("")),
        st.tuples(st.just("back"), st.just("")),
    ),
    max_size=30,
)


def first_open_step(values: Mapping[str, Any]) -> Step | None:
    """The reference answer, written out by hand: the tonnage step only applies to presses."""
    for step in FLOW.steps:
        applies = step is not TONNAGE or values.get("kind") == "press"
        if applies and step.key not in values:
            return step
    return None


@given(operations)
def test_any_sequence_of_answer_skip_back_keeps_the_current_step_and_back_exact(ops: list[Operation]) -> None:
    answers = Answers()
    history: list[tuple[str, Any]] = []  # what a user gave, most recent last
    for op, raw in ops:
        step = FLOW.current_step(answers)
        if op == "back":
            undone = answers.without_last()
            if history:
                assert undone is not None
                earlier, key = undone
                assert key == history[-1][0]
                history.pop()
                assert earlier.values == dict(history)
                answers = earlier
            else:
                assert undone is None
        elif step is None:
            continue
        else:
            if op == "skip":
                if not step.optional:
                    continue
                value: Any = None
            else:
                try:
                    value = step.parse(raw)
                except InvalidAnswer:
                    continue
            after = answers.with_answer(step.key, value)
            assert after.without_last() == (answers, step.key)
            history.append((step.key, value))
            answers = after

        assert answers.values == dict(history)
        assert answers.order == tuple(key for key, _ in history)
        assert FLOW.current_step(answers) == first_open_step(answers.values)
        number, total = FLOW.position(answers)
        assert 1 <= number <= total == len(FLOW.applicable_steps(answers))
        assert Answers.from_json(json.loads(json.dumps(answers.to_json()))) == answers
