"""Pure rendering of a flow's questions, progress line and summaries into replies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from durabot.flows.model import Answers, Flow, Step
from durabot.replies import Button, Reply

SKIP = "s"
CANCEL = "x"
BACK = "b"
SAVE_PHOTO = "p"
"""The code of the button that accepts the offer to save a photo's machine."""

ButtonData = Callable[[str], str]
"""Turns a button code (a choice index, :data:`SKIP`, :data:`CANCEL`) into the button's data."""


def progress_line(flow: Flow, answers: Answers) -> str:
    """"Step n of total" for the current position; for a flow in sections, the section's progress."""
    within = flow.section_position(answers)
    if within is not None:
        section, block, question, questions = within
        return f"{section.title} (part {block} of {len(flow.sections)}) · Question {question} of {questions}"
    number, total = flow.position(answers)
    return f"Step {number} of {total}"


def show_value(value: Any) -> str:
    """How a stored answer reads in a summary."""
    if value is None:
        return "— (skipped)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def answer_lines(flow: Flow, answers: Answers) -> list[str]:
    """One "• Label: value" line for every answered step that still applies, in flow order."""
    return [
        f"• {step.label}: {show_value(answers.values[step.key])}"
        for step in flow.applicable_steps(answers)
        if step.key in answers.values
    ]


def _hint(step: Step, answers: Answers) -> str:
    parts = []
    if step.optional:
        parts.append("/skip to leave it out")
    if answers.order:
        parts.append("/back to change the previous answer")
    parts.append("/cancel to stop")
    return "(" + ", ".join(parts) + ".)"


def _buttons(step: Step, button_data: ButtonData | None) -> tuple[tuple[Button, ...], ...]:
    if button_data is None:
        return ()
    rows: list[tuple[Button, ...]] = [
        (Button(choice.label, button_data(str(index))),) for index, choice in enumerate(step.choices)
    ]
    controls = []
    if step.optional:
        controls.append(Button("Skip", button_data(SKIP)))
    controls.append(Button("Cancel", button_data(CANCEL)))
    rows.append(tuple(controls))
    return tuple(rows)


def question(flow: Flow, answers: Answers, button_data: ButtonData | None = None, lead: str = "") -> Reply:
    """The current step's question with its progress line, hints and buttons.

    ``lead`` is put first, e.g. why the previous answer was not accepted.
    """
    step = flow.current_step(answers)
    if step is None:
        raise ValueError(f"flow {flow.name!r} has no open question")
    text = f"{progress_line(flow, answers)} · {step.label}\n{step.prompt}\n{_hint(step, answers)}"
    if lead:
        text = f"{lead}\n\n{text}"
    return Reply(text, _buttons(step, button_data))


def welcome_back(flow: Flow, answers: Answers, button_data: ButtonData | None = None) -> Reply:
    """The resume message: what was entered so far, then the current question."""
    lines = answer_lines(flow, answers)
    so_far = "\n".join(lines) if lines else "Nothing entered yet."
    lead = f"Welcome back! You were {flow.title}. So far:\n{so_far}"
    return question(flow, answers, button_data, lead=lead)
