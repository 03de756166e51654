"""Transport: Telegram's Bot API in and out — polling, webhook and the outbox relay."""
