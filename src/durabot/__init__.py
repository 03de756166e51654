"""durabot: a Telegram bot service whose multi-step conversations never lose their place or data."""

__version__ = "0.1.0"
