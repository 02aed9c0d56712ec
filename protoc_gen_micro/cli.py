"""The `micro` command: a click group whose subcommands live in `protoc_gen_micro/cli_*.py`.

A subcommand module exports `COMMANDS: Sequence[click.Command]`; `main()` adds every such
module's commands to the group, so new commands need no edit here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence

import click

EXIT_FAILURE = 1  # the command ran and found a problem (stale gen/, protoc failed, ...)
EXIT_USAGE = 2  # bad arguments or configuration (click's own code for usage errors)


class CliError(click.ClickException):
    """A one-line `Error: ...` on stderr and exit code 1; never a traceback. Subclass it
    for another exit code."""

    exit_code = EXIT_FAILURE


class UsageFailure(CliError):
    """Bad arguments or configuration: exit code 2."""

    exit_code = EXIT_USAGE


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="protoc-gen-micro", prog_name="micro")
def micro() -> None:
    """Generate, scaffold and call micro services."""


def command_modules() -> list[str]:
    package = importlib.import_module(__package__ or "protoc_gen_micro")
    return sorted(
        f"{package.__name__}.{info.name}"
        for info in pkgutil.iter_modules(package.__path__)
        if info.name.startswith("cli_")
    )


def load_commands(group: click.Group) -> click.Group:
    for name in command_modules():
        commands: Sequence[click.Command] = getattr(importlib.import_module(name), "COMMANDS", ())
        for command in commands:
            group.add_command(command)
    return group


def main() -> None:
    load_commands(micro)(prog_name="micro")


if __name__ == "__main__":
    main()
