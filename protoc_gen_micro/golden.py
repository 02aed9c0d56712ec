"""Regenerate golden/ from example_protos/: `python -m protoc_gen_micro.golden [--check]`.

golden/ holds everything generated for the example protos (betterproto2 messages and
micro modules), as one importable package, so tests can type-check and run it.
"""

from __future__ import annotations

import difflib
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

import click

from .protoc import ProtocError, protoc

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "example_protos"
GOLDEN = ROOT / "golden"


def example_protos() -> list[str]:
    return sorted(p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.rglob("*.proto"))


def generate(out: Path) -> None:
    protoc(example_protos(), proto_path=[str(EXAMPLES)], out=out)


def tree(root: Path) -> dict[str, Path]:
    return {
        p.relative_to(root).as_posix(): p
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def diff_trees(expected: Path, actual: Path) -> list[str]:
    """A unified diff of what differs between two trees, empty when identical."""
    want, have = tree(expected), tree(actual)
    lines: list[str] = []
    for name in sorted(want.keys() | have.keys()):
        a = want.get(name)
        b = have.get(name)
        if a and b and filecmp.cmp(a, b, shallow=False):
            continue
        old = a.read_text().splitlines(keepends=True) if a else []
        new = b.read_text().splitlines(keepends=True) if b else []
        lines += difflib.unified_diff(old, new, f"golden/{name}", f"generated/{name}")
        if not old and not new:
            lines.append(f"{name}: {'missing' if a else 'extra'} empty file\n")
    return lines


@click.command()
@click.option("--check", is_flag=True, help="Compare with golden/ and print a diff; write nothing.")
def main(check: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "golden"
        try:
            generate(out)
        except ProtocError as exc:
            raise click.ClickException(str(exc)) from None
        if check:
            diff = diff_trees(GOLDEN, out)
            if diff:
                sys.stdout.writelines(diff)
                raise SystemExit(1)
            click.echo("golden/ is up to date")
            return
        if GOLDEN.exists():
            shutil.rmtree(GOLDEN)
        shutil.copytree(out, GOLDEN)
        click.echo(f"regenerated {len(tree(GOLDEN))} files in golden/")


if __name__ == "__main__":
    main()
