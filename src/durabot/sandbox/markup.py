"""Telegram's checks on what a bot sends: message text, parse modes and reply keyboards."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from durabot.sandbox.errors import bad_request

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
HTML_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code", "pre"}
    | {"blockquote", "tg-emoji", "br"}
)
INLINE_BUTTON_ACTIONS = (
    "callback_data",
    "url",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


def message_text(text: str | None, parse_mode: str | None) -> str:
    """The text a message shows: formatting removed, surrounding whitespace trimmed, limits checked.

    Raises:
        ApiError: 400 when the text is empty, longer than 4096 characters or its HTML is malformed.
    """
    shown = visible_text(text or "", parse_mode).strip()
    if not shown:
        raise bad_request("message text is empty")
    if len(shown) > MAX_TEXT_LENGTH:
        raise bad_request("message is too long")
    return shown


def caption_text(caption: str | None, parse_mode: str | None) -> str | None:
    """A media caption as shown, or ``None`` if there is none.

    Raises:
        ApiError: 400 when it is longer than 1024 characters or its HTML is malformed.
    """
    shown = visible_text(caption or "", parse_mode).strip()
    if len(shown) > MAX_CAPTION_LENGTH:
        raise bad_request("message caption is too long")
    return shown or None


def visible_text(text: str, parse_mode: str | None) -> str:
    """``text`` without its HTML tags when ``parse_mode`` is HTML; other modes are kept as written."""
    if (parse_mode or "").lower() != "html":
        return text
    parser = _TagStripper()
    parser.feed(text)
    parser.close()
    return parser.finish()


class _TagStripper(HTMLParser):
    """Collects the text of Telegram-flavoured HTML and rejects tags Telegram does not know."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in HTML_TAGS:
            raise bad_request(f'can\'t parse entities: Unsupported start tag "{tag}"')
        if tag == "br":
            self._parts.append("\n")
        else:
            self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "br":
            return
        if not self._open or self._open[-1] != tag:
            raise bad_request(f'can\'t parse entities: Unexpected end tag "{tag}"')
        self._open.pop()

    def handle_data(self, data: str) -> None:
        self._parts.append(data)

    def finish(self) -> str:
        """The collected text, once every tag is closed."""
        if self._open:
            tag = self._open[-1]
            raise bad_request(f'can\'t parse entities: Can\'t find end tag corresponding to start tag "{tag}"')
        return "".join(self._parts)


def reply_markup(markup: Any) -> Any:
    """Check a ``reply_markup`` the way Telegram does and return it unchanged.

    Raises:
        ApiError: 400 for a malformed keyboard or ``callback_data`` outside 1–64 bytes.
    """
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        for button in _buttons(markup["inline_keyboard"]):
            _check_inline_button(button)
    elif "keyboard" in markup:
        for button in _buttons(markup["keyboard"]):
            if not isinstance(button, (str, dict)):
                raise bad_request("can't parse keyboard button")
    elif not {"remove_keyboard", "force_reply"} & markup.keys():
        raise bad_request("can't parse reply keyboard markup JSON object")
    return markup


def inline_keyboard(markup: Any) -> dict[str, Any] | None:
    """The markup if it is an inline keyboard, the only kind a ``Message`` carries."""
    if isinstance(markup, dict) and "inline_keyboard" in markup:
        return {"inline_keyboard": markup["inline_keyboard"]}
    return None


def _buttons(rows: Any) -> list[Any]:
    """Every button of a keyboard given as rows."""
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request("can't parse reply keyboard markup JSON object")
    return [button for row in rows for button in row]


def _check_inline_button(button: Any) -> None:
    """One inline button: a label and exactly one action; callback data of 1–64 bytes."""
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request('can\'t parse inline keyboard button: Field "text" must be of type String')
    actions = [action for action in INLINE_BUTTON_ACTIONS if action in button]
    if not actions:
        raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
    data = button.get("callback_data")
    if "callback_data" in button and (
        not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES
    ):
        raise bad_request("BUTTON_DATA_INVALID")
    if not button["text"].strip():
        raise bad_request("BUTTON_TEXT_INVALID")
    url = button.get("url")
    if "url" in button and not (isinstance(url, str) and url.startswith(("http://", "https://", "tg://"))):
        raise bad_request("BUTTON_URL_INVALID")
