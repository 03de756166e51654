"""The conversation engine: applies each incoming event in one transaction."""
