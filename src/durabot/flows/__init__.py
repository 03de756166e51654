"""Flows: multi-step conversations declared as data, with pure functions to move through them."""

from durabot.flows.model import (
    MAX_ANSWER_LENGTH,
    Answers,
    Choice,
    Flow,
    InvalidAnswer,
    Section,
    Step,
    choice_of,
    free_text,
)

__all__ = [
    "MAX_ANSWER_LENGTH",
    "Answers",
    "Choice",
    "Flow",
    "InvalidAnswer",
    "Section",
    "Step",
    "choice_of",
    "free_text",
]
