"""A local emulator of the Telegram Bot API subset durabot uses, with a web chat page and a test API."""

from durabot.sandbox.client import SandboxApiError, SandboxClient
from durabot.sandbox.server import Sandbox, run_sandbox

__all__ = ["Sandbox", "SandboxApiError", "SandboxClient", "run_sandbox"]
