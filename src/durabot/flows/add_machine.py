"""The add-machine flow: what a technician is asked when saving a machine to their library."""

from __future__ import annotations

from durabot.domain.machines import Machine, MachineDraft, clean_nickname, nickname_problem
from durabot.flows.model import Answers, Flow, InvalidAnswer, Step, free_text


def parse_nickname(raw: str) -> str:
    """The cleaned nickname (see :func:`clean_nickname`) if it has 2–100 characters and a key that fits."""
    nickname = clean_nickname(raw)
    problem = nickname_problem(nickname)
    if problem:
        raise InvalidAnswer(problem)
    return nickname


PHOTO = "photo"
"""The answer a nameplate photo is kept under (the Bot API's file id of its largest size)."""

ADD_MACHINE = Flow(
    name="add_machine",
    version=1,
    title="adding a machine to your library",
    command="addmachine",
    steps=(
        Step(
            "nickname",
            "Nickname",
            "What do you call this machine? A short nickname you will recognise, e.g. “Press 3 (Hall B)”.",
            parse=parse_nickname,
        ),
        Step("manufacturer", "Manufacturer", "Who made it?", free_text(what="manufacturer"), optional=True),
        Step("model_number", "Model number", "What is its model number?", free_text(what="model number"), True),
        Step(
            "serial_number", "Serial number", "What is its serial number?", free_text(what="serial number"), True
        ),
        Step(
            "location",
            "Location",
            "Where is it? (site, building, line or room)",
            free_text(what="location"),
            optional=True,
        ),
        Step("notes", "Notes", "Any notes to keep with it?", free_text(what="note"), optional=True),
    ),
    photo_key=PHOTO,
)


def draft_from_answers(user_id: int, answers: Answers) -> MachineDraft:
    """The machine described by a completed add-machine conversation."""
    values = answers.values
    return MachineDraft(
        user_id=user_id,
        nickname=values["nickname"],
        manufacturer=values.get("manufacturer"),
        model_number=values.get("model_number"),
        serial_number=values.get("serial_number"),
        location=values.get("location"),
        notes=values.get("notes"),
        photo_file_id=values.get(PHOTO),
    )


def describe_machine(machine: MachineDraft) -> str:
    """A multi-line description of a machine, leaving out empty fields."""
    fields = [
        ("Manufacturer", machine.manufacturer),
        ("Model number", machine.model_number),
        ("Serial number", machine.serial_number),
        ("Location", machine.location),
        ("Notes", machine.notes),
    ]
    lines = [f"• {label}: {value}" for label, value in fields if value]
    if machine.photo_file_id:
        lines.append("• Photo kept")
    return "\n".join(lines) if lines else "• (no details given)"


def one_line(machine: Machine) -> str:
    """A machine on one line, as in the library list."""
    make = " ".join(part for part in (machine.manufacturer, machine.model_number) if part)
    details = [part for part in (make, f"S/N {machine.serial_number}" if machine.serial_number else "") if part]
    text = machine.nickname + (f" — {', '.join(details)}" if details else "")
    if machine.location:
        text += f" · {machine.location}"
    return text
