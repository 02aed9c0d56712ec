"""`micro-new NAME` / `micro new NAME`: create a ready-to-run service project."""

from __future__ import annotations

from pathlib import Path

import click

from micro.cli.exits import UsageFailure

from .scaffold import (
    MicroSource,
    ScaffoldError,
    checkout_source,
    create,
    generator_version,
    installed_source,
    project_names,
)

#: micro-new --micro-source index (or a generator installed from a wheel): said before
#: `make install` would fail inside pip
NOT_ON_AN_INDEX = (
    "note: micro-runtime and protoc-gen-micro {version} are not on a package index yet, so "
    "`make install` can only find them with PIP_FIND_LINKS=DIR naming a directory of their "
    "wheels (`python -m build` in a micro checkout), or re-run micro-new with "
    "--micro-source PATH_OF_A_CHECKOUT"
)


def _source(value: str | None) -> MicroSource:
    if value is None:
        return installed_source()
    if value == "index":
        return MicroSource(generator_version())
    return checkout_source(Path(value))


@click.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "-o",
    "directory",
    type=click.Path(path_type=Path),
    help="Where to create the project (default: ./NAME).",
)
@click.option(
    "--module",
    help="The Python package for the service's own code, dotted for a namespace "
    "(default: NAME with '_' for '-').",
)
@click.option(
    "--namespace",
    default="",
    help="A proto package prefix, e.g. 'acme' gives package acme.NAME.v1 (default: none).",
)
@click.option(
    "--micro-source",
    metavar="PATH|index",
    help="Where the project installs micro-runtime and protoc-gen-micro from: a local "
    "checkout of micro, or 'index' for the package index (default: the checkout this "
    "protoc-gen-micro was installed from, if any, else the index).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Write into an existing non-empty directory (the files it replaces are listed).",
)
@click.version_option(package_name="protoc-gen-micro", prog_name="micro-new")
def new(
    name: str,
    directory: Path | None,
    module: str | None,
    namespace: str,
    micro_source: str | None,
    force: bool,
) -> None:
    """Create the NAME service: proto, generated code, handler, main.py, client, tests,
    README, Makefile, Dockerfile, Kubernetes manifests."""
    target = directory if directory is not None else Path(name)
    try:
        names = project_names(name, module=module, namespace=namespace)
        source = _source(micro_source)
        created = create(names, target, source, force=force)
    except ScaffoldError as exc:
        raise UsageFailure(str(exc)) from None
    where = source.checkout or "the package index"
    click.echo(f"created {name} in {target}/ ({created.count} files; micro from {where})")
    if created.replaced:
        click.echo(f"replaced {len(created.replaced)} existing file(s) with new content:")
        for rel in created.replaced:
            click.echo(f"  {rel}")
    if source.checkout is None:
        click.echo(NOT_ON_AN_INDEX.format(version=source.version), err=True)
    click.echo("next:")
    click.echo(f"  cd {target}")
    click.echo("  python3 -m venv .venv")
    click.echo("  make install test")
    click.echo("  make run     # and `make client` in another terminal")
