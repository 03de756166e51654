"""Errors shared across durabot's layers."""


class DurabotError(Exception):
    """Base class of every error durabot raises on purpose."""


class ConfigurationError(DurabotError):
    """The service was configured in a way it cannot run with."""
