"""durabot: a Telegram bot service whose multi-step conversations never lose their place or data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("durabot")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
