"""The `micro` command: the runtime's operations commands, plus those other installed
packages add through the `micro.commands` entry-point group (protoc-gen-micro adds `gen`
and `new`).

Needs the `cli` extra (`pip install 'micro-runtime[cli]'`; `micro api` needs `api`).
`micro --help` lists the commands from :data:`COMMANDS` and the entry points; each is
imported only when it runs or its help is shown.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

import click

from micro.cli.exits import EXIT_INTERRUPTED, CliError

__all__ = ["COMMANDS", "ENTRY_POINTS", "interrupted", "main", "micro"]

#: the runtime's own subcommands: name -> "module:attribute" of the click command
COMMANDS = {
    "services": "micro.cli.services:services",
    "describe": "micro.cli.services:describe",
    "health": "micro.cli.services:health",
    "call": "micro.cli.call:call",
    "stream": "micro.cli.call:stream",
    "publish": "micro.cli.publish:publish",
    "api": "micro.cli.api:api",
    "token": "micro.cli.token:token",
}
#: the entry-point group through which other packages add subcommands
ENTRY_POINTS = "micro.commands"


def _load(target: str) -> click.Command:
    module, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{target} is not a click command")
    return command


class _Commands(click.Group):
    """The runtime's commands and the installed entry points, loaded on use."""

    def _targets(self) -> dict[str, str]:
        targets = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINTS)}
        return {**targets, **COMMANDS}  # a package cannot replace a runtime command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self._targets())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self._targets().get(cmd_name)
        if target is None:
            return None
        try:
            return _load(target)
        except ImportError as exc:
            raise CliError(f"`micro {cmd_name}` cannot load ({target}): {exc}") from None

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise interrupted() from None


def interrupted() -> click.exceptions.Exit:
    """Ctrl-C: a fresh line and exit code 130 (128 + SIGINT), as shells report it, not 1
    ("the command found a problem")."""
    click.echo("", err=True)
    return click.exceptions.Exit(EXIT_INTERRUPTED)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="micro-runtime", prog_name="micro")
def micro() -> None:
    """Query, call and serve micro services (and, with protoc-gen-micro, generate them)."""


def main() -> None:
    micro(prog_name="micro")
