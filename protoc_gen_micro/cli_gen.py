"""`micro gen [--check]`: regenerate a project's code from its protos, or check it is current."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from micro.cli.exits import CliError, UsageFailure

from . import gen
from .config import ConfigError, MicroConfig, find_project, load
from .protoc import ProtocError


def _config(project: Path | None) -> MicroConfig:
    try:
        return load(project.resolve() if project else find_project(Path.cwd()))
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None


@click.command("gen")
@click.option(
    "--check",
    is_flag=True,
    help="Regenerate into a temporary directory and compare: exit 1 with a diff when the "
    "output directory is stale, misses files or has extra ones. Writes nothing.",
)
@click.option(
    "--project",
    "-C",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The project directory (default: the nearest one upwards with a pyproject.toml).",
)
def gen_command(check: bool, project: Path | None) -> None:
    """Generate betterproto2 messages and micro modules from the project's protos.

    Settings come from [tool.micro] in pyproject.toml: proto_roots (default ["proto"]),
    include (extra import paths), out (default "gen"), micro_opt (plugin options).
    """
    config = _config(project)
    out = config.show(config.out)
    try:
        changes = gen.check(config) if check else gen.write(config)
    except gen.GenError as exc:
        raise UsageFailure(str(exc)) from None
    except ProtocError as exc:
        message = str(exc).replace(f"{config.project}{os.sep}", "")  # project-relative paths
        raise CliError(f"protoc failed: {message}") from None
    if check:
        if changes:
            sys.stdout.writelines(changes.lines)
            sys.stdout.flush()
            raise CliError(f"{out}/ is out of date ({changes.summary()}); run `micro gen`")
        click.echo(f"{out}/ is up to date")
        return
    if changes:
        counts = {"new": changes.missing, "changed": changes.stale, "removed": changes.extra}
        click.echo(f"{out}/: " + ", ".join(f"{len(n)} {w}" for w, n in counts.items() if n))
    else:
        click.echo(f"{out}/ is up to date")
