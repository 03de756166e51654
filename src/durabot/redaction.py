"""Taking secrets and personal data out of text before it is logged or printed.

Three things are redacted from any text passed to :func:`redact`:

* the secrets registered at start-up (the bot token, the webhook secret, the database password);
* anything shaped like a bot token, in a Bot API URL (``…/bot123:AA…/getMe``) or on its own;
* the values PostgreSQL and asyncpg quote back in their error messages (``Key (email)=(…)``,
  ``Failing row contains (…)``, ``invalid input for query argument $1: '…'``), which would
  otherwise carry a user's answers or a machine's fields into the logs.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

REDACTED = "[redacted]"
HIDDEN = "[hidden]"

BOT_TOKEN_IN_URL = re.compile(r"(?<![A-Za-z0-9])bot(\d+):[A-Za-z0-9_-]+")
BARE_BOT_TOKEN = re.compile(r"(?<![A-Za-z0-9])(\d{5,}):[A-Za-z0-9_-]{30,}(?![A-Za-z0-9_-])")

QUOTED_VALUES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bKey \((.*?)\)=\(.*$", re.MULTILINE), rf"Key (\1)=({HIDDEN})"),
    (re.compile(r"\bFailing row contains \(.*$", re.MULTILINE), f"Failing row contains ({HIDDEN})."),
    (re.compile(r"(query argument \$\d+: ).*?( \([^()\n]*\))?$", re.MULTILINE), rf"\g<1>{HIDDEN}\g<2>"),
    (re.compile(r"(invalid input (?:syntax|value) for [^:\n]*: ).*$", re.MULTILINE), rf"\g<1>{HIDDEN}"),
    (re.compile(r"\bvalue \".*?\" is out of range"), f"value {HIDDEN} is out of range"),
    (re.compile(r"\bToken \".*?\" is invalid"), f"Token {HIDDEN} is invalid"),
    (re.compile(r"(JSON data, line \d+: ).*$", re.MULTILINE), rf"\g<1>{HIDDEN}"),
)
"""PostgreSQL's and asyncpg's messages that quote a value, and how each reads with the value hidden."""


class Redactor:
    """Replaces registered secrets, bot tokens and quoted database values in text; safe to share between threads."""

    def __init__(self) -> None:
        self._secrets: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def register(self, secrets: Iterable[str | None]) -> None:
        """Redact each of ``secrets`` (empty and ``None`` ones are skipped) from now on, with those known before.

        Of a bot token only the part after the colon is secret: the bot id before it stays readable.
        """
        with self._lock:
            self._secrets = self._secrets | {_secret_part(secret) for secret in secrets if secret}
            longest_first = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, longest_first))) if longest_first else None

    def redact(self, text: str) -> str:
        """``text`` with every secret, bot token and quoted database value replaced."""
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        text = BOT_TOKEN_IN_URL.sub(rf"bot\1:{REDACTED}", text)
        text = BARE_BOT_TOKEN.sub(rf"\1:{REDACTED}", text)
        for quoted, hidden in QUOTED_VALUES:
            text = quoted.sub(hidden, text)
        return text


def _secret_part(secret: str) -> str:
    bot_id, colon, rest = secret.partition(":")
    return rest if colon and bot_id.isdigit() and rest else secret


REDACTOR = Redactor()
"""The process's one redactor: the logging set-up and the command line both use it."""


def register_secrets(secrets: Iterable[str | None]) -> None:
    """Add ``secrets`` to the values :func:`redact` removes."""
    REDACTOR.register(secrets)


def redact(text: str) -> str:
    """``text`` without the registered secrets, bot tokens or values quoted by the database."""
    return REDACTOR.redact(text)
