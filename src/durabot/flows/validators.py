"""Pure parsers for typed answers (email, phone, dates, numbers, yes/no) that explain what they expect."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from durabot.flows.model import MAX_ANSWER_LENGTH, InvalidAnswer, free_text

Today = Callable[[], date]
"""Gives the current date; injected so that tests do not depend on the calendar."""

EARLIEST_YEAR = 1940
"""No month or year answer may lie before this year unless a step says otherwise."""

EMAIL_MAX_LENGTH = 254
PHONE_MIN_DIGITS = 8
PHONE_MAX_DIGITS = 15

_PHONE_EXAMPLE = "+1 555 123 4567"
_DATE_FORMATS = "YYYY-MM-DD, DD.MM.YYYY or DD/MM/YYYY"
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})", re.ASCII)
_DAY_FIRST_DATE = re.compile(r"(\d{1,2})([./])(\d{1,2})\2(\d{4})", re.ASCII)
_ISO_MONTH = re.compile(r"(\d{4})-(\d{1,2})", re.ASCII)
_MONTH_FIRST = re.compile(r"(\d{1,2})[./](\d{4})", re.ASCII)
_FOUR_DIGITS = re.compile(r"\d{4}", re.ASCII)
_WHOLE_NUMBER = re.compile(r"[+-]?\d+", re.ASCII)
_PHONE_CHARACTERS = frozenset("0123456789 -.()")

_YES = frozenset({"yes", "y"})
_NO = frozenset({"no", "n"})


def text(what: str, min_length: int = 2, max_length: int = MAX_ANSWER_LENGTH) -> Callable[[str], str]:
    """Text of ``min_length`` to ``max_length`` characters after trimming.

    Args:
        what: What the answer is, as it reads after "The", e.g. "full name".
        min_length: Fewest characters accepted.
        max_length: Most characters accepted.
    """
    parse: Callable[[str], str] = free_text(min_length, max_length, what)
    return parse


def email() -> Callable[[str], str]:
    """An email address, trimmed, with its domain lower-cased.

    A sensible check, not a full RFC 5322 parser: one "@", something before it,
    a domain with a dot after it, no spaces, at most 254 characters.
    """

    def parse(raw: str) -> str:
        value = raw.strip()
        if len(value) > EMAIL_MAX_LENGTH:
            raise InvalidAnswer(
                f"That email address is too long; an address has at most {EMAIL_MAX_LENGTH} characters."
            )
        if any(character.isspace() for character in value):
            raise InvalidAnswer("An email address can't contain spaces. Please type it like name@example.com.")
        if value.count("@") != 1:
            raise InvalidAnswer("An email address has exactly one @, like name@example.com.")
        local, domain = value.split("@")
        if not local:
            raise InvalidAnswer("Something is missing before the @. Please type the address like name@example.com.")
        labels = domain.split(".")
        if len(labels) < 2 or not all(labels):
            raise InvalidAnswer(
                "The part after the @ should be a domain with a dot in it, like example.com. "
                "Please check the address."
            )
        return f"{local}@{domain.lower()}"

    return parse


def phone() -> Callable[[str], str]:
    """A phone number in international form, normalised to "+" and digits ("+1 555 123 4567" → "+15551234567").

    Spaces, dashes, dots and brackets are accepted and dropped; the number must
    start with "+" and the country code and have 8 to 15 digits.
    """

    def parse(raw: str) -> str:
        value = raw.strip()
        if not value.startswith("+"):
            raise InvalidAnswer(
                f"Please start the number with + and your country code, e.g. {_PHONE_EXAMPLE} "
                "(+1 is the USA and Canada, +44 the UK, +91 India)."
            )
        rest = value[1:]
        if any(character not in _PHONE_CHARACTERS for character in rest):
            raise InvalidAnswer(
                f"After the + a phone number may contain only digits, spaces, dashes, dots and brackets, "
                f"e.g. {_PHONE_EXAMPLE}."
            )
        digits = "".join(character for character in rest if character.isdigit())
        if not PHONE_MIN_DIGITS <= len(digits) <= PHONE_MAX_DIGITS:
            raise InvalidAnswer(
                f"A phone number has {PHONE_MIN_DIGITS} to {PHONE_MAX_DIGITS} digits including the country code; "
                f"yours has {len(digits)}. Please check it, e.g. {_PHONE_EXAMPLE}."
            )
        return "+" + digits

    return parse


def _calendar_date(year: int, month: int, day: int, typed: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidAnswer(f"There is no such date as {typed}. Please check the day and the month.") from None


def _read_date(value: str, what: str) -> date:
    """The date written in one of the accepted formats; day first for dots and slashes."""
    iso = _ISO_DATE.fullmatch(value)
    if iso:
        year, month, day = (int(part) for part in iso.groups())
        return _calendar_date(year, month, day, value)
    day_first = _DAY_FIRST_DATE.fullmatch(value)
    if day_first:
        day_text, _, month_text, year_text = day_first.groups()
        return _calendar_date(int(year_text), int(month_text), int(day_text), value)
    raise InvalidAnswer(
        f"Please write the {what} as {_DATE_FORMATS}, e.g. 1985-04-03 or 03.04.1985 (day first: 3 April 1985)."
    )


def _full_years_between(earlier: date, later: date) -> int:
    """Whole years from ``earlier`` to ``later``, as an age is counted."""
    before_anniversary = (later.month, later.day) < (earlier.month, earlier.day)
    return later.year - earlier.year - int(before_anniversary)


def past_date(
    what: str,
    earliest_years_ago: int | None = None,
    latest_years_ago: int | None = None,
    today: Today = date.today,
) -> Callable[[str], str]:
    """A date not in the future, as an ISO string "YYYY-MM-DD".

    Accepts "YYYY-MM-DD", "DD.MM.YYYY" and "DD/MM/YYYY"; with dots or slashes the
    day comes first, so "03/04/1985" is 3 April 1985.

    Args:
        what: What the date is, e.g. "date of birth".
        earliest_years_ago: When given, the date may be at most this many whole years
            ago (for a date of birth: the oldest age accepted, e.g. 110).
        latest_years_ago: When given, the date must be at least this many whole years
            ago (for a date of birth: the youngest age accepted, e.g. 16).
        today: Gives the current date.
    """

    def parse(raw: str) -> str:
        value = _read_date(raw.strip(), what)
        now = today()
        if value > now:
            raise InvalidAnswer(f"The {what} can't be in the future. Please check the year.")
        years_ago = _full_years_between(value, now)
        if latest_years_ago is not None and years_ago < latest_years_ago:
            raise InvalidAnswer(f"The {what} must be at least {latest_years_ago} years ago. Please check the year.")
        if earliest_years_ago is not None and years_ago > earliest_years_ago:
            raise InvalidAnswer(
                f"The {what} can be at most {earliest_years_ago} years ago. Please check the year."
            )
        return value.isoformat()

    return parse


def month_year(what: str, today: Today = date.today, earliest: int = EARLIEST_YEAR) -> Callable[[str], str]:
    """A month not in the future and not before ``earliest``, as "YYYY-MM".

    Accepts "YYYY-MM", "MM/YYYY", "MM.YYYY" or a full date in a format
    :func:`past_date` accepts (its day is dropped).

    Args:
        what: What the month is, e.g. "start date".
        today: Gives the current date.
        earliest: The first year accepted.
    """

    def read(value: str) -> tuple[int, int]:
        iso = _ISO_MONTH.fullmatch(value)
        if iso:
            return int(iso.group(1)), int(iso.group(2))
        month_first = _MONTH_FIRST.fullmatch(value)
        if month_first:
            return int(month_first.group(2)), int(month_first.group(1))
        if _ISO_DATE.fullmatch(value) or _DAY_FIRST_DATE.fullmatch(value):
            full = _read_date(value, what)
            return full.year, full.month
        raise InvalidAnswer(f"Please write the {what} as MM/YYYY or YYYY-MM, e.g. 09/2018 (a full date works too).")

    def parse(raw: str) -> str:
        year_number, month_number = read(raw.strip())
        if not 1 <= month_number <= 12:
            raise InvalidAnswer(f"There is no month {month_number}; please use a month from 01 to 12, e.g. 09/2018.")
        now = today()
        if (year_number, month_number) > (now.year, now.month):
            raise InvalidAnswer(f"The {what} can't be in the future. Please check the month and year.")
        if year_number < earliest:
            raise InvalidAnswer(f"The {what} can't be before {earliest}. Please check the year.")
        return f"{year_number:04d}-{month_number:02d}"

    return parse


def year(what: str, earliest: int = EARLIEST_YEAR, today: Today = date.today) -> Callable[[str], int]:
    """A four-digit year not in the future and not before ``earliest``.

    Args:
        what: What the year is, e.g. "year of your degree".
        earliest: The first year accepted.
        today: Gives the current date.
    """

    def parse(raw: str) -> int:
        value = raw.strip()
        if not _FOUR_DIGITS.fullmatch(value):
            raise InvalidAnswer(f"Please write the {what} as four digits, e.g. 2015.")
        number = int(value)
        if number > today().year:
            raise InvalidAnswer(f"The {what} can't be in the future. Please check it.")
        if number < earliest:
            raise InvalidAnswer(f"The {what} can't be before {earliest}. Please check it.")
        return number

    return parse


def whole_number(what: str, minimum: int, maximum: int) -> Callable[[str], int]:
    """A whole number from ``minimum`` to ``maximum``, both included.

    Args:
        what: What the number counts, e.g. "number of years".
        minimum: The smallest number accepted.
        maximum: The largest number accepted.
    """
    expected = f"a whole number from {minimum} to {maximum}"

    def parse(raw: str) -> int:
        value = raw.strip()
        if not _WHOLE_NUMBER.fullmatch(value):
            raise InvalidAnswer(f"Please write the {what} as {expected}, using digits only, e.g. {minimum}.")
        number = int(value)
        if not minimum <= number <= maximum:
            raise InvalidAnswer(f"The {what} must be {expected}; you wrote {number}.")
        return number

    return parse


def yes_no() -> Callable[[str], bool]:
    """``True`` for "yes" or "y", ``False`` for "no" or "n", in any case (the Yes/No buttons send "yes"/"no")."""

    def parse(raw: str) -> bool:
        value = raw.strip().casefold()
        if value in _YES:
            return True
        if value in _NO:
            return False
        raise InvalidAnswer("Please answer yes or no (or tap one of the buttons).")

    return parse
