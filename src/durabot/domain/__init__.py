"""Domain model: the records durabot keeps for its users, free of Telegram and storage types."""
