"""Bot API errors in Telegram's wire shape: an HTTP status, a description and, for 429, ``retry_after``."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A Bot API call that fails the way Telegram would fail it.

    Attributes:
        status: The HTTP status code, also sent as ``error_code``.
        description: Telegram's human-readable reason, e.g. ``"Bad Request: message text is empty"``.
        retry_after: Seconds to wait before retrying; only for 429 Too Many Requests.
    """

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        """The JSON body Telegram answers with."""
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(detail: str) -> ApiError:
    """A 400 with Telegram's ``"Bad Request: …"`` description."""
    return ApiError(400, f"Bad Request: {detail}")


def forbidden(detail: str) -> ApiError:
    """A 403 with Telegram's ``"Forbidden: …"`` description."""
    return ApiError(403, f"Forbidden: {detail}")


def conflict(detail: str) -> ApiError:
    """A 409 with Telegram's ``"Conflict: …"`` description."""
    return ApiError(409, f"Conflict: {detail}")


def unauthorized() -> ApiError:
    """The answer to a token that cannot be a bot's."""
    return ApiError(401, "Unauthorized")


def not_found() -> ApiError:
    """The answer to an unknown method or file."""
    return ApiError(404, "Not Found")


DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
"""What Telegram says for a status when an injected fault gives no description of its own."""


def error_for_status(status: int, description: str | None = None, retry_after: int | None = None) -> ApiError:
    """An error with ``status``; 429 always carries ``retry_after`` (1 second unless given)."""
    if status == 429:
        wait = retry_after if retry_after is not None else 1
        return ApiError(429, description or f"Too Many Requests: retry after {wait}", wait)
    return ApiError(status, description or DEFAULT_DESCRIPTIONS.get(status, f"Error {status}"))
