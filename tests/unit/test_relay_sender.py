"""The relay's python-telegram-bot sender: which Bot API errors mean retry, wait or give up, and the keyboards it sends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from durabot.replies import Button
from durabot.transport.sender import FloodControlError, PermanentSendError, TransientSendError
from durabot.transport.telegram_sender import inline_keyboard, send_error


def test_a_429_becomes_flood_control_with_its_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # python-telegram-bot 23's durations, without a deprecation warning
    error = send_error(RetryAfter(timedelta(seconds=7)))
    assert isinstance(error, FloodControlError) and error.retry_after == timedelta(seconds=7)


@pytest.mark.parametrize(
    "error",
    [BadRequest("Message text is empty"), Forbidden("Forbidden: bot was blocked by the user"), ChatMigrated(-100123)],
)
def test_a_400_403_or_migrated_group_is_permanent_and_keeps_its_reason(error: TelegramError) -> None:
    translated = send_error(error)
    assert isinstance(translated, PermanentSendError)
    name = type(error).__name__
    assert str(translated) == (str(error) if str(error).startswith(f"{name}:") else f"{name}: {error}")
    assert str(translated).count(f"{name}:") == 1, "Telegram's own text may name the error already: said once"


@pytest.mark.parametrize(
    "error", [NetworkError("Bad Gateway"), TimedOut(), TelegramError("Internal Server Error"), ConnectionResetError()]
)
def test_network_trouble_and_server_errors_are_transient(error: TelegramError | OSError) -> None:
    assert isinstance(send_error(error), TransientSendError)


def test_buttons_become_an_inline_keyboard_of_data_and_link_buttons() -> None:
    markup = inline_keyboard(((Button("Skip", "f:1:s"), Button.link("Docs", "https://example.org/")), ()))
    assert markup is not None
    [[skip, docs]] = markup.inline_keyboard
    assert (skip.text, skip.callback_data, skip.url) == ("Skip", "f:1:s", None)
    assert (docs.text, docs.callback_data, docs.url) == ("Docs", None, "https://example.org/")
    assert inline_keyboard(()) is None and inline_keyboard(((),)) is None
