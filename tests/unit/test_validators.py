"""The typed-answer parsers: every rule with answers it accepts and answers it refuses."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from durabot.flows.model import InvalidAnswer
from durabot.flows.validators import (
    email,
    month_year,
    past_date,
    phone,
    text,
    whole_number,
    year,
    yes_no,
)

TODAY = date(2024, 6, 15)


def fixed_today() -> date:
    return TODAY


DATE_OF_BIRTH = past_date("date of birth", earliest_years_ago=110, latest_years_ago=16, today=fixed_today)
ANY_PAST_DATE = past_date("date", today=fixed_today)
START_MONTH = month_year("start date", today=fixed_today)
DEGREE_YEAR = year("year of your degree", today=fixed_today)
YEARS_IN_FIELD = whole_number("number of years", 0, 70)


def refusal(parse: Callable[[str], Any], raw: str) -> str:
    """The message ``parse`` refuses ``raw`` with."""
    with pytest.raises(InvalidAnswer) as refused:
        parse(raw)
    assert refused.value.message
    return refused.value.message


def accepted(parse: Callable[[str], Any], raw: str) -> Any:
    """What ``parse`` makes of ``raw``, checked to be storable as JSON."""
    value = parse(raw)
    assert json.loads(json.dumps(value)) == value
    return value


# -- email -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("name@example.com", "name@example.com"),
        ("  Jane.Doe+visa@Example.CO.UK  ", "Jane.Doe+visa@example.co.uk"),
        ("a@b.io", "a@b.io"),
        ("x" * 242 + "@example.com", "x" * 242 + "@example.com"),
    ],
)
def test_email_accepts_a_sensible_address_trimmed_with_the_domain_lower_cased(raw: str, expected: str) -> None:
    assert accepted(email(), raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "name.example.com",
        "name@@example.com",
        "name@home@example.com",
        "@example.com",
        "name@example",
        "name@.com",
        "name@example.",
        "name@example..com",
    ],
)
def test_email_refuses_a_malformed_address_showing_the_expected_form(raw: str) -> None:
    assert "example.com" in refusal(email(), raw)


def test_email_refuses_spaces_inside_the_address() -> None:
    assert "spaces" in refusal(email(), "jane doe@example.com")


def test_email_refuses_an_address_longer_than_254_characters() -> None:
    assert "254" in refusal(email(), "x" * 243 + "@example.com")


# -- phone -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 555 123 4567", "+15551234567"),
        ("+44 (20) 7946-0958", "+442079460958"),
        ("+7.495.123.45.67", "+74951234567"),
        (" +4930123456 ", "+4930123456"),
        ("+12345678", "+12345678"),
        ("+123456789012345", "+123456789012345"),
    ],
)
def test_phone_accepts_international_numbers_and_keeps_only_plus_and_digits(raw: str, expected: str) -> None:
    assert accepted(phone(), raw) == expected


@pytest.mark.parametrize("raw", ["555 123 4567", "001 555 123 4567", "(555) 123-4567"])
def test_phone_without_a_plus_is_told_to_add_the_country_code(raw: str) -> None:
    message = refusal(phone(), raw)
    assert "+" in message and "country code" in message


@pytest.mark.parametrize(("raw", "digits"), [("+1234567", 7), ("+1 555 12", 6), ("+1234567890123456", 16)])
def test_phone_refuses_too_few_or_too_many_digits_saying_how_many(raw: str, digits: int) -> None:
    message = refusal(phone(), raw)
    assert "8 to 15 digits" in message and f"yours has {digits}" in message


@pytest.mark.parametrize("raw", ["+1 555 CALL NOW", "+1+5551234567", "+1 555/123/4567", "+１５５５１２３４５６７"])
def test_phone_refuses_anything_but_digits_and_separators(raw: str) -> None:
    assert "digits, spaces, dashes, dots and brackets" in refusal(phone(), raw)


# -- past dates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1985-04-03", "1985-04-03"),
        ("03.04.1985", "1985-04-03"),
        ("03/04/1985", "1985-04-03"),
        ("3/4/1985", "1985-04-03"),
        ("1985-4-3", "1985-04-03"),
        (" 15.06.2008 ", "2008-06-15"),
        ("29.02.1984", "1984-02-29"),
        ("2000-02-29", "2000-02-29"),
    ],
)
def test_past_date_reads_iso_and_day_first_dates(raw: str, expected: str) -> None:
    assert accepted(DATE_OF_BIRTH, raw) == expected


def test_past_date_reads_slashes_day_first() -> None:
    assert DATE_OF_BIRTH("03/04/1985") == "1985-04-03"
    assert DATE_OF_BIRTH("13/04/1985") == "1985-04-13"
    assert "no such date" in refusal(DATE_OF_BIRTH, "04/13/1985")


@pytest.mark.parametrize("raw", ["31.02.2000", "29.02.1985", "1985-02-29", "31/04/1990", "1990-13-01", "00.01.1990"])
def test_past_date_refuses_dates_that_do_not_exist(raw: str) -> None:
    assert "no such date" in refusal(DATE_OF_BIRTH, raw)


@pytest.mark.parametrize(
    "raw", ["1985/04/03", "03-04-1985", "03.04/1985", "April 3 1985", "85-04-03", "03.04.85", "yesterday", "1985"]
)
def test_past_date_refuses_other_formats_naming_the_accepted_ones(raw: str) -> None:
    assert "YYYY-MM-DD, DD.MM.YYYY or DD/MM/YYYY" in refusal(DATE_OF_BIRTH, raw)


@pytest.mark.parametrize("raw", ["2024-06-16", "01.01.2030", "16/06/2024"])
def test_past_date_refuses_the_future(raw: str) -> None:
    assert "future" in refusal(ANY_PAST_DATE, raw)


def test_past_date_accepts_today_and_long_ago_without_bounds() -> None:
    assert ANY_PAST_DATE("2024-06-15") == "2024-06-15"
    assert ANY_PAST_DATE("01.01.1800") == "1800-01-01"


@pytest.mark.parametrize(
    "raw",
    [
        "2008-06-15",  # sixteen today
        "1913-06-16",  # 110, a day before turning 111
        "1914-06-15",  # 110 today
    ],
)
def test_date_of_birth_accepts_ages_16_to_110(raw: str) -> None:
    assert accepted(DATE_OF_BIRTH, raw) == raw


@pytest.mark.parametrize(
    ("raw", "bound"),
    [
        ("2008-06-16", "at least 16 years ago"),  # 15, sixteen tomorrow
        ("2009-01-01", "at least 16 years ago"),  # 15
        ("1913-06-15", "at most 110 years ago"),  # 111 today
        ("1900-01-01", "at most 110 years ago"),
    ],
)
def test_date_of_birth_refuses_ages_under_16_or_over_110(raw: str, bound: str) -> None:
    assert bound in refusal(DATE_OF_BIRTH, raw)


@pytest.mark.parametrize(
    ("today", "ok"),
    [
        (date(2024, 2, 28), False),
        (date(2024, 2, 29), True),  # a leap year: the birthday itself
        (date(2024, 3, 1), True),
    ],
)
def test_someone_born_on_29_february_turns_16_on_their_birthday_in_a_leap_year(today: date, ok: bool) -> None:
    parse = past_date("date of birth", latest_years_ago=16, today=lambda: today)
    if ok:
        assert parse("29.02.2008") == "2008-02-29"
    else:
        assert "at least 16" in refusal(parse, "29.02.2008")


@pytest.mark.parametrize(("today", "ok"), [(date(2025, 2, 28), False), (date(2025, 3, 1), True)])
def test_someone_born_on_29_february_has_their_birthday_on_1_march_in_other_years(today: date, ok: bool) -> None:
    parse = past_date("date of birth", latest_years_ago=17, today=lambda: today)
    if ok:
        assert parse("2008-02-29") == "2008-02-29"
    else:
        assert "at least 17" in refusal(parse, "2008-02-29")


# -- month and year ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2018-09", "2018-09"),
        ("2018-9", "2018-09"),
        ("09/2018", "2018-09"),
        ("9/2018", "2018-09"),
        ("09.2018", "2018-09"),
        ("2024-06", "2024-06"),
        ("01/1940", "1940-01"),
        ("15.09.2018", "2018-09"),
        ("15/09/2018", "2018-09"),
        ("2018-09-15", "2018-09"),
        (" 12/2023 ", "2023-12"),
    ],
)
def test_month_year_reads_month_and_year_or_a_full_date(raw: str, expected: str) -> None:
    assert accepted(START_MONTH, raw) == expected


@pytest.mark.parametrize(("raw", "month"), [("13/2020", 13), ("00/2020", 0), ("2020-13", 13)])
def test_month_year_refuses_a_month_outside_1_to_12(raw: str, month: int) -> None:
    assert f"no month {month}" in refusal(START_MONTH, raw)


@pytest.mark.parametrize("raw", ["2024-07", "07/2024", "01.2030", "2024-07-01"])
def test_month_year_refuses_the_future(raw: str) -> None:
    assert "future" in refusal(START_MONTH, raw)


@pytest.mark.parametrize("raw", ["12/1939", "1939-12", "01.01.1900"])
def test_month_year_refuses_months_before_1940(raw: str) -> None:
    assert "before 1940" in refusal(START_MONTH, raw)


@pytest.mark.parametrize("raw", ["2018", "Sept 2018", "2018/09", "09-2018", "9/18", ""])
def test_month_year_refuses_other_forms_showing_the_expected_one(raw: str) -> None:
    assert "MM/YYYY or YYYY-MM" in refusal(START_MONTH, raw)


def test_month_year_refuses_an_impossible_full_date() -> None:
    assert "no such date" in refusal(START_MONTH, "31.02.2018")


def test_month_year_takes_its_earliest_year() -> None:
    assert "before 2000" in refusal(month_year("start date", earliest=2000, today=fixed_today), "12/1999")


@pytest.mark.parametrize(("raw", "expected"), [("2015", 2015), ("1940", 1940), ("2024", 2024), (" 2020 ", 2020)])
def test_year_accepts_four_digits_from_1940_to_this_year(raw: str, expected: int) -> None:
    assert accepted(DEGREE_YEAR, raw) == expected


@pytest.mark.parametrize("raw", ["2025", "2100"])
def test_year_refuses_the_future(raw: str) -> None:
    assert "future" in refusal(DEGREE_YEAR, raw)


@pytest.mark.parametrize("raw", ["1939", "1000"])
def test_year_refuses_years_before_1940(raw: str) -> None:
    assert "before 1940" in refusal(DEGREE_YEAR, raw)


@pytest.mark.parametrize("raw", ["15", "20150", "two thousand", "2015.0", "'15", "２０１５", ""])
def test_year_refuses_anything_but_four_digits(raw: str) -> None:
    assert "four digits" in refusal(DEGREE_YEAR, raw)


def test_year_takes_its_earliest_year() -> None:
    parse = year("year", earliest=1990, today=fixed_today)
    assert parse("1990") == 1990
    assert "before 1990" in refusal(parse, "1989")


# -- whole numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [("0", 0), ("70", 70), (" 12 ", 12), ("007", 7), ("+5", 5)])
def test_whole_number_accepts_numbers_within_its_bounds(raw: str, expected: int) -> None:
    assert accepted(YEARS_IN_FIELD, raw) == expected


@pytest.mark.parametrize("raw", ["-1", "71", "1000"])
def test_whole_number_refuses_numbers_outside_its_bounds(raw: str) -> None:
    assert "a whole number from 0 to 70" in refusal(YEARS_IN_FIELD, raw)


@pytest.mark.parametrize("raw", ["3.5", "twelve", "1e3", "12 years", "1_0", "٣", ""])
def test_whole_number_refuses_anything_but_digits(raw: str) -> None:
    assert "digits only" in refusal(YEARS_IN_FIELD, raw)


# -- yes / no ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("yes", True),
        ("Yes", True),
        ("YES", True),
        ("y", True),
        (" Y ", True),
        ("no", False),
        ("No", False),
        ("NO", False),
        ("n", False),
        (" N ", False),
    ],
)
def test_yes_no_reads_yes_y_no_n_in_any_case(raw: str, expected: bool) -> None:
    assert accepted(yes_no(), raw) is expected


@pytest.mark.parametrize("raw", ["maybe", "yep", "nope", "true", "1", "ye s", ""])
def test_yes_no_refuses_anything_else(raw: str) -> None:
    assert "yes or no" in refusal(yes_no(), raw)


# -- text --------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [("Al", "Al"), ("  Al  ", "Al"), ("x" * 200, "x" * 200)])
def test_text_accepts_lengths_at_its_bounds_after_trimming(raw: str, expected: str) -> None:
    assert accepted(text("full name", 2, 200), raw) == expected


@pytest.mark.parametrize(("raw", "said"), [("A", "at least 2"), (" A ", "at least 2"), ("x" * 201, "at most 200")])
def test_text_refuses_lengths_outside_its_bounds_naming_them(raw: str, said: str) -> None:
    message = refusal(text("full name", 2, 200), raw)
    assert said in message and "full name" in message


def test_text_defaults_to_at_least_2_and_at_most_1000_characters() -> None:
    parse = text("note")
    assert parse("ok") == "ok" and parse("x" * 1000) == "x" * 1000
    assert "at least 2" in refusal(parse, "x")
    assert "at most 1,000" in refusal(parse, "x" * 1001)


@pytest.mark.parametrize(("length", "ok"), [(19, False), (20, True), (1000, True), (1001, False)])
def test_details_text_bounds_20_to_1000(length: int, ok: bool) -> None:
    parse = text("details", 20, 1000)
    if ok:
        assert parse("d" * length) == "d" * length
    else:
        refusal(parse, "d" * length)
