"""Errors shared across durabot's layers."""

from __future__ import annotations

import errno


class DurabotError(Exception):
    """Base class of every error durabot raises on purpose."""


class OperatorError(DurabotError):
    """Something only the operator can fix; the message says what and how, in one line, with no secret in it."""


class ConfigurationError(OperatorError):
    """The service was configured in a way it cannot run with."""


def cannot_listen(error: OSError, host: str, port: int, port_setting: str) -> ConfigurationError:
    """The one-line explanation of why a server could not listen on ``host:port``.

    Args:
        error: What binding the socket raised.
        host: The address asked for.
        port: The port asked for.
        port_setting: The environment variable that chose the port, named in the advice.
    """
    if error.errno == errno.EADDRINUSE:
        return ConfigurationError(
            f"port {port} is already in use on {host}: stop the program using it or set {port_setting} to another port"
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return ConfigurationError(f"cannot listen on {host}:{port}: {host} is not an address of this machine")
    return ConfigurationError(f"cannot listen on {host}:{port}: {error.strerror or error}")
