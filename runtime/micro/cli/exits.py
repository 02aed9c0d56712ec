"""Exit codes of the `micro` commands. Each failure is one `Error: ...` line on stderr and
its own exit code, so scripts can tell them apart; README.md ("The micro CLI") documents
the table. :func:`micro.cli.ops.run` maps the library's exceptions to these, in one place.
"""

from __future__ import annotations

import click

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID_FIELD",
    "EXIT_INVALID_JSON",
    "EXIT_PERMISSION_DENIED",
    "EXIT_REMOTE_ERROR",
    "EXIT_TIMEOUT",
    "EXIT_UNAUTHENTICATED",
    "EXIT_UNKNOWN_ENDPOINT",
    "EXIT_UNKNOWN_SERVICE",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "CliError",
    "InvalidField",
    "InvalidJson",
    "OneLineError",
    "PermissionDenied",
    "RemoteError",
    "TimedOut",
    "Unauthenticated",
    "UnknownEndpoint",
    "UnknownService",
    "Unreachable",
    "UsageFailure",
]

EXIT_FAILURE = 1  # the command ran and found a problem (stale gen/, protoc failed, ...)
EXIT_USAGE = 2  # bad arguments or configuration (click's own code for usage errors)
EXIT_UNKNOWN_SERVICE = 3
EXIT_UNKNOWN_ENDPOINT = 4
EXIT_INVALID_JSON = 5
EXIT_INVALID_FIELD = 6
EXIT_TIMEOUT = 7
EXIT_REMOTE_ERROR = 8
EXIT_UNREACHABLE = 9
EXIT_UNAUTHENTICATED = 10  # 401: no token, or one the service does not accept
EXIT_PERMISSION_DENIED = 11  # 403: the token's account lacks a scope the endpoint needs
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


class CliError(click.ClickException):
    """A one-line `Error: ...` on stderr and exit code 1; never a traceback. Subclass it
    for another exit code."""

    exit_code = EXIT_FAILURE


class UsageFailure(CliError):
    """Bad arguments or configuration: exit code 2."""

    exit_code = EXIT_USAGE


class OneLineError(CliError):
    """Whitespace (newlines from protobuf's or a server's messages) collapses to one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class UnknownService(OneLineError):
    """No live node of the service is registered (or, with --address, the server has no
    such service)."""

    exit_code = EXIT_UNKNOWN_SERVICE


class UnknownEndpoint(OneLineError):
    exit_code = EXIT_UNKNOWN_ENDPOINT


class InvalidJson(OneLineError):
    """The request is not JSON at all."""

    exit_code = EXIT_INVALID_JSON


class InvalidField(OneLineError):
    """The JSON does not fit the request message: unknown field, wrong type or value."""

    exit_code = EXIT_INVALID_FIELD


class TimedOut(OneLineError):
    exit_code = EXIT_TIMEOUT


class RemoteError(OneLineError):
    """The service answered with an error (a micro.errors.Error or a gRPC status)."""

    exit_code = EXIT_REMOTE_ERROR


class Unauthenticated(RemoteError):
    """401 / UNAUTHENTICATED: no token, or one the service refused (expired, bad signature)."""

    exit_code = EXIT_UNAUTHENTICATED


class PermissionDenied(RemoteError):
    """403 / PERMISSION_DENIED: the token is valid, its account lacks a scope."""

    exit_code = EXIT_PERMISSION_DENIED


class Unreachable(OneLineError):
    """No node answered, the registry is unavailable, or the server has no reflection."""

    exit_code = EXIT_UNREACHABLE
