"""The flow model: a flow is a name, a version and an ordered list of steps; answers say where a user is."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_ANSWER_LENGTH = 1000
"""No typed answer may be longer than this many characters."""


class InvalidAnswer(ValueError):
    """An answer a step cannot accept; ``message`` tells the user why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


Parser = Callable[[str], Any]
"""Turns a trimmed answer into the value stored, or raises :class:`InvalidAnswer`."""

Condition = Callable[[Mapping[str, Any]], bool]
"""Says from the answers so far whether a step applies."""


def free_text(min_length: int = 1, max_length: int = MAX_ANSWER_LENGTH, what: str = "answer") -> Parser:
    """A parser accepting text of ``min_length`` to ``max_length`` characters after trimming."""

    def parse(raw: str) -> str:
        value = raw.strip()
        if len(value) < min_length:
            raise InvalidAnswer(f"The {what} must be at least {min_length} characters long.")
        if len(value) > max_length:
            raise InvalidAnswer(
                f"The {what} can be at most {max_length:,} characters long; yours has {len(value):,}."
            )
        return value

    return parse


@dataclass(frozen=True)
class Choice:
    """One of a step's offered answers: the value stored and the label shown."""

    value: str
    label: str


def choice_of(choices: tuple[Choice, ...]) -> Parser:
    """A parser accepting one of ``choices``, by value or label, ignoring case."""

    def parse(raw: str) -> str:
        wanted = raw.strip().casefold()
        for choice in choices:
            if wanted in (choice.value.casefold(), choice.label.casefold()):
                return choice.value
        options = ", ".join(choice.label for choice in choices)
        raise InvalidAnswer(f"Please pick one of: {options}.")

    return parse


@dataclass(frozen=True)
class Step:
    """One question of a flow.

    Attributes:
        key: Stable identifier of the answer (stored; renaming it is a migration).
        label: Short name shown in summaries, e.g. "Model number".
        prompt: The question as the user sees it.
        parse: Validates and converts the typed answer.
        optional: Whether ``/skip`` is accepted.
        choices: Offered answers, rendered as buttons.
        condition: When given, the step is asked only if this holds for the answers so far.
        section: Key of the :class:`Section` (block) the step belongs to, if the flow has sections.
    """

    key: str
    label: str
    prompt: str
    parse: Parser = field(default_factory=free_text)
    optional: bool = False
    choices: tuple[Choice, ...] = ()
    condition: Condition | None = None
    section: str = ""

    def applies(self, answers: Mapping[str, Any]) -> bool:
        """Whether this step is part of the conversation given ``answers``."""
        return self.condition is None or self.condition(answers)


@dataclass(frozen=True)
class Answers:
    """What a user has answered so far: values by step key, and the order they were given in.

    A skipped step is stored with the value ``None``.
    """

    values: Mapping[str, Any] = field(default_factory=dict)
    order: tuple[str, ...] = ()

    def with_answer(self, key: str, value: Any) -> Answers:
        """These answers plus ``key`` answered with ``value`` (``None`` for skipped)."""
        order = tuple(k for k in self.order if k != key) + (key,)
        return Answers({**self.values, key: value}, order)

    def without(self, key: str) -> Answers:
        """These answers with ``key`` unanswered."""
        return Answers({k: v for k, v in self.values.items() if k != key}, tuple(k for k in self.order if k != key))

    def without_last(self) -> tuple[Answers, str] | None:
        """These answers without the most recent one, and its key; ``None`` if there is none."""
        if not self.order:
            return None
        key = self.order[-1]
        return self.without(key), key

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form for storage."""
        return {"answers": dict(self.values), "order": list(self.order)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Answers:
        """Read back what :meth:`to_json` produced; tolerates missing parts."""
        data = data or {}
        values = dict(data.get("answers") or {})
        stored = data.get("order")  # kept as stored, even empty: values that answer no step (a photo) are not in it
        order = tuple(k for k in (values.keys() if stored is None else stored) if k in values)
        return cls(values, order)


@dataclass(frozen=True)
class Section:
    """A block of a long flow, with its own progress ("Education", "Evidence"…)."""

    key: str
    title: str


@dataclass(frozen=True)
class Flow:
    """A conversation declared as data.

    Attributes:
        name: Stable identifier stored with each conversation, e.g. "add_machine".
        version: Bumped when the steps change; stored for reference only, because the
            current step is always derived from the answers.
        title: What the user is doing, e.g. "adding a machine".
        command: The command that starts or resumes the flow, without the slash.
        steps: The questions, in order.
        sections: The blocks the steps are grouped in, in order (optional).
        photo_key: Where a photo sent during the flow is kept among the answers (it answers no
            question); ``None`` when the flow takes no photo. A photo sent outside any flow is
            offered to the flow that takes one.
    """

    name: str
    version: int
    title: str
    command: str
    steps: tuple[Step, ...]
    sections: tuple[Section, ...] = ()
    photo_key: str | None = None

    def __post_init__(self) -> None:
        keys = [step.key for step in self.steps]
        if len(keys) != len(set(keys)):
            raise ValueError(f"flow {self.name!r} repeats a step key")
        if not self.steps:
            raise ValueError(f"flow {self.name!r} has no steps")
        known = {section.key for section in self.sections}
        if any(step.section not in known for step in self.steps if step.section or known):
            raise ValueError(f"flow {self.name!r} has a step outside its sections")

    def step(self, key: str) -> Step:
        """The step with this key."""
        for step in self.steps:
            if step.key == key:
                return step
        raise KeyError(key)

    def applicable_steps(self, answers: Answers) -> list[Step]:
        """The steps that apply given the answers so far, in order."""
        return [step for step in self.steps if step.applies(answers.values)]

    def current_step(self, answers: Answers) -> Step | None:
        """The first applicable step not yet answered, or ``None`` when the flow is complete."""
        for step in self.applicable_steps(answers):
            if step.key not in answers.values:
                return step
        return None

    def position(self, answers: Answers) -> tuple[int, int]:
        """``(n, total)`` for the progress line "Step n of total"."""
        steps = self.applicable_steps(answers)
        current = self.current_step(answers)
        number = steps.index(current) + 1 if current is not None else len(steps)
        return number, len(steps)

    def section(self, key: str) -> Section:
        """The section with this key."""
        return next(section for section in self.sections if section.key == key)

    def section_position(self, answers: Answers) -> tuple[Section, int, int, int] | None:
        """For a flow with sections: the current section, its number, and the question's number and count in it."""
        current = self.current_step(answers)
        if current is None or not self.sections:
            return None
        in_section = [step for step in self.applicable_steps(answers) if step.section == current.section]
        section = self.section(current.section)
        return section, self.sections.index(section) + 1, in_section.index(current) + 1, len(in_section)

    def completed_sections(self, answers: Answers) -> list[str]:
        """Keys of the sections whose applicable questions are all answered, in order."""
        open_sections = {step.section for step in self.applicable_steps(answers) if step.key not in answers.values}
        return [section.key for section in self.sections if section.key not in open_sections]
