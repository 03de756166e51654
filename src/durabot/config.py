"""Service settings read from the environment and an optional ``.env`` file."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///durabot.sqlite3"


def normalise_database_url(url: str) -> str:
    """Return ``url`` with the async driver durabot uses for its database.

    ``postgresql://…`` becomes ``postgresql+asyncpg://…`` and ``sqlite:///…``
    becomes ``sqlite+aiosqlite:///…``; URLs that already name a driver are kept.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        raise ValueError(f"DATABASE_URL {url!r} is not a URL like postgresql://… or sqlite:///…")
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+asyncpg://{rest}"
    if scheme == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if scheme in ("postgresql+asyncpg", "sqlite+aiosqlite"):
        return url
    raise ValueError(f"DATABASE_URL scheme {scheme!r} is not supported; use postgresql:// or sqlite:///")


class Settings(BaseSettings):
    """Everything an operator can set; each field maps to an upper-case environment variable."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    telegram_bot_token: str | None = None
    telegram_api_base_url: str = "https://api.telegram.org"
    webhook_url: str | None = None
    webhook_secret: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,256}$")
    webhook_listen_host: str = "0.0.0.0"
    webhook_listen_port: int = Field(default=8080, ge=0, le=65535)
    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = Field(default=8081, ge=0, le=65535)
    state_ttl_hours: float = Field(default=24.0, gt=0)
    cleanup_interval_seconds: float = Field(default=300.0, gt=0)
    inbox_poll_seconds: float = Field(default=0.5, gt=0)
    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"

    @field_validator("database_url")
    @classmethod
    def _use_async_driver(cls, value: str) -> str:
        return normalise_database_url(value)

    @model_validator(mode="after")
    def _webhook_needs_a_secret(self) -> Settings:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("WEBHOOK_SECRET must be set when WEBHOOK_URL is (1-256 of A-Z, a-z, 0-9, _ and -)")
        return self

    @property
    def uses_sandbox(self) -> bool:
        """Whether to run against the local sandbox (no bot token given)."""
        return not self.telegram_bot_token

    @property
    def state_ttl(self) -> timedelta:
        """How long an untouched conversation is kept before it expires."""
        return timedelta(hours=self.state_ttl_hours)
