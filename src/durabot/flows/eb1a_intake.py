"""The EB-1A case intake flow: the client's questionnaire in six sections, and summaries of what they claim."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from durabot.flows.model import Answers, Choice, Condition, Flow, Section, Step, choice_of
from durabot.flows.validators import (
    Today,
    email,
    month_year,
    past_date,
    phone,
    text,
    whole_number,
    year,
    yes_no,
)

CRITERIA_NEEDED = 3
"""8 CFR 204.5(h)(3) asks for evidence meeting at least this many criteria (or a one-time achievement)."""

DETAILS_MIN_LENGTH = 20
DETAILS_MAX_LENGTH = 1000

BASIC = Section("basic", "Basic information")
FIELD = Section("field", "Field of endeavour")
EDUCATION = Section("education", "Education")
EMPLOYMENT = Section("employment", "Employment")
EVIDENCE = Section("evidence", "Evidence")
HISTORY = Section("history", "Immigration history")
SECTIONS = (BASIC, FIELD, EDUCATION, EMPLOYMENT, EVIDENCE, HISTORY)

YES_NO = (Choice("yes", "Yes"), Choice("no", "No"))

US_STATUSES = (
    Choice("none", "None"),
    Choice("b1_b2", "B-1/B-2"),
    Choice("f1", "F-1"),
    Choice("j1", "J-1"),
    Choice("h1b", "H-1B"),
    Choice("l1", "L-1"),
    Choice("o1", "O-1"),
    Choice("other", "Other"),
)

DEGREES = (
    Choice("doctorate", "Doctorate"),
    Choice("masters", "Master's"),
    Choice("bachelors", "Bachelor's"),
    Choice("associate", "Associate"),
    Choice("other", "Other"),
)


@dataclass(frozen=True, kw_only=True)
class Claim:
    """A yes/no question followed, when the answer is yes, by a question asking for details.

    Attributes:
        name: Short name used in summaries, e.g. "awards".
        key: Step key of the yes/no question (its stored value is a bool).
        details_key: Step key of the details question.
    """

    name: str
    key: str
    details_key: str

    def is_claimed(self, answers: Answers) -> bool:
        """Whether the client answered yes."""
        return answers.values.get(self.key) is True


@dataclass(frozen=True, kw_only=True)
class Criterion(Claim):
    """One of the ten EB-1A evidence criteria of 8 CFR 204.5(h)(3).

    Attributes:
        numeral: Its roman numeral in the regulation, "i" to "x".
    """

    numeral: str

    @property
    def reference(self) -> str:
        """The criterion as a summary names it, e.g. "(iv) judging"."""
        return f"({self.numeral}) {self.name}"


def _criterion(numeral: str, name: str, key: str) -> Criterion:
    return Criterion(numeral=numeral, name=name, key=key, details_key=f"{key}_details")


CRITERIA: tuple[Criterion, ...] = (
    _criterion("i", "awards", "awards"),
    _criterion("ii", "memberships", "memberships"),
    _criterion("iii", "published material about you", "published_material"),
    _criterion("iv", "judging", "judging"),
    _criterion("v", "original contributions", "original_contributions"),
    _criterion("vi", "scholarly articles", "scholarly_articles"),
    _criterion("vii", "exhibitions", "exhibitions"),
    _criterion("viii", "leading or critical role", "leading_role"),
    _criterion("ix", "high salary", "high_salary"),
    _criterion("x", "commercial success", "commercial_success"),
)

ONE_TIME_ACHIEVEMENT = Claim(
    name="one-time achievement",
    key="one_time_achievement",
    details_key="one_time_achievement_details",
)

PRIOR_US_FILINGS = Claim(name="earlier US petitions", key="prior_us_filings", details_key="prior_us_filings_details")
VISA_REFUSALS = Claim(name="visa refusals", key="visa_refusals", details_key="visa_refusals_details")
PRIOR_EB_PETITIONS = Claim(
    name="earlier EB-1 or EB-2 petitions", key="prior_eb_petitions", details_key="prior_eb_petitions_details"
)


def _answered_yes(key: str) -> Condition:
    def holds(answers: Mapping[str, Any]) -> bool:
        return answers.get(key) is True

    return holds


@dataclass(frozen=True)
class _Wording:
    """What a yes/no question and its details question say."""

    label: str
    question: str
    details: str


def _asked_with_details(claim: Claim, section: Section, wording: _Wording) -> tuple[Step, Step]:
    """The yes/no step of ``claim`` and its details step, asked only after a yes."""
    return (
        Step(claim.key, wording.label, wording.question, yes_no(), choices=YES_NO, section=section.key),
        Step(
            claim.details_key,
            f"{wording.label} — details",
            wording.details,
            text("details", DETAILS_MIN_LENGTH, DETAILS_MAX_LENGTH),
            condition=_answered_yes(claim.key),
            section=section.key,
        ),
    )


_CRITERION_WORDING: dict[str, _Wording] = {
    "i": _Wording(
        "Awards (i)",
        "Have you received prizes or awards for excellence in your field that are recognised nationally or "
        "internationally? For example, a national science prize or an international design award.",
        "Please list them: the name of each award, who gives it, the year, and what you received it for.",
    ),
    "ii": _Wording(
        "Memberships (ii)",
        "Are you a member of an association that admits only people with outstanding achievements, as judged "
        "by recognised experts? (An association anyone can join by paying a fee doesn't count.)",
        "Which associations? For each, say what it takes to become a member and when you joined.",
    ),
    "iii": _Wording(
        "Published material about you (iii)",
        "Has anything been published about you and your work in professional or major trade publications or "
        "other major media? For example, a newspaper article about your research.",
        "Please list them: the title, where it was published, the date and the author.",
    ),
    "iv": _Wording(
        "Judging (iv)",
        "Have you judged the work of others in your field, alone or on a panel? For example, reviewing papers "
        "for a journal, sitting on a competition jury, or reviewing grant applications.",
        "Tell us what you judged, for whom and when, e.g. “Reviewer for a physics journal, 12 papers since 2019”.",
    ),
    "v": _Wording(
        "Original contributions (v)",
        "Have you made original scientific, scholarly, artistic, athletic or business contributions of major "
        "significance to your field? For example, a method others in your field now widely use.",
        "Describe your most important contributions and how others in your field have used or recognised them.",
    ),
    "vi": _Wording(
        "Scholarly articles (vi)",
        "Have you written scholarly articles published in professional journals or other major media?",
        "Roughly how many, and which are the most important (title, journal, year)? Citation counts help too.",
    ),
    "vii": _Wording(
        "Exhibitions (vii)",
        "Has your work been displayed at artistic exhibitions or showcases?",
        "Which exhibitions or showcases, where and when? Say what of yours was shown.",
    ),
    "viii": _Wording(
        "Leading or critical role (viii)",
        "Have you had a leading or critical role in organisations with a distinguished reputation? For example, "
        "head of a lab at a well-known university, or a founder of a recognised company.",
        "Which organisations, what was your role, and when? What made your role leading or critical?",
    ),
    "ix": _Wording(
        "High salary (ix)",
        "Are you paid a salary or other remuneration that is significantly higher than others in your field?",
        "Tell us what you are paid, for which period, and how that compares with others in your field if you know.",
    ),
    "x": _Wording(
        "Commercial success (x)",
        "Have you had commercial success in the performing arts? For example, box-office receipts, or record "
        "and streaming sales.",
        "Tell us about the sales, receipts or chart positions, with figures and dates if you have them.",
    ),
}

_ONE_TIME_WORDING = _Wording(
    "One-time achievement",
    "Have you received a major, internationally recognised award, such as a Nobel Prize? "
    "(An award like that can be enough on its own.)",
    "Which award, when, and what was it for?",
)

_HISTORY_WORDING: dict[Claim, _Wording] = {
    PRIOR_US_FILINGS: _Wording(
        "Earlier US petitions or applications",
        "Has a US immigration petition or application ever been filed for you? For example, a visa petition, "
        "a green card application or a change of status.",
        "Please tell us what was filed, when, and what happened.",
    ),
    VISA_REFUSALS: _Wording(
        "Visa refusals",
        "Have you ever been refused a US visa, or refused entry to the United States?",
        "Please tell us when, for which visa, and the reason you were given, if any.",
    ),
    PRIOR_EB_PETITIONS: _Wording(
        "Earlier EB-1 or EB-2 petitions",
        "Have you, or an employer for you, ever filed an EB-1 or EB-2 petition before?",
        "Please tell us which category, when, and the outcome (approved, denied, withdrawn or still pending).",
    ),
}


def _basic_steps(today: Today) -> tuple[Step, ...]:
    section = BASIC.key
    return (
        Step(
            "full_name",
            "Full legal name",
            "What is your full legal name, exactly as in your passport?",
            text("full name", 2, 200),
            section=section,
        ),
        Step("email", "Email", "What email address should we use to reach you?", email(), section=section),
        Step(
            "phone",
            "Phone",
            "What phone number can we call you on? Please start with + and the country code, e.g. +1 555 123 4567.",
            phone(),
            section=section,
        ),
        Step(
            "date_of_birth",
            "Date of birth",
            "What is your date of birth? E.g. 1985-04-03 or 03.04.1985 (day first).",
            past_date("date of birth", earliest_years_ago=110, latest_years_ago=16, today=today),
            section=section,
        ),
        Step(
            "country_of_birth",
            "Country of birth",
            "In which country were you born?",
            text("country", 2, 100),
            section=section,
        ),
        Step(
            "country_of_citizenship",
            "Country of citizenship",
            "Which country are you a citizen of? If more than one, please list them all.",
            text("country", 2, 100),
            section=section,
        ),
        Step(
            "country_of_residence",
            "Country of residence",
            "In which country do you live now?",
            text("country", 2, 100),
            section=section,
        ),
        Step(
            "us_immigration_status",
            "Current US immigration status",
            "What is your current US immigration status, if any? Tap one, or /skip if you're not sure.",
            choice_of(US_STATUSES),
            optional=True,
            choices=US_STATUSES,
            section=section,
        ),
    )


def _field_steps() -> tuple[Step, ...]:
    section = FIELD.key
    return (
        Step(
            "field_of_endeavour",
            "Field",
            "What is your field? For example, molecular biology, software engineering or classical music.",
            text("field", 2, 200),
            section=section,
        ),
        Step(
            "specialisation",
            "Specialisation",
            "What is your specialisation within it? For example, “cancer immunotherapy”.",
            text("specialisation", 2, 200),
            section=section,
        ),
        Step(
            "years_in_field",
            "Years in the field",
            "How many years have you worked in this field? A whole number, e.g. 12.",
            whole_number("number of years", 0, 70),
            section=section,
        ),
        Step(
            "us_plans",
            "Plans in the United States",
            "What will you do in the United States? For example, “continue my cancer research at a university "
            "lab” or “start a company that builds medical devices”.",
            text("description of your plans", 10, 1000),
            section=section,
        ),
    )


def _education_steps(today: Today) -> tuple[Step, ...]:
    section = EDUCATION.key
    return (
        Step(
            "highest_degree",
            "Highest degree",
            "What is your highest degree?",
            choice_of(DEGREES),
            choices=DEGREES,
            section=section,
        ),
        Step(
            "field_of_study",
            "Field of study",
            "In what subject? For example, “Physics” or “Business administration”.",
            text("field of study", 2, 200),
            section=section,
        ),
        Step(
            "institution",
            "Institution",
            "Which university or institution awarded it?",
            text("institution", 2, 200),
            section=section,
        ),
        Step(
            "degree_year",
            "Year of degree",
            "In which year did you receive it? E.g. 2012.",
            year("year of your degree", today=today),
            section=section,
        ),
    )


def _employment_steps(today: Today) -> tuple[Step, ...]:
    section = EMPLOYMENT.key
    return (
        Step(
            "current_employer",
            "Current employer",
            "Who is your current employer? If you work for yourself, write “self-employed”.",
            text("employer", 2, 200),
            section=section,
        ),
        Step(
            "job_title",
            "Job title",
            "What is your job title there?",
            text("job title", 2, 200),
            section=section,
        ),
        Step(
            "employed_since",
            "Employed since",
            "Since when have you worked there? Month and year, e.g. 09/2018.",
            month_year("start date", today=today),
            section=section,
        ),
        Step(
            "previous_positions",
            "Notable previous positions",
            "Any notable previous positions? Employer, title and years for each, e.g. “Google, research scientist, "
            "2014–2018”. /skip if none.",
            text("list of previous positions", 2, 1000),
            optional=True,
            section=section,
        ),
    )


def _evidence_steps() -> tuple[Step, ...]:
    steps: list[Step] = []
    for criterion in CRITERIA:
        steps.extend(_asked_with_details(criterion, EVIDENCE, _CRITERION_WORDING[criterion.numeral]))
    steps.extend(_asked_with_details(ONE_TIME_ACHIEVEMENT, EVIDENCE, _ONE_TIME_WORDING))
    return tuple(steps)


def _history_steps() -> tuple[Step, ...]:
    steps: list[Step] = []
    for claim, wording in _HISTORY_WORDING.items():
        steps.extend(_asked_with_details(claim, HISTORY, wording))
    return tuple(steps)


def intake_flow(today: Today = date.today) -> Flow:
    """The EB-1A intake flow, with its date questions checked against ``today``.

    Args:
        today: Gives the current date; tests pass a fixed one.
    """
    return Flow(
        name="eb1a_intake",
        version=1,
        title="filling in your EB-1A intake",
        command="intake_start",
        steps=(
            *_basic_steps(today),
            *_field_steps(),
            *_education_steps(today),
            *_employment_steps(today),
            *_evidence_steps(),
            *_history_steps(),
        ),
        sections=SECTIONS,
    )


EB1A_INTAKE = intake_flow()


def claimed_criteria(answers: Answers) -> list[Criterion]:
    """The criteria the client answered yes to, in the regulation's order."""
    return [criterion for criterion in CRITERIA if criterion.is_claimed(answers)]


def _claimed_line(claimed: list[Criterion]) -> str:
    if not claimed:
        return f"You did not claim any of the {len(CRITERIA)} criteria."
    references = ", ".join(criterion.reference for criterion in claimed)
    return f"You claim {len(claimed)} of the {len(CRITERIA)} criteria: {references}."


def completion_summary(answers: Answers) -> str:
    """The message a client gets when the intake is complete: what they claim and what happens next."""
    claimed = claimed_criteria(answers)
    one_time = ONE_TIME_ACHIEVEMENT.is_claimed(answers)
    lines = ["Thank you — your EB-1A intake is complete.", "", _claimed_line(claimed)]
    if one_time:
        lines.append("You also claim a one-time achievement (a major, internationally recognised award).")
    else:
        lines.append("You did not claim a one-time achievement (a major, internationally recognised award).")
    lines += [
        "",
        f"The regulation asks for evidence that meets at least {CRITERIA_NEEDED} of the {len(CRITERIA)} criteria, "
        "or evidence of a one-time achievement.",
    ]
    if not one_time and not claimed:
        lines.append(
            "That's all right at this stage: your attorney will review your answers with you, and evidence "
            "that fits often comes up once you talk it through."
        )
    elif not one_time and len(claimed) < CRITERIA_NEEDED:
        lines.append(
            f"That is fewer than {CRITERIA_NEEDED}, which is not unusual at this stage: your attorney will review "
            "your answers with you and look for more evidence that may fit."
        )
    else:
        lines.append("Your attorney will now review your answers and let you know which documents to gather.")
    return "\n".join(lines)


@dataclass(frozen=True)
class ProgressSummary:
    """Where a client is in the intake, for ``/intake_status`` and for storing progress.

    Attributes:
        section_key: Key of the current section; ``None`` when the intake is complete.
        section_title: Title of the current section; ``None`` when the intake is complete.
        step_key: Key of the current question; ``None`` when the intake is complete.
        completed_sections: Keys of the sections whose questions are all answered, in order.
        percent_answered: Share of the applicable questions answered, 0 to 100 (100 only when complete).
        claimed: The criteria claimed so far, in the regulation's order.
        one_time_achievement: Whether a one-time achievement is claimed so far.
    """

    section_key: str | None
    section_title: str | None
    step_key: str | None
    completed_sections: tuple[str, ...]
    percent_answered: int
    claimed: tuple[Criterion, ...]
    one_time_achievement: bool

    @property
    def complete(self) -> bool:
        """Whether every applicable question is answered."""
        return self.step_key is None


def progress_summary(answers: Answers, flow: Flow = EB1A_INTAKE) -> ProgressSummary:
    """Where the client is in ``flow`` (the EB-1A intake) given ``answers``."""
    current = flow.current_step(answers)
    section = flow.section(current.section) if current is not None else None
    applicable = flow.applicable_steps(answers)
    answered = sum(1 for step in applicable if step.key in answers.values)
    return ProgressSummary(
        section_key=section.key if section else None,
        section_title=section.title if section else None,
        step_key=current.key if current else None,
        completed_sections=tuple(flow.completed_sections(answers)),
        percent_answered=answered * 100 // len(applicable),
        claimed=tuple(claimed_criteria(answers)),
        one_time_achievement=ONE_TIME_ACHIEVEMENT.is_claimed(answers),
    )


def status_text(progress: ProgressSummary) -> str:
    """A short plain-text status of the intake, as ``/intake_status`` shows it."""
    if progress.complete:
        lines = ["Your EB-1A intake is complete."]
    else:
        lines = [f"Your EB-1A intake is {progress.percent_answered}% done; you're at: {progress.section_title}."]
    titles = {section.key: section.title for section in SECTIONS}
    done = [titles[key] for key in progress.completed_sections]
    lines.append(f"Sections finished: {', '.join(done)}." if done else "No section finished yet.")
    claimed = [criterion.reference for criterion in progress.claimed]
    lines.append(f"Criteria claimed so far: {', '.join(claimed)}." if claimed else "No criteria claimed so far.")
    if progress.one_time_achievement:
        lines.append("You also claim a one-time achievement.")
    return "\n".join(lines)
