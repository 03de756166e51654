"""The EB-1A intake flow: its sections and steps, the evidence questions, and the summaries it gives."""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from durabot.flows.eb1a_intake import (
    CRITERIA,
    EB1A_INTAKE,
    ONE_TIME_ACHIEVEMENT,
    YES_NO,
    Claim,
    claimed_criteria,
    completion_summary,
    intake_flow,
    progress_summary,
    status_text,
)
from durabot.flows.model import Answers, Flow, InvalidAnswer, Step
from durabot.flows.render import progress_line

TODAY = date(2024, 6, 15)
FLOW = intake_flow(today=lambda: TODAY)

SECTIONS = [
    ("basic", "Basic information"),
    ("field", "Field of endeavour"),
    ("education", "Education"),
    ("employment", "Employment"),
    ("evidence", "Evidence"),
    ("history", "Immigration history"),
]

BEFORE_EVIDENCE = {
    "full_name": "Maria Elena Rossi",
    "email": "maria.rossi@Example.org",
    "phone": "+39 06 1234 5678",
    "date_of_birth": "03.04.1985",
    "country_of_birth": "Italy",
    "country_of_citizenship": "Italy",
    "country_of_residence": "Germany",
    "us_immigration_status": "J-1",
    "field_of_endeavour": "Molecular biology",
    "specialisation": "Cancer immunotherapy",
    "years_in_field": "12",
    "us_plans": "Continue my immunotherapy research at a university lab.",
    "highest_degree": "Doctorate",
    "field_of_study": "Biology",
    "institution": "University of Bologna",
    "degree_year": "2012",
    "current_employer": "Max Planck Institute",
    "job_title": "Group leader",
    "employed_since": "09/2018",
    "previous_positions": "EMBL, postdoctoral fellow, 2012–2018",
}

DETAILS = "Described at length with names, places and dates."


def reply(flow: Flow, answers: Answers, raw: str | None) -> Answers:
    """``answers`` after the current question gets ``raw``, parsed as the engine does (``None`` skips it)."""
    step = flow.current_step(answers)
    assert step is not None, "the flow is already complete"
    if raw is None:
        assert step.optional
        return answers.with_answer(step.key, None)
    return answers.with_answer(step.key, step.parse(raw))


def replies(flow: Flow, answers: Answers, raws: Iterable[str | None]) -> Answers:
    for raw in raws:
        answers = reply(flow, answers, raw)
    return answers


def up_to_evidence() -> Answers:
    return replies(FLOW, Answers(), BEFORE_EVIDENCE.values())


def evidence_replies(claimed: Iterable[str], one_time: bool = False) -> list[str]:
    """The answers to the evidence section claiming the criteria with these numerals."""
    wanted = set(claimed)
    raws: list[str] = []
    for criterion in CRITERIA:
        raws += ["Yes", DETAILS] if criterion.numeral in wanted else ["No"]
    raws += ["Yes", DETAILS] if one_time else ["No"]
    return raws


def completed(claimed: Iterable[str] = (), one_time: bool = False) -> Answers:
    answers = replies(FLOW, up_to_evidence(), evidence_replies(claimed, one_time))
    answers = replies(FLOW, answers, ["no", "yes", "Refused a B-1/B-2 visa in 2015, no reason given.", "no"])
    assert FLOW.current_step(answers) is None
    return answers


def current_key(answers: Answers) -> str | None:
    step = FLOW.current_step(answers)
    return step.key if step else None


# -- structure ---------------------------------------------------------------------------


def test_the_flow_is_named_versioned_and_started_by_intake_start() -> None:
    assert (EB1A_INTAKE.name, EB1A_INTAKE.version, EB1A_INTAKE.command) == ("eb1a_intake", 1, "intake_start")
    assert EB1A_INTAKE.title == "filling in your EB-1A intake"


def test_sections_come_in_order() -> None:
    assert [(section.key, section.title) for section in FLOW.sections] == SECTIONS


def test_every_step_is_in_a_section_and_sections_are_not_interleaved() -> None:
    order = [key for key, _ in SECTIONS]
    positions = [order.index(step.section) for step in FLOW.steps]
    assert positions == sorted(positions)
    assert set(positions) == set(range(len(SECTIONS)))


def test_each_section_asks_what_it_should() -> None:
    keys_by_section = {key: [step.key for step in FLOW.steps if step.section == key] for key, _ in SECTIONS}
    assert keys_by_section["basic"] == list(BEFORE_EVIDENCE)[:8]
    assert keys_by_section["field"] == list(BEFORE_EVIDENCE)[8:12]
    assert keys_by_section["education"] == list(BEFORE_EVIDENCE)[12:16]
    assert keys_by_section["employment"] == list(BEFORE_EVIDENCE)[16:20]
    assert len(keys_by_section["evidence"]) == 22
    assert keys_by_section["history"] == [
        "prior_us_filings",
        "prior_us_filings_details",
        "visa_refusals",
        "visa_refusals_details",
        "prior_eb_petitions",
        "prior_eb_petitions_details",
    ]


def test_step_keys_are_unique_snake_case() -> None:
    keys = [step.key for step in FLOW.steps]
    assert len(keys) == len(set(keys)) == 48
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", key) for key in keys)


def test_every_step_has_a_label_and_a_prompt() -> None:
    assert all(step.label and step.prompt.strip() for step in FLOW.steps)


def test_only_the_us_status_and_previous_positions_may_be_skipped() -> None:
    assert [step.key for step in FLOW.steps if step.optional] == ["us_immigration_status", "previous_positions"]


def test_us_status_and_degree_are_offered_as_buttons() -> None:
    assert [choice.label for choice in FLOW.step("us_immigration_status").choices] == [
        "None", "B-1/B-2", "F-1", "J-1", "H-1B", "L-1", "O-1", "Other",
    ]  # fmt: skip
    assert [choice.label for choice in FLOW.step("highest_degree").choices] == [
        "Doctorate", "Master's", "Bachelor's", "Associate", "Other",
    ]  # fmt: skip
    assert FLOW.step("us_immigration_status").parse("h-1b") == "h1b"
    assert FLOW.step("highest_degree").parse("Master's") == "masters"
    with pytest.raises(InvalidAnswer):
        FLOW.step("highest_degree").parse("high school")


def test_the_flow_for_today_checks_dates_against_today() -> None:
    assert EB1A_INTAKE.step("date_of_birth").parse("1985-04-03") == "1985-04-03"
    with pytest.raises(InvalidAnswer):
        FLOW.step("date_of_birth").parse("2010-01-01")


# -- evidence ----------------------------------------------------------------------------


def test_the_ten_criteria_are_numbered_i_to_x_and_each_is_a_yes_no_with_details() -> None:
    assert [criterion.numeral for criterion in CRITERIA] == "i ii iii iv v vi vii viii ix x".split()
    evidence = [step.key for step in FLOW.steps if step.section == "evidence"]
    expected = [key for c in (*CRITERIA, ONE_TIME_ACHIEVEMENT) for key in (c.key, c.details_key)]
    assert evidence == expected
    for criterion in CRITERIA:
        question = FLOW.step(criterion.key)
        assert question.choices == YES_NO and question.condition is None
        assert question.label.endswith(f"({criterion.numeral})")
        assert FLOW.step(criterion.details_key).label.startswith(question.label)


def test_yes_no_questions_take_the_button_values_and_typed_answers() -> None:
    question = FLOW.step("awards")
    assert [question.parse(choice.value) for choice in question.choices] == [True, False]
    assert question.parse("Y") is True and question.parse("n") is False


@pytest.mark.parametrize("claim", [*CRITERIA, ONE_TIME_ACHIEVEMENT], ids=lambda claim: claim.key)
def test_details_are_asked_only_after_a_yes(claim: Claim) -> None:
    key, details_key = claim.key, claim.details_key
    answers = up_to_evidence()
    while current_key(answers) != key:
        answers = reply(FLOW, answers, "no")
    said_yes = reply(FLOW, answers, "yes")
    assert current_key(said_yes) == details_key
    said_no = reply(FLOW, answers, "no")
    assert details_key not in [step.key for step in FLOW.applicable_steps(said_no)]
    assert current_key(said_no) != details_key
    after_details = reply(FLOW, said_yes, DETAILS)
    assert current_key(after_details) == current_key(said_no)


def test_details_must_be_at_least_20_characters() -> None:
    said_yes = reply(FLOW, up_to_evidence(), "yes")
    with pytest.raises(InvalidAnswer):
        reply(FLOW, said_yes, "Best paper 2020")
    assert reply(FLOW, said_yes, "x" * 20).values["awards_details"] == "x" * 20


def test_changing_a_yes_to_no_drops_the_details_from_the_applicable_steps() -> None:
    answers = replies(FLOW, up_to_evidence(), ["yes", DETAILS]).with_answer("awards", False)
    assert "awards_details" not in [step.key for step in FLOW.applicable_steps(answers)]
    assert current_key(answers) == "memberships"


# -- progress line -----------------------------------------------------------------------


def test_the_progress_line_names_the_section_and_the_question_in_it() -> None:
    assert progress_line(EB1A_INTAKE, Answers()) == "Basic information (part 1 of 6) · Question 1 of 8"
    after_name = reply(FLOW, Answers(), "Maria Rossi")
    assert progress_line(FLOW, after_name) == "Basic information (part 1 of 6) · Question 2 of 8"
    basic_done = replies(FLOW, Answers(), list(BEFORE_EVIDENCE.values())[:8])
    assert progress_line(FLOW, basic_done) == "Field of endeavour (part 2 of 6) · Question 1 of 4"


def test_the_evidence_section_grows_by_one_question_for_each_yes() -> None:
    answers = up_to_evidence()
    assert progress_line(FLOW, answers) == "Evidence (part 5 of 6) · Question 1 of 11"
    answers = reply(FLOW, answers, "yes")
    assert progress_line(FLOW, answers) == "Evidence (part 5 of 6) · Question 2 of 12"


# -- completion summary ------------------------------------------------------------------


def test_summary_with_no_criteria_says_so_gently() -> None:
    summary = completion_summary(completed())
    assert "intake is complete" in summary
    assert "You did not claim any of the 10 criteria." in summary
    assert "did not claim a one-time achievement" in summary
    assert "at least 3 of the 10 criteria" in summary
    assert "attorney will review" in summary


def test_summary_with_two_criteria_lists_them_and_notes_it_is_fewer_than_three() -> None:
    summary = completion_summary(completed(["i", "iv"]))
    assert "You claim 2 of the 10 criteria: (i) awards, (iv) judging." in summary
    assert "fewer than 3" in summary
    assert "attorney will review" in summary


def test_summary_with_three_criteria_has_no_shortfall_note() -> None:
    summary = completion_summary(completed(["ii", "v", "vi"]))
    assert (
        "You claim 3 of the 10 criteria: (ii) memberships, (v) original contributions, (vi) scholarly articles."
        in summary
    )
    assert "fewer than" not in summary
    assert "attorney will now review" in summary


def test_summary_with_all_ten_criteria_names_them_all() -> None:
    summary = completion_summary(completed([criterion.numeral for criterion in CRITERIA]))
    assert "You claim 10 of the 10 criteria: (i) awards, (ii) memberships," in summary
    assert "(ix) high salary, (x) commercial success." in summary
    assert "fewer than" not in summary


def test_summary_with_a_one_time_achievement_needs_no_three_criteria() -> None:
    summary = completion_summary(completed(one_time=True))
    assert "You also claim a one-time achievement" in summary
    assert "You did not claim any of the 10 criteria." in summary
    assert "fewer than" not in summary and "haven't claimed" not in summary
    assert "attorney will now review" in summary


def test_claimed_criteria_ignores_unanswered_and_no_answers() -> None:
    answers = Answers().with_answer("judging", True).with_answer("awards", False).with_answer("high_salary", True)
    assert [criterion.numeral for criterion in claimed_criteria(answers)] == ["iv", "ix"]
    assert claimed_criteria(Answers()) == []


# -- progress summary --------------------------------------------------------------------


def test_progress_of_a_fresh_intake() -> None:
    progress = progress_summary(Answers(), FLOW)
    assert (progress.section_key, progress.section_title, progress.step_key) == (
        "basic",
        "Basic information",
        "full_name",
    )
    assert progress.completed_sections == ()
    assert progress.percent_answered == 0
    assert progress.claimed == () and not progress.one_time_achievement and not progress.complete


def test_progress_after_the_basic_section_counts_only_applicable_questions() -> None:
    answers = replies(FLOW, Answers(), list(BEFORE_EVIDENCE.values())[:8])
    progress = progress_summary(answers, FLOW)
    assert progress.completed_sections == ("basic",)
    assert (progress.section_key, progress.step_key) == ("field", "field_of_endeavour")
    assert progress.percent_answered == 8 * 100 // 34  # 48 steps less 14 details not (yet) asked


def test_progress_in_the_evidence_section_reports_claims_so_far() -> None:
    answers = replies(FLOW, up_to_evidence(), ["yes", DETAILS, "no", "no", "yes"])
    progress = progress_summary(answers, FLOW)
    assert progress.completed_sections == ("basic", "field", "education", "employment")
    assert (progress.section_title, progress.step_key) == ("Evidence", "judging_details")
    assert [criterion.numeral for criterion in progress.claimed] == ["i", "iv"]
    assert progress.percent_answered == 25 * 100 // 36


def test_progress_of_a_complete_intake() -> None:
    progress = progress_summary(completed(["iii"], one_time=True), FLOW)
    assert progress.complete and progress.step_key is None and progress.section_key is None
    assert progress.completed_sections == tuple(key for key, _ in SECTIONS)
    assert progress.percent_answered == 100
    assert [criterion.numeral for criterion in progress.claimed] == ["iii"] and progress.one_time_achievement


def test_status_text_reads_plainly() -> None:
    answers = replies(FLOW, up_to_evidence(), ["yes", DETAILS])
    text = status_text(progress_summary(answers, FLOW))
    assert "you're at: Evidence" in text
    assert "Sections finished: Basic information, Field of endeavour, Education, Employment." in text
    assert "Criteria claimed so far: (i) awards." in text
    fresh = status_text(progress_summary(Answers(), FLOW))
    assert fresh.startswith("Your EB-1A intake is 0% done") and "No section finished yet." in fresh
    finished = status_text(progress_summary(completed(one_time=True), FLOW))
    assert "intake is complete" in finished and "one-time achievement" in finished


# -- any valid run ends ------------------------------------------------------------------

WORDS = st.text(alphabet=string.ascii_letters + string.digits + "éüßøçñ.,'’–-", min_size=1, max_size=30)


def sentence(min_length: int, max_length: int) -> st.SearchStrategy[str]:
    """Text whose trimmed length is within the bounds."""
    return (
        st.lists(WORDS, min_size=1, max_size=40)
        .map(" ".join)
        .map(lambda words: (words * (min_length // len(words) + 1))[:max_length].strip())
        .filter(lambda words: min_length <= len(words) <= max_length)
    )


def written_date(when: date) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [when.isoformat(), when.strftime("%d.%m.%Y"), when.strftime("%d/%m/%Y"), f"{when.day}/{when.month}/{when.year}"]
    )


def written_month(when: date) -> st.SearchStrategy[str]:
    return st.sampled_from([when.strftime("%Y-%m"), when.strftime("%m/%Y"), when.strftime("%m.%Y"), when.isoformat()])


def choice_answers(step: Step) -> st.SearchStrategy[str]:
    return st.sampled_from([text for choice in step.choices for text in (choice.value, choice.label)])


EMAILS = st.builds(
    "{}@{}.{}".format,
    st.text(alphabet=string.ascii_letters + string.digits + "._+-", min_size=1, max_size=30),
    st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=30),
    st.sampled_from(["com", "org", "de", "CO.UK"]),
)
PHONES = st.builds(
    lambda digits, separator: "+" + separator.join(digits[i : i + 3] for i in range(0, len(digits), 3)),
    st.text(alphabet=string.digits, min_size=8, max_size=15),
    st.sampled_from(["", " ", "-", "."]),
)
BIRTH_DATES = st.dates(min_value=date(1913, 6, 16), max_value=date(2008, 6, 15)).flatmap(written_date)
START_MONTHS = st.dates(min_value=date(1940, 1, 1), max_value=TODAY).flatmap(written_month)
YES_OR_NO = st.sampled_from(["yes", "no", "Yes", "No", "y", "n", "YES", "N"])

TYPED: dict[str, st.SearchStrategy[str]] = {
    "full_name": sentence(2, 200),
    "email": EMAILS,
    "phone": PHONES,
    "date_of_birth": BIRTH_DATES,
    "country_of_birth": sentence(2, 100),
    "country_of_citizenship": sentence(2, 100),
    "country_of_residence": sentence(2, 100),
    "field_of_endeavour": sentence(2, 200),
    "specialisation": sentence(2, 200),
    "years_in_field": st.integers(0, 70).map(str),
    "us_plans": sentence(10, 1000),
    "field_of_study": sentence(2, 200),
    "institution": sentence(2, 200),
    "degree_year": st.integers(1940, TODAY.year).map(str),
    "current_employer": sentence(2, 200),
    "job_title": sentence(2, 200),
    "employed_since": START_MONTHS,
    "previous_positions": sentence(2, 1000),
}


def valid_answers(step: Step) -> st.SearchStrategy[str]:
    if step.choices == YES_NO:
        return YES_OR_NO
    if step.choices:
        return choice_answers(step)
    if step.key.endswith("_details"):
        return sentence(20, 1000)
    return TYPED[step.key]


def test_every_step_has_a_strategy_for_valid_answers() -> None:
    for step in FLOW.steps:
        valid_answers(step)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_answering_every_question_with_valid_values_always_completes_the_intake(data: st.DataObject) -> None:
    answers = Answers()
    for _ in FLOW.steps:
        step = FLOW.current_step(answers)
        if step is None:
            break
        if step.optional and data.draw(st.booleans(), label=f"skip {step.key}"):
            answers = answers.with_answer(step.key, None)
        else:
            raw = data.draw(valid_answers(step), label=step.key)
            answers = answers.with_answer(step.key, step.parse(raw))
    assert FLOW.current_step(answers) is None
    assert progress_summary(answers, FLOW).percent_answered == 100
    assert Answers.from_json(json.loads(json.dumps(answers.to_json()))) == answers
    assert "intake is complete" in completion_summary(answers)

