"""Service settings read from the environment and an optional ``.env`` file."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///durabot.sqlite3"
BOT_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
"""A bot token as @BotFather gives it, ``<bot id>:<secret>``; lenient about the secret's length."""
WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def normalise_database_url(url: str) -> str:
    """Return ``url`` with the async driver durabot uses for its database.

    ``postgresql://…`` becomes ``postgresql+asyncpg://…`` and ``sqlite:///…``
    becomes ``sqlite+aiosqlite:///…``; URLs that already name a driver are kept.
    The error messages never repeat the URL, which may hold a password.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        raise ValueError("DATABASE_URL is not a URL like postgresql://… or sqlite:///…")
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+asyncpg://{rest}"
    if scheme == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if scheme in ("postgresql+asyncpg", "sqlite+aiosqlite"):
        return url
    raise ValueError(f"DATABASE_URL scheme {scheme!r} is not supported; use postgresql:// or sqlite:///")


def masked_database_url(url: str) -> str:
    """``url`` with its password shown as ``***``, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(a DATABASE_URL that is not a URL)"


def database_password_forms(url: str) -> list[str]:
    """The password in ``url`` as written there (percent-encoded) and as sent to the server (decoded)."""
    try:
        decoded = make_url(url).password
    except ArgumentError:
        return []
    return [form for form in (urlsplit(url).password, str(decoded) if decoded else None) if form]


class Settings(BaseSettings):
    """Everything an operator can set; each field maps to an upper-case environment variable.

    The bot token and the webhook secret are :class:`~pydantic.SecretStr` (read them with
    ``get_secret_value()``); ``repr()`` shows the database URL with its password masked.
    """

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", hide_input_in_errors=True
    )

    database_url: str = Field(default=DEFAULT_DATABASE_URL, repr=False)
    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen_host: str = "0.0.0.0"
    webhook_listen_port: int = Field(default=8080, ge=0, le=65535)
    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = Field(default=8081, ge=0, le=65535)
    state_ttl_hours: float = Field(default=24.0, gt=0)
    cleanup_interval_seconds: float = Field(default=300.0, gt=0)
    inbox_poll_seconds: float = Field(default=0.5, gt=0)
    processing_concurrency: int = Field(default=4, ge=1, le=64)
    telegram_global_rate: float | None = Field(default=30, ge=0)
    telegram_chat_rate: float | None = Field(default=1, ge=0)
    admin_enabled: bool = True
    """Serve ``/healthz``, ``/readyz`` and ``/metrics`` on the admin port."""
    admin_listen_host: str = "127.0.0.1"
    admin_listen_port: int = Field(default=8090, ge=0, le=65535)
    metrics_listen_port: int | None = Field(default=None, ge=0, le=65535)
    """A port of its own for ``/metrics`` (which needs no login), instead of the admin port."""
    journal_path: str = "durabot-journal.sqlite3"
    """The outage journal's SQLite file (relative to the working directory); empty turns outage mode off."""
    outage_grace_seconds: float = Field(default=5.0, ge=0)
    """How long the primary may be away before the polling worker goes on against the journal."""
    log_level: LogLevel = "INFO"
    log_format: Literal["console", "json"] = "console"

    @field_validator("database_url")
    @classmethod
    def _use_async_driver(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator(
        "telegram_bot_token", "webhook_secret", "telegram_global_rate", "telegram_chat_rate", "metrics_listen_port",
        mode="before",
    )
    @classmethod
    def _unset_when_empty(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("telegram_bot_token")
    @classmethod
    def _looks_like_a_bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not BOT_TOKEN.match(value.get_secret_value()):
            raise ValueError("is not a bot token: expected <bot id>:<secret> as @BotFather gives it")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _usable_as_a_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not WEBHOOK_SECRET.match(value.get_secret_value()):
            raise ValueError("must be 1-256 of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _webhook_needs_a_secret(self) -> Settings:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("WEBHOOK_SECRET must be set when WEBHOOK_URL is (1-256 of A-Z, a-z, 0-9, _ and -)")
        return self

    def __repr_args__(self) -> Any:
        yield from super().__repr_args__()
        yield "database_url", masked_database_url(self.database_url)

    @property
    def uses_sandbox(self) -> bool:
        """Whether to run against the local sandbox (no bot token given)."""
        return self.telegram_bot_token is None

    @property
    def send_rates(self) -> tuple[float | None, float | None]:
        """Messages per second the relay sends overall and to one chat; ``None`` where there is no limit.

        0 (or an empty value) lifts a limit; against the local sandbox both are lifted unless set.
        """
        rates = []
        for name in ("telegram_global_rate", "telegram_chat_rate"):
            rate: float | None = getattr(self, name)
            lifted = self.uses_sandbox and name not in self.model_fields_set
            rates.append(None if lifted or not rate else rate)
        return rates[0], rates[1]

    @property
    def journal_file(self) -> Path | None:
        """The outage journal's file, or ``None`` when there is none: turned off, or the primary is SQLite (local already)."""
        if not self.journal_path or not self.database_url.startswith("postgresql"):
            return None
        return Path(self.journal_path).expanduser()

    @property
    def state_ttl(self) -> timedelta:
        """How long an untouched conversation is kept before it expires."""
        return timedelta(hours=self.state_ttl_hours)

    def secret_values(self) -> list[str]:
        """The bot token, the webhook secret and the database password: what no log line may contain."""
        secrets = [secret.get_secret_value() for secret in (self.telegram_bot_token, self.webhook_secret) if secret]
        return secrets + database_password_forms(self.database_url)
