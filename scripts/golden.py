"""Regenerate golden*/ trees and the runtime's built-in services: `python -m scripts.golden
[--check]`.

golden/ holds everything generated for the example protos (betterproto2 messages and
micro modules), as one importable package, so tests can type-check and run it.
golden-pb2/ holds the same with protobuf's `_pb2` messages, plus the editions protos.
golden-scaffold/hello/ is what `micro-new hello --micro-source index` creates. It is a
sibling of golden/, not inside it: it is a project of its own (its own pyproject.toml,
tests and `gen` package), which must not become part of the `golden` package that tests
import and type-check; the hyphen keeps it from ever being importable.
runtime/micro/_builtin/ is the runtime's own health, reflection and broker messages and
specs (`output=specs`, see scripts/builtin_protos.py), checked and rewritten here too.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import click

from protoc_gen_micro.protoc import ProtocError, protoc
from protoc_gen_micro.scaffold import (
    MicroSource,
    ScaffoldError,
    create,
    generator_version,
    project_names,
)
from protoc_gen_micro.trees import diff_trees, sync_tree, tree
from scripts import builtin_protos

__all__ = [
    "BUILTIN",
    "EXAMPLES",
    "GOLDEN",
    "GOLDEN_SCAFFOLD",
    "diff_trees",
    "example_protos",
    "generate",
    "generate_scaffold",
    "main",
    "tree",
]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "example_protos"
GOLDEN = ROOT / "golden"
GOLDEN_SCAFFOLD = ROOT / "golden-scaffold"
# The same example protos with protobuf's `_pb2` messages (`--micro_opt=messages=protobuf`).
# `_pb2` modules import each other absolutely, so this tree is a sys.path root of its own.
GOLDEN_PB2 = ROOT / "golden-pb2"
# betterproto2-compiler refuses editions files; only the `_pb2` backend generates these.
EDITIONS = "editions/"
SCAFFOLD_NAME = "hello"
BUILTIN = builtin_protos.BUILTIN


def example_protos(*, editions: bool = False) -> list[str]:
    names = sorted(p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.rglob("*.proto"))
    return [n for n in names if editions or not n.startswith(EDITIONS)]


def generate(out: Path) -> None:
    protoc(example_protos(), proto_path=[str(EXAMPLES)], out=out)


def generate_pb2(out: Path) -> None:
    protoc(example_protos(editions=True), proto_path=[str(EXAMPLES)], out=out, messages="protobuf")


def generate_scaffold(out: Path) -> None:
    """`out/hello`: the scaffold for a fixed name, installing micro from the index (so no
    machine's paths end up in it)."""
    create(project_names(SCAFFOLD_NAME), out / SCAFFOLD_NAME, MicroSource(generator_version()))


@click.command()
@click.option(
    "--check",
    is_flag=True,
    help="Compare with the golden trees; print a diff, write nothing.",
)
def main(check: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "golden"
        out_scaffold = Path(tmp) / "golden-scaffold"
        out_pb2 = Path(tmp) / "golden-pb2"
        out_builtin = Path(tmp) / "_builtin"
        try:
            generate(out)
            generate_pb2(out_pb2)
            generate_scaffold(out_scaffold)
            builtin_protos.generate(out_builtin)
        except (ProtocError, ScaffoldError) as exc:
            raise click.ClickException(str(exc)) from None
        pairs = ((GOLDEN, out), (GOLDEN_PB2, out_pb2), (GOLDEN_SCAFFOLD, out_scaffold))
        if check:
            diff = [
                line
                for golden, fresh in (*pairs, (BUILTIN, out_builtin))
                for line in diff_trees(golden, fresh)
            ]
            if diff:
                sys.stdout.writelines(diff)
                raise SystemExit(1)
            click.echo(
                "golden/, golden-pb2/, golden-scaffold/ and runtime/micro/_builtin/ are up to date"
            )
            return
        for golden, fresh in pairs:
            if golden.exists():
                shutil.rmtree(golden)
            shutil.copytree(fresh, golden)
            click.echo(f"regenerated {len(tree(golden))} files in {golden.name}/")
        # The runtime imports this tree (and the plugin the runtime): rewrite changed files only.
        changes = sync_tree(out_builtin, BUILTIN)
        click.echo(f"runtime/micro/_builtin/: {changes.summary()}")


if __name__ == "__main__":
    main()
