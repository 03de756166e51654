"""The relay's send rates: two settings, either of which 0 or empty lifts; lifted by default against the sandbox."""

from __future__ import annotations

import contextlib

import pytest
from aiolimiter import AsyncLimiter

from durabot.config import Settings
from durabot.transport.rate_limits import AdjustableRate, RateLimits

TOKEN = "123456:ABC-token"


def test_against_telegram_the_rates_default_to_thirty_a_second_and_one_per_chat() -> None:
    assert Settings(_env_file=None, telegram_bot_token=TOKEN).send_rates == (30, 1)


def test_against_the_sandbox_the_rates_are_lifted_unless_set() -> None:
    assert Settings(_env_file=None).send_rates == (None, None)
    assert Settings(_env_file=None, telegram_chat_rate=2).send_rates == (None, 2)


def test_the_rates_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_GLOBAL_RATE", "100")
    monkeypatch.setenv("TELEGRAM_CHAT_RATE", "0.5")
    assert Settings(_env_file=None).send_rates == (100, 0.5)


@pytest.mark.parametrize("lifted", ["0", ""])
def test_zero_or_an_empty_value_lifts_a_rate(monkeypatch: pytest.MonkeyPatch, lifted: str) -> None:
    monkeypatch.setenv("TELEGRAM_GLOBAL_RATE", lifted)
    assert Settings(_env_file=None, telegram_bot_token=TOKEN).send_rates == (None, 1)


def test_a_negative_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="telegram_chat_rate"):
        Settings(_env_file=None, telegram_chat_rate=-1)


def test_lifted_limits_never_wait() -> None:
    limits = RateLimits(None, 0)
    assert isinstance(limits.overall, contextlib.nullcontext)
    assert isinstance(limits.chat(7), contextlib.nullcontext) and isinstance(limits.chat(-100), contextlib.nullcontext)


def test_set_limits_allow_their_rate_overall_per_private_chat_and_twenty_a_minute_per_group() -> None:
    limits = RateLimits(30, 0.5)
    assert isinstance(limits.overall, AdjustableRate) and (limits.overall.per_second, limits.overall.burst) == (30, 30)
    private = limits.chat(7)
    assert isinstance(private, AsyncLimiter) and (private.max_rate, private.time_period) == (1, 2)
    assert limits.chat(7) is private, "a chat keeps its limiter"
    group = limits.chat(-100)
    assert isinstance(group, AsyncLimiter) and (group.max_rate, group.time_period) == (20, 60)
